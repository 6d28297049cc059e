//! `restore`: recreate the tree with its pids, rebuild each task from the
//! inside through syscalls run in it, load registers, and let go.
//!
//! Each task starts as a "puppet": a child of stasis created with clone3(2)
//! and `set_tid`, which asks to be traced and stops before running any code
//! of its own. Everything it inherited from stasis is then replaced:
//! memory, fds, signal state, attributes; registers last. If anything
//! fails, every puppet is killed and waited for: nothing is left behind.

use crate::error::{Error, IoContext, Result};
use crate::inject::{self, sigbit, Scratch, Session};
use crate::options::RestoreOptions;
use crate::progress::Progress;
use crate::state::files::{self, Courier, OpenFiles};
use crate::state::{attrs, mm, regs, signals, timers};
use crate::{fault, procfs};
use stasis_image::checkpoint::Checkpoint;
use stasis_image::file::ImageWriter;
use stasis_image::kinds::kind;
use stasis_image::messages::*;
use stasis_sys::{task, Pid, RemoteAddr, Stop, Tracee, PAGE_SIZE};
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

/// Scratch memory for call arguments inside a puppet, after one page of
/// code.
const SCRATCH_LEN: u64 = 64 * 1024;

/// Images of one process, read and checked before any task is created.
pub struct ProcessPlan {
    pub entry: PstreeEntry,
    pub _ids: TaskKobjIdsEntry,
    pub cores: Vec<CoreEntry>,
    pub mm: MmEntry,
    pub fds: Vec<FdinfoEntry>,
    pub fs: Option<FsEntry>,
}

impl ProcessPlan {
    fn tc(&self) -> Result<&TaskCoreEntry> {
        self.cores[0].tc.as_ref().ok_or_else(|| Error::BadImage(format!("core-{}.img has no task core", self.entry.pid)))
    }
}

pub fn load(cp: &Checkpoint) -> Result<Vec<ProcessPlan>> {
    let mut plans = Vec::new();
    for e in &cp.pstree {
        let threads: Vec<u32> = if e.threads.is_empty() { vec![e.pid] } else { e.threads.clone() };
        if threads[0] != e.pid {
            return Err(Error::BadImage(format!("pstree.img: the first thread of {} is {}", e.pid, threads[0])));
        }
        let mut cores = Vec::new();
        for t in &threads {
            let c = cp.core(*t)?;
            if c.mtype != regs::MTYPE || c.thread_info.is_none() {
                return Err(Error::Unsupported(format!("core-{t}.img is not for x86_64")));
            }
            cores.push(c);
        }
        let ids = cp.ids(e.pid)?;
        let (pages_id, _) = cp.pagemap(e.pid)?;
        let pages = cp.pages_path(pages_id);
        if !pages.exists() {
            return Err(stasis_image::file::ImageError::new(&pages, None, "image file is missing").into());
        }
        plans.push(ProcessPlan {
            entry: e.clone(),
            _ids: ids.clone(),
            cores,
            mm: cp.mm(e.pid)?,
            fds: files::fd_table(cp, ids.files_id)?,
            fs: Some(cp.fs(e.pid)?),
        });
    }
    Ok(plans)
}

