//! `restore`: recreate the tree with its pids, rebuild each task from the
//! inside through syscalls run in it, load registers, and let go.
//!
//! Each task starts as a "puppet". The root is a child of stasis created
//! with clone3(2) and `set_tid`; it asks to be traced and stops before
//! running any code of its own. Every other process is forked by its real
//! parent puppet (clone3 with `set_tid`, run inside the parent), so
//! parentage, sessions and shared fd tables come out as they were; threads
//! are cloned the same way inside their process. Then everything each task
//! inherited is replaced: memory, fds, signal state, attributes; registers
//! last. If anything fails, every puppet is killed and reaped: nothing is
//! left behind.
//!
//! Order, and why:
//! 1. create every process, parents first; sessions right away (children
//!    inherit them), process groups once all group leaders exist, helper
//!    tasks for groups whose leader has exited;
//! 2. zombies die (with their exit status) and helpers go away;
//! 3. each process: memory, files, fs, attributes, signal actions, then its
//!    threads, per-thread state, pending signals, credentials last;
//! 4. registers and masks of every thread, then release all at once.

use crate::error::{Error, IoContext, Result};
use crate::inject::{self, sigbit, Scratch, Session};
use crate::options::RestoreOptions;
use crate::progress::Progress;
use crate::state::files::{self, Courier, OpenFiles};
use crate::state::mm::{self, ShmemRegistry};
use crate::state::{attrs, regs, seccomp, signals, timers};
use crate::{fault, procfs};
use stasis_image::checkpoint::Checkpoint;
use stasis_image::file::ImageWriter;
use stasis_image::kinds::kind;
use stasis_image::messages::*;
use stasis_sys::task::CloneArgs;
use stasis_sys::{task, Pid, RemoteAddr, Stop, Tracee, PAGE_SIZE};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long to wait for a pid that is still taken (a zombie not yet reaped
/// by its parent, typically the task we dumped). `STASIS_PID_WAIT_MS`
/// overrides it (tests use it to fail fast).
fn pid_wait() -> Duration {
    std::env::var("STASIS_PID_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(5))
}

/// Code page plus scratch memory for call arguments inside a puppet.
const SCRATCH_LEN: u64 = 64 * 1024;
const KEEP_LEN: u64 = PAGE_SIZE + SCRATCH_LEN;

const TASK_STOPPED: u32 = 3;
const TASK_ZOMBIE: u32 = 6;

/// Images of one process, read and checked before any task is created.
pub struct ProcessPlan {
    pub entry: PstreeEntry,
    pub ids: TaskKobjIdsEntry,
    pub cores: Vec<CoreEntry>,
    pub mm: MmEntry,
    pub fds: Vec<FdinfoEntry>,
    pub fs: Option<FsEntry>,
    /// Wait status, for a zombie.
    pub zombie: Option<u32>,
}

impl ProcessPlan {
    fn pid(&self) -> Pid {
        self.entry.pid as Pid
    }

    fn tc(&self) -> Result<&TaskCoreEntry> {
        self.cores[0].tc.as_ref().ok_or_else(|| Error::BadImage(format!("core-{}.img has no task core", self.entry.pid)))
    }
}

pub fn load(cp: &Checkpoint) -> Result<Vec<ProcessPlan>> {
    let mut plans: Vec<ProcessPlan> = Vec::new();
    let pids: BTreeSet<u32> = cp.pstree.iter().map(|e| e.pid).collect();
    for (i, e) in cp.pstree.iter().enumerate() {
        let threads: Vec<u32> = if e.threads.is_empty() { vec![e.pid] } else { e.threads.clone() };
        if threads[0] != e.pid {
            return Err(Error::BadImage(format!("pstree.img: the first thread of {} is {}", e.pid, threads[0])));
        }
        if i > 0 && !plans.iter().any(|p| p.entry.pid == e.ppid) {
            return Err(Error::BadImage(format!(
                "pstree.img: the parent {} of {} comes after it or is not in the tree",
                e.ppid, e.pid
            )));
        }
        let first = cp.core(e.pid)?;
        if first.mtype != regs::MTYPE {
            return Err(Error::Unsupported(format!("core-{}.img is not for x86_64", e.pid)));
        }
        if let Some(tc) = first.tc.as_ref().filter(|tc| tc.task_state == TASK_ZOMBIE) {
            plans.push(ProcessPlan {
                entry: e.clone(),
                ids: TaskKobjIdsEntry::default(),
                cores: vec![first.clone()],
                mm: MmEntry::default(),
                fds: Vec::new(),
                fs: None,
                zombie: Some(tc.exit_code),
            });
            continue;
        }
        let mut cores = vec![first];
        for t in &threads[1..] {
            if pids.contains(t) {
                return Err(Error::BadImage(format!("pstree.img: {t} is both a thread and a process")));
            }
            cores.push(cp.core(*t)?);
        }
        for (t, c) in threads.iter().zip(&cores) {
            if c.thread_info.is_none() {
                return Err(Error::BadImage(format!("core-{t}.img has no registers")));
            }
        }
        let ids = cp.ids(e.pid)?;
        let (pages_id, _) = cp.pagemap(e.pid)?;
        let pages = cp.pages_path(pages_id);
        if !pages.exists() {
            return Err(stasis_image::file::ImageError::new(&pages, None, "image file is missing").into());
        }
        plans.push(ProcessPlan {
            entry: e.clone(),
            ids: ids.clone(),
            cores,
            mm: cp.mm(e.pid)?,
            fds: files::fd_table(cp, ids.files_id)?,
            fs: Some(cp.fs(e.pid)?),
            zombie: None,
        });
    }
    Ok(plans)
}

/// Wait until `pid` is free, for a little while.
fn wait_pid_free(pid: Pid) -> Result<()> {
    let deadline = Instant::now() + pid_wait();
    loop {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let who = procfs::stat(pid, pid).map(|s| format!("{} ({})", s.comm, s.state())).unwrap_or_default();
            return Err(Error::Refused(format!(
                "pid {pid} is in use by another process {who}; the restored process needs it"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_taken(pid: Pid) -> Error {
    Error::Refused(format!("pid {pid} is in use by another process; the restored process needs it"))
}

/// A task being restored.
struct Task {
    tid: Pid,
    tracee: Tracee,
}

/// A process being restored: its plan and its tasks, main thread first.
struct Proc {
    plan: usize,
    pid: Pid,
    tasks: Vec<Task>,
}

/// Every task created so far. Dropped without [`World::release`], it kills
/// and reaps them all.
#[derive(Default)]
struct World {
    procs: Vec<Proc>,
    /// Helpers still alive: (pid, tracee, parent pid).
    helpers: Vec<(Pid, Tracee, Pid)>,
    released: bool,
}

impl World {
    fn proc_of(&self, pid: Pid) -> Option<&Proc> {
        self.procs.iter().find(|p| p.pid == pid)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let all: Vec<Pid> = self.procs.iter().map(|p| p.pid).chain(self.helpers.iter().map(|h| h.0)).collect();
        for &pid in &all {
            let _ = task::kill(pid, libc::SIGKILL);
        }
        for p in &self.procs {
            // Other threads first: a group leader is reported last.
            for t in p.tasks.iter().rev() {
                wait_gone(t.tid);
            }
        }
        for h in &self.helpers {
            wait_gone(h.0);
        }
        // Orphans of the killed tree come to us (we are their subreaper):
        // reap them all so nothing is left behind.
        reap_children();
    }
}

fn wait_gone(tid: Pid) {
    loop {
        match stasis_sys::ptrace::wait_tid(tid) {
            Ok(Stop::Exited(_) | Stop::Killed(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn reap_children() {
    while let Ok(Some(_)) = stasis_sys::ptrace::wait_any() {}
}

/// Numbers a restore reports (and writes to `stats-restore`).
#[derive(Debug, Default, Clone)]
pub struct RestoreStats {
    pub forking_us: u64,
    pub restore_us: u64,
    pub pages_restored: u64,
}

/// What a successful restore hands back.
pub struct Restored {
    pub root: Pid,
    pub stats: RestoreStats,
}

/// What needs a flag to be restored (sockets, locks), refused before any
/// task exists.
fn preflight(files: &OpenFiles, o: &RestoreOptions) -> Result<()> {
    if let Some(l) = files.locks.first().filter(|_| !o.file_locks) {
        return Err(Error::Refused(format!(
            "the checkpoint has file locks (fd {} of {} held one); restore with --file-locks to take them again",
            l.fd, l.pid
        )));
    }
    for e in files.entries.values() {
        if let Some(u) = e.usk.as_ref().filter(|u| u.uflags & crate::state::sockets::USK_EXTERN != 0 && !o.ext_unix_sk) {
            return Err(Error::Refused(format!(
                "the checkpoint has unix sockets connected to {} outside the tree; restore with --ext-unix-sk to reconnect them",
                crate::state::sockets::fmt_unix_name(&u.name)
            )));
        }
        if let Some(c) = tcp_connections_of(e).filter(|_| !o.tcp_established) {
            return Err(Error::Refused(format!(
                "the checkpoint has an established TCP connection {}:{} -> {}:{}; restore with --tcp-established",
                c.local, c.lport, c.remote, c.rport
            )));
        }
    }
    Ok(())
}

fn tcp_connections_of(e: &FileEntry) -> Option<crate::netlock::Conn> {
    let i = e.isk.as_ref().filter(|i| i.proto == libc::IPPROTO_TCP as u32 && i.state == 1)?;
    Some(crate::netlock::Conn {
        local: crate::netlock::ip_of(&i.src_addr)?,
        lport: i.src_port as u16,
        remote: crate::netlock::ip_of(&i.dst_addr)?,
        rport: i.dst_port as u16,
    })
}

/// The established TCP connections in the images.
fn tcp_connections(files: &OpenFiles) -> Vec<crate::netlock::Conn> {
    files.entries.values().filter_map(tcp_connections_of).collect()
}

pub fn restore(o: &RestoreOptions) -> Result<Restored> {
    let t0 = Instant::now();
    let cp = Checkpoint::open(&o.images_dir)?;
    let plans = load(&cp)?;
    let mut files = OpenFiles::load(&cp)?;
    files.shell_job = o.shell_job;
    files.tcp_established = o.tcp_established;
    preflight(&files, o)?;
    let root = &plans[0];
    let root_pid = root.pid();
    if root.zombie.is_some() {
        return Err(Error::BadImage("the root of the tree is a zombie".into()));
    }
    if !o.shell_job && root.entry.sid != root.entry.pid {
        return Err(Error::Refused(format!(
            "process {root_pid} was not a session leader when dumped; restore it with --shell-job"
        )));
    }
    for p in &plans {
        for t in if p.entry.threads.is_empty() { vec![p.entry.pid] } else { p.entry.threads.clone() } {
            wait_pid_free(t as Pid)?;
        }
    }
    // Until every connection is back, no packet of theirs may pass: a
    // window probe from a repaired socket to one not yet made would be
    // answered with a reset.
    let conns = tcp_connections(&files);
    let lock_guard = crate::netlock::Guard(if o.tcp_established { crate::netlock::lock(&conns)? } else { Vec::new() });
    // Tasks orphaned by a failed restore must come back to us.
    task::set_child_subreaper()?;
    fault::point("fork")?;

    let mut world = World::default();
    // Code and scratch pages at one address that is free in every image.
    let mut busy: Vec<(u64, u64)> = plans.iter().flat_map(|p| p.mm.vmas.iter().map(|v| (v.start, v.end))).collect();
    busy.extend(procfs::smaps(std::process::id() as Pid)?.iter().map(|m| (m.start, m.end)));
    let keep = mm::find_hole(&busy, KEEP_LEN).ok_or_else(|| Error::Unsupported("no free address space for restore code".into()))?;
    let scratch = Scratch { addr: RemoteAddr(keep + PAGE_SIZE), len: SCRATCH_LEN };

    let mut progress = Progress::new(o.progress, "restoring memory", count_pages(&cp, &plans)?);
    let mut ctx = Ctx { o, cp: &cp, files: &mut files, shmem: ShmemRegistry::default(), progress: &mut progress, pages: 0, keep, scratch };
    create_tree(&mut ctx, &plans, &mut world)?;
    let forking_us = t0.elapsed().as_micros() as u64;
    let pages = ctx.pages;
    progress.finish();

    let mut done_files: BTreeSet<u32> = BTreeSet::new();
    let mut done_fs: BTreeSet<u32> = BTreeSet::new();
    for i in 0..world.procs.len() {
        let plan = &plans[world.procs[i].plan];
        if plan.zombie.is_some() {
            continue;
        }
        let proc_ = &mut world.procs[i];
        let is_root = proc_.pid == root_pid;
        build_process(&cp, &mut files, plan, proc_, keep, &scratch, &mut done_files, &mut done_fs, is_root)?;
    }

    fault::point("release")?;
    release(&plans, &mut world)?;
    // The connections are back: let their packets through again.
    lock_guard.disarm();
    if let Err(e) = crate::netlock::unlock(&conns) {
        tracing::warn!("cannot remove the network lock of restored connections: {e}");
    }
    let stats = RestoreStats { forking_us, restore_us: t0.elapsed().as_micros() as u64, pages_restored: pages };
    if let Some(pf) = &o.pidfile {
        std::fs::write(pf, format!("{root_pid}\n")).ctx(|| format!("write pid file {}", pf.display()))?;
    }
    if let Err(e) = write_stats(&cp, &stats) {
        tracing::warn!("cannot write stats-restore: {e}");
    }
    Ok(Restored { root: root_pid, stats })
}

fn count_pages(cp: &Checkpoint, plans: &[ProcessPlan]) -> Result<u64> {
    let mut n = 0;
    for p in plans.iter().filter(|p| p.zombie.is_none()) {
        let (_, entries) = cp.pagemap(p.entry.pid)?;
        n += entries
            .iter()
            .filter(|e| e.flags.unwrap_or(0) & mm::PE_PARENT == 0)
            .map(|e| e.nr_pages.unwrap_or(u64::from(e.compat_nr_pages)))
            .sum::<u64>();
    }
    Ok(n)
}

fn write_stats(cp: &Checkpoint, s: &RestoreStats) -> Result<()> {
    let e = StatsEntry {
        dump: None,
        restore: Some(RestoreStatsEntry {
            pages_compared: 0,
            pages_skipped_cow: 0,
            forking_time: s.forking_us as u32,
            restore_time: s.restore_us as u32,
            pages_restored: Some(s.pages_restored),
        }),
    };
    let mut w = ImageWriter::create(&cp.dir.join("stats-restore"), kind("STATS"))?;
    w.put(&e)?;
    w.finish()?;
    Ok(())
}

const PUPPET_OPTIONS: i32 = libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACECLONE | libc::PTRACE_O_TRACEFORK;

/// Wait for a new task's first stop.
fn first_stop(t: &Tracee) -> Result<()> {
    match t.wait()? {
        Stop::Signal(libc::SIGSTOP) | Stop::Interrupt | Stop::Group(_) => Ok(()),
        other => Err(Error::Unsupported(format!("new task {} did not stop as expected: {other}", t.tid()))),
    }
}

/// A session in a puppet, running calls from the code page.
fn session<'a>(t: &'a Tracee, pid: Pid, keep: u64) -> Result<Session<'a>> {
    let mut s = Session::begin(t, pid, RemoteAddr(keep))?;
    // Calls need no stack; a stack pointer inside the image's alternate
    // stack would make sigaltstack refuse.
    let mut base = *s.r.saved_regs();
    base.rsp = 0;
    s.r.set_saved_regs(base);
    Ok(s)
}

/// clone3 inside `s` with `set_tid`: the new task's tid.
fn clone_in(s: &mut Session<'_>, scratch: &Scratch, tid: Pid, flags: u64, exit_signal: u64) -> Result<Pid> {
    let set_tid_at = scratch.at(256);
    s.write(set_tid_at, &tid.to_le_bytes())?;
    let args = CloneArgs { flags, exit_signal, set_tid: set_tid_at.0, set_tid_size: 1, ..CloneArgs::default() };
    let args_at = scratch.at(0);
    s.write(args_at, &args.to_bytes())?;
    let r = s.raw(libc::SYS_clone3, &[args_at.0, 88])?;
    if r == -(libc::EEXIST as i64) {
        return Err(pid_taken(tid));
    }
    if r < 0 {
        return Err(Error::Sys(stasis_sys::Error::errno("clone3 with set_tid", s.tid(), (-r) as i32)));
    }
    let created = s.r.take_new_tasks();
    if r as Pid != tid || !created.contains(&tid) {
        return Err(Error::Unsupported(format!("clone3 made task {r}, wanted {tid}")));
    }
    Ok(tid)
}

/// What creating the tree needs besides the plans and the tasks.
struct Ctx<'a> {
    o: &'a RestoreOptions,
    cp: &'a Checkpoint,
    files: &'a mut OpenFiles,
    shmem: ShmemRegistry,
    progress: &'a mut Progress,
    pages: u64,
    keep: u64,
    scratch: Scratch,
}

fn create_tree(ctx: &mut Ctx<'_>, plans: &[ProcessPlan], world: &mut World) -> Result<()> {
    let (o, keep) = (ctx.o, ctx.keep);
    let scratch = &ctx.scratch.clone();
    let root = &plans[0];
    let root_pid = root.pid();
    let child = match task::spawn_stopped_child(root_pid) {
        Ok(c) => c,
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return Err(pid_taken(root_pid)),
        Err(e) => return Err(e.into()),
    };
    world.procs.push(Proc { plan: 0, pid: child, tasks: vec![Task { tid: child, tracee: Tracee::adopt(child) }] });
    let t = &world.procs[0].tasks[0].tracee;
    first_stop(t)?;
    t.set_options(PUPPET_OPTIONS)?;
    {
        let maps = procfs::smaps(child)?;
        let gadget = inject::find_gadget(child, &maps)?;
        let mut s = Session::begin(t, child, gadget)?;
        let r = (|| -> Result<()> {
            attrs::unregister_rseq(&mut s, t)?;
            s.call(
                "mmap restore code",
                libc::SYS_mmap,
                &[
                    keep,
                    KEEP_LEN,
                    (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64,
                    (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64,
                    u64::MAX,
                    0,
                ],
            )?;
            // `syscall; int3`: the trap is a backstop, calls single-step.
            s.write(RemoteAddr(keep), &[0x0f, 0x05, 0xcc])?;
            s.call("close_range", libc::SYS_close_range, &[0, u64::from(u32::MAX), 0])?;
            if root.entry.sid == root.entry.pid {
                s.call("setsid", libc::SYS_setsid, &[])?;
                take_ctty(&mut s, ctx.files, root_pid)?;
            } else if !o.shell_job {
                return Err(Error::Refused(format!("process {root_pid} is not a session leader; use --shell-job")));
            }
            Ok(())
        })();
        let e = s.end();
        r?;
        e?;
    }

    // Memory first, then the children: forked from a parent whose memory
    // is already in place, a child shares its pages copy-on-write as it did.
    grow_from(ctx, plans, world, 0)?;

    set_groups(plans, world, keep, scratch)?;
    set_foregrounds(plans, world, ctx.files, keep, scratch)?;
    finish_zombies(plans, world, keep, scratch)?;
    Ok(())
}

/// Restore the memory of process `i` of the world, then fork its children
/// and do the same for each.
fn grow_from(ctx: &mut Ctx<'_>, plans: &[ProcessPlan], world: &mut World, i: usize) -> Result<()> {
    let keep = ctx.keep;
    let scratch = ctx.scratch;
    let plan = &plans[world.procs[i].plan];
    let pid = world.procs[i].pid;
    if plan.zombie.is_none() {
        let parent_mm = plans.iter().find(|p| p.pid() == plan.entry.ppid as Pid && p.zombie.is_none()).map(|p| &p.mm);
        let parent_mm = if i == 0 { None } else { parent_mm };
        let t = &world.procs[i].tasks[0].tracee;
        let mut s = session(t, pid, keep)?;
        let r = (|| -> Result<u64> {
            let max_fd = plan.fds.iter().map(|f| f.fd as i32).max().unwrap_or(2);
            let courier = Courier::new(&mut s, (max_fd + 1).max(100))?;
            fault::point("memory")?;
            let progress = &mut *ctx.progress;
            let n = mm::restore(
                &mut s,
                &scratch,
                (keep, keep + KEEP_LEN),
                &courier,
                ctx.cp,
                ctx.files,
                &plan.mm,
                plan.entry.pid,
                &mut ctx.shmem,
                parent_mm,
                &mut |n| progress.add(n),
            )?;
            courier.close(&mut s)?;
            Ok(n)
        })();
        let e = s.end();
        ctx.pages += r?;
        e?;
    }
    let children: Vec<usize> = (0..plans.len()).filter(|&c| c > 0 && plans[c].entry.ppid as Pid == pid).collect();
    for c in children {
        let idx = fork_child(ctx, plans, world, c)?;
        grow_from(ctx, plans, world, idx)?;
    }
    Ok(())
}

/// Fork process `c` of the plans from its parent (or from the helper that
/// stands in for its exited session leader). Returns its world index.
fn fork_child(ctx: &mut Ctx<'_>, plans: &[ProcessPlan], world: &mut World, i: usize) -> Result<usize> {
    let keep = ctx.keep;
    let scratch = &ctx.scratch.clone();
    let plan = &plans[i];
    let pid = plan.pid();
    let ppid = plan.entry.ppid as Pid;
    let parent_plan = plans.iter().find(|p| p.pid() == ppid).expect("checked in load");
    if parent_plan.zombie.is_some() {
        return Err(Error::BadImage(format!("process {pid} has a zombie parent {ppid}")));
    }
    let mut flags = 0u64;
    if plan.zombie.is_none() {
        if plan.ids.files_id == parent_plan.ids.files_id {
            flags |= libc::CLONE_FILES as u64;
        }
        if plan.ids.fs_id == parent_plan.ids.fs_id {
            flags |= libc::CLONE_FS as u64;
        }
    }
    // A session whose leader has exited: a helper with the leader's
    // pid recreates the session and forks the process; when the helper
    // goes, the process is reparented to its parent (a subreaper, or it
    // could not have become that process's parent either).
    let sid = plan.entry.sid as Pid;
    let needs_session_helper = plan.zombie.is_none()
        && sid != pid
        && sid != parent_plan.entry.sid as Pid
        && !plans.iter().any(|p| p.pid() == sid);
    if !needs_session_helper && sid != pid && sid != parent_plan.entry.sid as Pid {
        return Err(Error::Unsupported(format!(
            "process {pid} is in session {sid}, its parent {ppid} in session {}: not supported",
            parent_plan.entry.sid
        )));
    }
    if needs_session_helper && !world.helpers.iter().any(|h| h.0 == sid) {
        if parent_plan.tc()?.child_subreaper != Some(true) {
            return Err(Error::Unsupported(format!(
                "the leader of session {sid} of process {pid} has exited and its parent {ppid} is not a subreaper"
            )));
        }
        make_session_helper(sid, ppid, world, keep, scratch)?;
    }
    let tid = {
        let (creator, creator_pid) = if needs_session_helper {
            let h = world.helpers.iter().find(|h| h.0 == sid).expect("just made");
            (&h.1, h.0)
        } else {
            (&world.proc_of(ppid).expect("parents come first").tasks[0].tracee, ppid)
        };
        let mut s = session(creator, creator_pid, keep)?;
        let r = clone_in(&mut s, scratch, pid, flags, libc::SIGCHLD as u64);
        let e = s.end();
        let tid = r?;
        e?;
        tid
    };
    let tracee = Tracee::adopt(tid);
    world.procs.push(Proc { plan: i, pid, tasks: vec![Task { tid, tracee }] });
    let idx = world.procs.len() - 1;
    let t = &world.procs.last().expect("just pushed").tasks[0].tracee;
    first_stop(t)?;
    t.set_options(PUPPET_OPTIONS)?;
    if plan.entry.sid == plan.entry.pid {
        let mut s = session(t, pid, keep)?;
        let r = s.call("setsid", libc::SYS_setsid, &[]).map(drop).and_then(|()| take_ctty(&mut s, ctx.files, pid));
        let e = s.end();
        r?;
        e?;
    }
    Ok(idx)
}

/// A new session leader takes its controlling terminal (one of the tree's
/// ptys), before it forks the rest of its session, who inherit it.
fn take_ctty(s: &mut Session<'_>, files: &mut OpenFiles, pid: Pid) -> Result<()> {
    let entries = files.entries.clone();
    let Some(tty) = files.ptys.ctty_of(&entries, pid as u32)? else { return Ok(()) };
    let courier = Courier::new(s, 100)?;
    let r = crate::state::tty::set_ctty(s, &courier, &tty);
    courier.close(s)?;
    r
}

/// Each pty that is a session's terminal gets its foreground group back,
/// set by the session leader (still the foreground group itself, so the
/// kernel lets it).
fn set_foregrounds(plans: &[ProcessPlan], world: &World, files: &OpenFiles, keep: u64, scratch: &Scratch) -> Result<()> {
    for (sid, pgrp) in files.ptys.foregrounds() {
        let Some(p) = world.proc_of(sid as Pid) else { continue };
        if pgrp == sid || !plans.iter().any(|pl| pl.entry.pgid == pgrp) {
            continue;
        }
        let mut s = session(&p.tasks[0].tracee, p.pid, keep)?;
        let r = (|| -> Result<()> {
            s.write(scratch.at(0), &pgrp.to_ne_bytes())?;
            // The leader's descriptor 0-2 may not be the terminal: open it
            // by its name, /dev/tty, which is the controlling terminal.
            let path = crate::state::files::write_cstr(&s, scratch, 8, "/dev/tty")?;
            let fd = s.call("open(/dev/tty)", libc::SYS_openat, &[libc::AT_FDCWD as u64, path.0, (libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) as u64, 0])?;
            let r = s.call("ioctl(TIOCSPGRP)", libc::SYS_ioctl, &[fd, crate::state::tty::TIOCSPGRP, scratch.at(0).0]);
            s.call("close", libc::SYS_close, &[fd])?;
            r.map(drop)
        })();
        let e = s.end();
        r.map_err(|er| Error::Unsupported(format!("cannot give the terminal of session {sid} to group {pgrp}: {}", crate::error::detail(&er))))?;
        e?;
    }
    Ok(())
}

/// Process groups: leaders first, then members; a group whose leader has
/// exited gets a helper task with the leader's pid for as long as it
/// takes the members to join.
fn set_groups(plans: &[ProcessPlan], world: &mut World, keep: u64, scratch: &Scratch) -> Result<()> {
    let in_tree: BTreeSet<Pid> = plans.iter().map(|p| p.pid()).collect();
    // Leaders.
    for plan in plans.iter().filter(|p| p.entry.pgid == p.entry.pid && p.entry.sid != p.entry.pid) {
        let p = world.proc_of(plan.pid()).expect("created");
        let mut s = session(&p.tasks[0].tracee, p.pid, keep)?;
        let r = s.call("setpgid", libc::SYS_setpgid, &[0, 0]).map(drop);
        let e = s.end();
        r?;
        e?;
    }
    // Members.
    for plan in plans.iter().skip(1).filter(|p| p.entry.pgid != p.entry.pid) {
        let pgid = plan.entry.pgid as Pid;
        if !in_tree.contains(&pgid) {
            if pgid == plans[0].entry.pgid as Pid && plans[0].entry.pgid != plans[0].entry.pid {
                continue; // a shell job's group: inherited from the restoring shell
            }
            if !world.helpers.iter().any(|h| h.0 == pgid) {
                make_group_helper(plan, world, keep, scratch)?;
            }
        }
        let p = world.proc_of(plan.pid()).expect("created");
        let mut s = session(&p.tasks[0].tracee, p.pid, keep)?;
        let r = s.call("setpgid", libc::SYS_setpgid, &[0, pgid as u64]).map(drop);
        let e = s.end();
        r.map_err(|e| Error::Unsupported(format!("cannot put {} into process group {pgid}: {}", p.pid, crate::error::detail(&e))))?;
        e?;
    }
    // Helpers go: killed, then reaped by their parents.
    for (pid, tracee, parent) in std::mem::take(&mut world.helpers) {
        task::kill(pid, libc::SIGKILL)?;
        wait_gone(tracee.tid());
        let pp = world.proc_of(parent).expect("helper parent");
        let mut s = session(&pp.tasks[0].tracee, parent, keep)?;
        let r = s.call("wait4 helper", libc::SYS_wait4, &[pid as u64, 0, libc::__WALL as u64, 0]).map(drop);
        let e = s.end();
        r?;
        e?;
    }
    Ok(())
}

/// A task with the pid of an exited session leader, forked by `parent`
/// (made a subreaper now, as the image says it is, so that what the
/// helper forks comes back to it), that starts the session.
fn make_session_helper(sid: Pid, parent: Pid, world: &mut World, keep: u64, scratch: &Scratch) -> Result<()> {
    wait_pid_free(sid)?;
    let pp = world.proc_of(parent).expect("parents come first");
    let mut s = session(&pp.tasks[0].tracee, parent, keep)?;
    let r = (|| -> Result<Pid> {
        s.call("prctl(PR_SET_CHILD_SUBREAPER)", libc::SYS_prctl, &[36, 1, 0, 0, 0])?;
        clone_in(&mut s, scratch, sid, 0, libc::SIGCHLD as u64)
    })();
    let e = s.end();
    let tid = r?;
    e?;
    let tracee = Tracee::adopt(tid);
    first_stop(&tracee)?;
    tracee.set_options(PUPPET_OPTIONS)?;
    let mut s = session(&tracee, tid, keep)?;
    let r = s.call("setsid", libc::SYS_setsid, &[]).map(drop);
    let e = s.end();
    world.helpers.push((tid, tracee, parent));
    r?;
    e?;
    Ok(())
}

/// A task with the pid of an exited group leader, forked by the member's
/// parent (same session), that creates the group.
fn make_group_helper(member: &ProcessPlan, world: &mut World, keep: u64, scratch: &Scratch) -> Result<()> {
    let pgid = member.entry.pgid as Pid;
    let parent = member.entry.ppid as Pid;
    wait_pid_free(pgid)?;
    let pp = world.proc_of(parent).ok_or_else(|| {
        Error::Unsupported(format!("process group {pgid} of {} has no leader and no parent to recreate it", member.pid()))
    })?;
    let mut s = session(&pp.tasks[0].tracee, parent, keep)?;
    let r = clone_in(&mut s, scratch, pgid, 0, libc::SIGCHLD as u64);
    let e = s.end();
    let tid = r?;
    e?;
    let tracee = Tracee::adopt(tid);
    first_stop(&tracee)?;
    let mut s = session(&tracee, tid, keep)?;
    let r = s.call("setpgid", libc::SYS_setpgid, &[0, 0]).map(drop);
    let e = s.end();
    world.helpers.push((tid, tracee, parent));
    r?;
    e?;
    Ok(())
}

/// Zombies: each task dies the way it did, and stays unreaped for its
/// parent.
fn finish_zombies(plans: &[ProcessPlan], world: &mut World, keep: u64, scratch: &Scratch) -> Result<()> {
    for plan in plans.iter().filter(|p| p.zombie.is_some()) {
        let status = plan.zombie.unwrap_or(0);
        let idx = world.procs.iter().position(|p| p.pid == plan.pid()).expect("created");
        let pid = world.procs[idx].pid;
        let sig = (status & 0x7f) as i32;
        {
            let t = &world.procs[idx].tasks[0].tracee;
            let mut s = session(t, pid, keep)?;
            if let Some(tc) = &plan.cores[0].tc {
                attrs::restore_comm(&mut s, scratch, &tc.comm)?;
                // Actions and mask as /proc showed them for the zombie.
                let mut actions = tc.sigactions.clone();
                for (a, sig) in actions.iter_mut().zip(signals::action_signals()) {
                    if sig == (status & 0x7f) as i32 {
                        *a = SaEntry::default();
                    }
                }
                signals::restore_actions(&mut s, scratch, &actions)?;
                if sig == 0 {
                    t.set_sigmask(tc.blk_sigset & !sigbit(libc::SIGTRAP))?;
                }
            }
            if sig == 0 {
                match s.raw(libc::SYS_exit_group, &[u64::from((status >> 8) & 0xff)]) {
                    Err(Error::Sys(stasis_sys::Error::Gone { .. })) => {}
                    Ok(_) => return Err(Error::Unsupported(format!("zombie {pid} did not exit"))),
                    Err(e) => return Err(e),
                }
            } else {
                // Killed by a signal: like the original, untraced, so the
                // kernel takes the same path (the signal stays in the shared
                // pending set of the zombie). The task waits in pause(2) at
                // our code page for it.
                let blocked = plan.cores[0].tc.as_ref().map(|tc| tc.blk_sigset).unwrap_or(0);
                s.set_saved_mask(blocked & !sigbit(sig));
                let mut r = *s.r.saved_regs();
                let e = s.end();
                e?;
                r.rip = keep;
                r.rax = libc::SYS_pause as u64;
                r.orig_rax = u64::MAX;
                t.set_regs(&r)?;
            }
        }
        if sig != 0 {
            let t = world.procs[idx].tasks.remove(0).tracee;
            t.detach(0)?;
            let deadline = Instant::now() + Duration::from_secs(5);
            while procfs::stat(pid, pid).map(|s| s.state()).unwrap_or('?') != 'S' && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            task::kill(pid, sig)?;
            while procfs::stat(pid, pid).map(|s| s.state()).unwrap_or('Z') != 'Z' {
                if Instant::now() >= deadline {
                    return Err(Error::Unsupported(format!("zombie {pid} did not die of signal {sig}")));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            world.procs[idx].tasks.clear();
            continue;
        }
        // We saw the exit as tracer; the real parent now sees a zombie.
        wait_gone(pid);
        world.procs[idx].tasks.clear();
    }
    Ok(())
}

/// Turn one puppet into the process of `plan`. Returns the pages restored.
#[allow(clippy::too_many_arguments)]
fn build_process(
    cp: &Checkpoint,
    files: &mut OpenFiles,
    plan: &ProcessPlan,
    proc_: &mut Proc,
    keep: u64,
    scratch: &Scratch,
    done_files: &mut BTreeSet<u32>,
    done_fs: &mut BTreeSet<u32>,
    is_root: bool,
) -> Result<()> {
    let pid = proc_.pid;
    let _span = tracing::info_span!("restore", pid).entered();
    let tc = plan.tc()?.clone();
    let mut thread_tids: Vec<Pid> = Vec::new();
    {
        let main = &proc_.tasks[0].tracee;
        let mut s = session(main, pid, keep)?;
        let r = (|| -> Result<()> {
            let max_fd = plan.fds.iter().map(|f| f.fd as i32).max().unwrap_or(2);
            let courier = Courier::new(&mut s, (max_fd + 1).max(100))?;

            fault::point("files")?;
            if done_files.insert(plan.ids.files_id) {
                files::restore_fds(&mut s, &courier, cp, files, &plan.fds)?;
                files::restore_epolls(&mut s, scratch, files, &plan.fds)?;
            }
            if let Some(fs) = &plan.fs {
                if done_fs.insert(plan.ids.fs_id) {
                    restore_fs(&mut s, scratch, &courier, cp, files, fs)?;
                }
            }

            fault::point("attributes")?;
            s.call("personality", libc::SYS_personality, &[u64::from(tc.personality)])?;
            if let Some(rl) = &tc.rlimits {
                attrs::restore_rlimits(pid, rl)?;
            }
            if let Some(tm) = &tc.timers {
                timers::restore(&mut s, scratch, tm)?;
            }
            attrs::restore_process_flags(&mut s, plan.mm.dumpable, tc.child_subreaper == Some(true), plan.mm.thp_disabled == Some(true))?;
            if let Some(oom) = tc.oom_score_adj {
                if let Err(e) = std::fs::write(format!("/proc/{pid}/oom_score_adj"), oom.to_string()) {
                    tracing::warn!(pid, "cannot restore oom_score_adj {oom}: {e}");
                }
            }
            set_mm_map(&mut s, scratch, &courier, cp, files, &plan.mm)?;
            courier.close(&mut s)?;
            // Locks last: closing any descriptor of a file (as placing
            // descriptors does) drops the process's POSIX locks on it.
            for l in files.locks.iter().filter(|l| l.pid == plan.entry.pid as i32) {
                crate::state::locks::restore(&mut s, scratch, l)?;
            }

            // Threads share everything set so far.
            for t in &plan.entry.threads[1.min(plan.entry.threads.len())..] {
                let flags = (libc::CLONE_VM
                    | libc::CLONE_FS
                    | libc::CLONE_FILES
                    | libc::CLONE_SIGHAND
                    | libc::CLONE_THREAD
                    | libc::CLONE_SYSVSEM) as u64;
                thread_tids.push(clone_in(&mut s, scratch, *t as Pid, flags, 0)?);
            }
            Ok(())
        })();
        let e = s.end();
        r?;
        e?;
    }
    for tid in &thread_tids {
        let tracee = Tracee::adopt(*tid);
        first_stop(&tracee)?;
        proc_.tasks.push(Task { tid: *tid, tracee });
    }

    // Signal actions and queues: an ignored SIGTRAP needs the signal-free
    // way of running calls from here on.
    let quiet = signals::ignores_sigtrap(&tc.sigactions);
    // Per-thread state, in each thread; creds last, main thread last.
    let order: Vec<usize> = (1..proc_.tasks.len()).chain(std::iter::once(0)).collect();
    let mut sessions: Vec<Option<Session<'_>>> = Vec::new();
    for t in &proc_.tasks {
        sessions.push(Some(session(&t.tracee, pid, keep)?));
    }
    let r = (|| -> Result<()> {
        for &i in &order {
            let s = sessions[i].as_mut().expect("open");
            let core = &plan.cores[i];
            let ti = core.thread_info.as_ref().expect("checked in load");
            let mut tcore = core.thread_core.clone().unwrap_or_default();
            if is_root && i == 0 && tcore.pdeath_sig.unwrap_or(0) != 0 {
                // Its parent is outside the tree: after restore that is
                // stasis, whose exit would fire the signal.
                tracing::warn!(pid, sig = tcore.pdeath_sig, "not restoring the parent-death signal of the root task");
                tcore.pdeath_sig = Some(0);
            }
            if tcore.comm.is_none() {
                tcore.comm = Some(tc.comm.clone());
            }
            attrs::restore_thread_inside(s, scratch, &tcore, ti.clear_tid_addr)?;
            attrs::restore_sched(proc_.tasks[i].tid, &tcore, s, scratch)?;
            if let Some(sas) = &tcore.sas {
                signals::restore_altstack(s, scratch, sas)?;
            }
        }
        let main = sessions[0].as_mut().expect("open");
        if quiet {
            main.r.use_syscall_stops(true);
        }
        signals::restore_actions(main, scratch, &tc.sigactions)?;
        // A helper or zombie child that exited during restore left a
        // SIGCHLD that the original process never had.
        drain_sigchld(main, scratch)?;
        if let Some(q) = &tc.signals_s {
            signals::restore_queue(main, scratch, pid, None, q)?;
        }
        // A thread-directed signal may only be queued by its own thread.
        for (i, t) in proc_.tasks.iter().enumerate() {
            if let Some(q) = plan.cores[i].thread_core.as_ref().and_then(|c| c.signals_p.as_ref()) {
                let s = sessions[i].as_mut().expect("open");
                if quiet {
                    s.r.use_syscall_stops(true);
                }
                signals::restore_queue(s, scratch, pid, Some(t.tid), q)?;
            }
        }
        restore_seccomp_filters(cp, plan, proc_, &mut sessions, scratch)?;
        for &i in &order {
            let s = sessions[i].as_mut().expect("open");
            if quiet {
                s.r.use_syscall_stops(true);
            }
            if let Some(c) = plan.cores[i].thread_core.as_ref().and_then(|c| c.creds.as_ref()) {
                let now = procfs::status(pid, proc_.tasks[i].tid)?;
                attrs::restore_creds(s, scratch, c, &now)?;
            }
            if plan.cores[i].thread_core.as_ref().and_then(|c| c.seccomp_mode) == Some(SeccompMode::strict) {
                seccomp::set_strict(s)?;
            }
        }
        fault::point("registers")?;
        // The last call removes the code page it runs from: the kernel
        // reports the call's end before fetching another instruction.
        let main = sessions[0].as_mut().expect("open");
        main.call("munmap restore code", libc::SYS_munmap, &[keep, KEEP_LEN])?;
        Ok(())
    })();
    for (i, s) in sessions.iter_mut().enumerate() {
        if let Some(mut s) = s.take() {
            let core = &plan.cores[i];
            let blocked = core.thread_core.as_ref().and_then(|c| c.blk_sigset).unwrap_or(tc.blk_sigset);
            s.set_saved_mask(blocked & !(sigbit(libc::SIGKILL) | sigbit(libc::SIGSTOP)));
            let e = s.end();
            if r.is_ok() {
                e?;
            }
        }
    }
    r?;
    for (i, t) in proc_.tasks.iter().enumerate() {
        let ti = plan.cores[i].thread_info.as_ref().expect("checked in load");
        regs::restore(&t.tracee, &ti.gpregs, &ti.fpregs)?;
    }
    Ok(())
}

/// Seccomp filters of a process's threads, before its credentials (see
/// `state::seccomp`); seccomp is suspended for its tasks from here on.
fn restore_seccomp_filters(
    cp: &Checkpoint,
    plan: &ProcessPlan,
    proc_: &Proc,
    sessions: &mut [Option<Session<'_>>],
    scratch: &Scratch,
) -> Result<()> {
    let modes: Vec<Option<i32>> = plan.cores.iter().map(|c| c.thread_core.as_ref().and_then(|t| t.seccomp_mode)).collect();
    if modes.iter().all(|m| m.unwrap_or(0) == SeccompMode::disabled) {
        return Ok(());
    }
    for t in &proc_.tasks {
        t.tracee.set_options(PUPPET_OPTIONS | stasis_sys::ptrace::PTRACE_O_SUSPEND_SECCOMP)?;
    }
    let filters = match cp.open_optional("SECCOMP")? {
        Some(mut r) => r.all::<SeccompEntry>()?.into_iter().flat_map(|e| e.seccomp_filters).collect::<Vec<_>>(),
        None => Vec::new(),
    };
    let mut chains = Vec::new();
    for (i, c) in plan.cores.iter().enumerate() {
        let tc = c.thread_core.as_ref();
        chains.push(match (modes[i], tc.and_then(|t| t.seccomp_filter)) {
            (Some(SeccompMode::filter), Some(last)) => seccomp::chain(&filters, last)?,
            (Some(SeccompMode::filter), None) => {
                return Err(Error::BadImage(format!("thread {} of {} is in seccomp filter mode without a filter", i, plan.pid())))
            }
            _ => Vec::new(),
        });
    }
    // What every thread has, installed once for all of them.
    let mut common = chains[0].clone();
    for c in &chains[1..] {
        let n = common.iter().zip(c).take_while(|(a, b)| a == b).count();
        common.truncate(n);
    }
    let main = sessions[0].as_mut().expect("open");
    for &f in &common {
        seccomp::install(main, scratch, &filters[f as usize], chains.len() > 1)?;
    }
    for (i, c) in chains.iter().enumerate() {
        let s = sessions[i].as_mut().expect("open");
        for &f in &c[common.len()..] {
            seccomp::install(s, scratch, &filters[f as usize], false)?;
        }
    }
    Ok(())
}

/// Consume pending SIGCHLDs (rt_sigtimedwait with a zero timeout).
fn drain_sigchld(s: &mut Session<'_>, scratch: &Scratch) -> Result<()> {
    let set = scratch.at(0);
    let ts = scratch.at(16);
    let info = scratch.at(64);
    s.write(set, &sigbit(libc::SIGCHLD).to_le_bytes())?;
    s.write(ts, &[0u8; 16])?;
    loop {
        let r = s.raw(libc::SYS_rt_sigtimedwait, &[set.0, info.0, ts.0, 8])?;
        if r != i64::from(libc::SIGCHLD) {
            return Ok(());
        }
    }
}

/// Let every task go: detached, stopped tasks with their stop signal.
fn release(plans: &[ProcessPlan], world: &mut World) -> Result<()> {
    for p in &mut world.procs {
        let plan = &plans[p.plan];
        let stopped = plan.cores[0].tc.as_ref().is_some_and(|tc| tc.task_state == TASK_STOPPED);
        let sig = if stopped {
            plan.cores[0].tc.as_ref().and_then(|tc| tc.stop_signo).map(|s| s as i32).unwrap_or(libc::SIGSTOP)
        } else {
            0
        };
        for t in p.tasks.drain(..) {
            t.tracee.detach(sig)?;
        }
    }
    world.released = true;
    Ok(())
}

fn restore_fs(s: &mut Session<'_>, scratch: &Scratch, courier: &Courier, cp: &Checkpoint, files: &mut OpenFiles, fs: &FsEntry) -> Result<()> {
    use std::os::fd::AsRawFd;
    let root_name = files.entry(fs.root_id)?.reg.as_ref().map(|r| r.name.clone()).unwrap_or_default();
    if root_name != "/" {
        let ours = files.open(cp, fs.root_id)?.as_raw_fd();
        let fd = courier.pull(s, ours)?;
        s.call("fchdir", libc::SYS_fchdir, &[fd.0 as u64])?;
        let dot = files::write_cstr(s, scratch, 0, ".")?;
        s.call("chroot", libc::SYS_chroot, &[dot.0])?;
        s.call("close", libc::SYS_close, &[fd.0 as u64])?;
    }
    let ours = files.open(cp, fs.cwd_id)?.as_raw_fd();
    let fd = courier.pull(s, ours)?;
    s.call("fchdir", libc::SYS_fchdir, &[fd.0 as u64])?;
    s.call("close", libc::SYS_close, &[fd.0 as u64])?;
    if let Some(u) = fs.umask {
        s.call("umask", libc::SYS_umask, &[u64::from(u)])?;
    }
    Ok(())
}

const PR_SET_MM: u64 = 35;
const PR_SET_MM_MAP: u64 = 14;

/// mm fields and the exe link, in one PR_SET_MM_MAP.
fn set_mm_map(s: &mut Session<'_>, scratch: &Scratch, courier: &Courier, cp: &Checkpoint, files: &mut OpenFiles, mm: &MmEntry) -> Result<()> {
    use std::os::fd::AsRawFd;
    let exe = files.open_with(cp, mm.exe_file_id, libc::O_RDONLY)?;
    let exe_fd = courier.pull(s, exe.as_raw_fd())?;
    let mut auxv = mm.mm_saved_auxv.clone();
    auxv.extend_from_slice(&[0, 0]);
    let auxv_bytes: Vec<u8> = auxv.iter().flat_map(|w| w.to_le_bytes()).collect();
    let auxv_at = scratch.at(1024);
    s.write(auxv_at, &auxv_bytes)?;
    let map = mm::mm_map_bytes(mm, auxv_at.0, auxv_bytes.len() as u32, exe_fd.0);
    let map_at = scratch.at(0);
    s.write(map_at, &map)?;
    let r = s.call("prctl(PR_SET_MM_MAP)", libc::SYS_prctl, &[PR_SET_MM, PR_SET_MM_MAP, map_at.0, map.len() as u64, 0]);
    s.call("close", libc::SYS_close, &[exe_fd.0 as u64])?;
    r?;
    Ok(())
}