/// Wait until `pid` is free, for a little while.
fn wait_pid_free(pid: Pid) -> Result<()> {
    let deadline = Instant::now() + pid_wait();
    loop {
        let path = format!("/proc/{pid}");
        if !std::path::Path::new(&path).exists() {
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

/// A task being restored.
struct Puppet {
    pid: Pid,
    tracee: Tracee,
}

/// Every puppet created so far; killed on drop unless released.
#[derive(Default)]
struct Puppets {
    list: Vec<Puppet>,
}

impl Drop for Puppets {
    fn drop(&mut self) {
        for p in &self.list {
            let _ = task::kill(p.pid, libc::SIGKILL);
        }
        for p in &self.list {
            loop {
                match stasis_sys::ptrace::wait_tid(p.pid) {
                    Ok(Stop::Exited(_) | Stop::Killed(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }
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

pub fn restore(o: &RestoreOptions) -> Result<Restored> {
    let t0 = Instant::now();
    let cp = Checkpoint::open(&o.images_dir)?;
    let plans = load(&cp)?;
    if plans.len() > 1 || plans[0].cores.len() > 1 {
        return Err(Error::Unsupported(
            "restoring more than one task (threads or child processes) is not supported yet".into(),
        ));
    }
    let mut files = OpenFiles::load(&cp)?;
    let plan = &plans[0];
    let root_pid = plan.entry.pid as Pid;
    if !o.shell_job && plan.entry.sid != plan.entry.pid {
        return Err(Error::Refused(format!(
            "process {root_pid} was not a session leader when dumped; restore it with --shell-job"
        )));
    }
    wait_pid_free(root_pid)?;
    fault::point("fork")?;
    let mut puppets = Puppets::default();
    let child = match task::spawn_stopped_child(root_pid) {
        Ok(c) => c,
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            return Err(Error::Refused(format!("pid {root_pid} is in use by another process; the restored process needs it")))
        }
        Err(e) => return Err(e.into()),
    };
    puppets.list.push(Puppet { pid: child, tracee: Tracee::adopt(child) });
    match puppets.list[0].tracee.wait()? {
        Stop::Signal(libc::SIGSTOP) => {}
        other => return Err(Error::Unsupported(format!("new task {child} did not stop as expected: {other}"))),
    }
    puppets.list[0].tracee.set_options(libc::PTRACE_O_EXITKILL)?;
    let forking_us = t0.elapsed().as_micros() as u64;

    let mut progress = Progress::new(o.progress, "restoring memory", count_pages(&cp, &plans)?);
    let pages = build_process(o, &cp, &mut files, plan, &puppets.list[0], &mut progress)?;
    progress.finish();

    fault::point("release")?;
    let list = std::mem::take(&mut puppets.list);
    for p in list {
        p.tracee.detach(0)?;
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
    for p in plans {
        let (_, entries) = cp.pagemap(p.entry.pid)?;
        n += entries.iter().map(|e| e.nr_pages.unwrap_or(u64::from(e.compat_nr_pages))).sum::<u64>();
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

/// Turn one puppet into the process of `plan`.
fn build_process(
    _o: &RestoreOptions,
    cp: &Checkpoint,
    files: &mut OpenFiles,
    plan: &ProcessPlan,
    puppet: &Puppet,
    progress: &mut Progress,
) -> Result<u64> {
    let pid = puppet.pid;
    let _span = tracing::info_span!("restore", pid).entered();
    let t = &puppet.tracee;
    let tc = plan.tc()?;
    let core = &plan.cores[0];
    let ti = core.thread_info.as_ref().ok_or_else(|| Error::BadImage(format!("core-{pid}.img has no registers")))?;
    let thread_core = core.thread_core.clone().unwrap_or_default();

    let maps = procfs::smaps(pid)?;
    let gadget = inject::find_gadget(pid, &maps)?;
    let mut s = Session::begin(t, pid, gadget)?;
    // Calls run with no usable stack: none needs one, and a stack pointer
    // inside the image's alternate stack would make sigaltstack refuse.
    let mut base = *s.r.saved_regs();
    base.rsp = 0;
    s.r.set_saved_regs(base);
    attrs::unregister_rseq(&mut s, t)?;

    // Code and scratch pages, away from both the image's mappings and ours.
    let mut busy: Vec<(u64, u64)> = plan.mm.vmas.iter().map(|v| (v.start, v.end)).collect();
    busy.extend(maps.iter().map(|m| (m.start, m.end)));
    let keep_len = PAGE_SIZE + SCRATCH_LEN;
    let keep = mm::find_hole(&busy, keep_len).ok_or_else(|| Error::Unsupported("no free address space for restore code".into()))?;
    s.call(
        "mmap restore code",
        libc::SYS_mmap,
        &[
            keep,
            keep_len,
            (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64,
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64,
            u64::MAX,
            0,
        ],
    )?;
    s.write(RemoteAddr(keep), &[0x0f, 0x05, 0xcc])?;
    s.r.set_gadget(RemoteAddr(keep));
    let scratch = Scratch { addr: RemoteAddr(keep + PAGE_SIZE), len: SCRATCH_LEN };

    // Nothing of ours stays open in the task.
    s.call("close_range", libc::SYS_close_range, &[0, u64::from(u32::MAX), 0])?;
    if plan.entry.sid == plan.entry.pid {
        s.call("setsid", libc::SYS_setsid, &[])?;
    } else if plan.entry.pgid == plan.entry.pid {
        s.call("setpgid", libc::SYS_setpgid, &[0, 0])?;
    }
    let max_fd = plan.fds.iter().map(|f| f.fd as i32).max().unwrap_or(2);
    let courier = Courier::new(&mut s, (max_fd + 1).max(100))?;

    fault::point("memory")?;
    let pages = mm::restore(&mut s, &scratch, (keep, keep + keep_len), &courier, cp, files, &plan.mm, plan.entry.pid, &mut |n| {
        progress.add(n)
    })?;

    fault::point("files")?;
    files::restore_fds(&mut s, &courier, cp, files, &plan.fds)?;
    if let Some(fs) = &plan.fs {
        restore_fs(&mut s, &scratch, &courier, cp, files, fs)?;
    }

    fault::point("attributes")?;
    s.call("personality", libc::SYS_personality, &[u64::from(tc.personality)])?;
    if let Some(rl) = &tc.rlimits {
        attrs::restore_rlimits(pid, rl)?;
    }
    if let Some(tm) = &tc.timers {
        timers::restore(&mut s, &scratch, tm)?;
    }
    attrs::restore_process_flags(&mut s, plan.mm.dumpable, tc.child_subreaper == Some(true), plan.mm.thp_disabled == Some(true))?;
    if let Some(oom) = tc.oom_score_adj {
        if let Err(e) = std::fs::write(format!("/proc/{pid}/oom_score_adj"), oom.to_string()) {
            tracing::warn!(pid, "cannot restore oom_score_adj {oom}: {e}");
        }
    }
    attrs::restore_thread_inside(&mut s, &scratch, &thread_core, ti.clear_tid_addr)?;
    attrs::restore_comm(&mut s, &scratch, &tc.comm)?;
    attrs::restore_sched(pid, &thread_core, &mut s, &scratch)?;
    if let Some(sas) = &thread_core.sas {
        signals::restore_altstack(&mut s, &scratch, sas)?;
    }
    set_mm_map(&mut s, &scratch, &courier, cp, files, &plan.mm)?;
    // Signal actions and queues last among the calls: an ignored SIGTRAP
    // needs the signal-free way of running them from here on.
    if signals::ignores_sigtrap(&tc.sigactions) {
        s.r.use_syscall_stops(true);
    }
    signals::restore_actions(&mut s, &scratch, &tc.sigactions)?;
    if let Some(q) = &tc.signals_s {
        signals::restore_queue(&mut s, &scratch, pid, None, q)?;
    }
    if let Some(q) = &thread_core.signals_p {
        signals::restore_queue(&mut s, &scratch, pid, Some(pid), q)?;
    }
    courier.close(&mut s)?;
    if let Some(c) = &thread_core.creds {
        let now = procfs::status(pid, pid)?;
        attrs::restore_creds(&mut s, &scratch, c, &now)?;
    }

    fault::point("registers")?;
    // The last call removes the code page it runs from: the kernel reports
    // the call's end before fetching another instruction.
    s.call("munmap restore code", libc::SYS_munmap, &[keep, keep_len])?;
    let blocked = thread_core.blk_sigset.unwrap_or(tc.blk_sigset);
    s.set_saved_mask(blocked & !(sigbit(libc::SIGKILL) | sigbit(libc::SIGSTOP)));
    s.end()?;
    regs::restore(t, &ti.gpregs, &ti.fpregs)?;
    Ok(pages)
}

fn restore_fs(s: &mut Session<'_>, scratch: &Scratch, courier: &Courier, cp: &Checkpoint, files: &mut OpenFiles, fs: &FsEntry) -> Result<()> {
    let root_name = files.entry(fs.root_id)?.reg.as_ref().map(|r| r.name.clone()).unwrap_or_default();
    if root_name != "/" {
        use std::os::fd::AsRawFd;
        let ours = files.open(cp, fs.root_id)?.as_raw_fd();
        let fd = courier.pull(s, ours)?;
        s.call("fchdir", libc::SYS_fchdir, &[fd.0 as u64])?;
        let dot = files::write_cstr(s, scratch, 0, ".")?;
        s.call("chroot", libc::SYS_chroot, &[dot.0])?;
        s.call("close", libc::SYS_close, &[fd.0 as u64])?;
    }
    use std::os::fd::AsRawFd;
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
