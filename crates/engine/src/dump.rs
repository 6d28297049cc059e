//! `dump`: freeze the tree, read its state from outside (and, for what only
//! a task can see of itself, through syscalls run inside it), write the
//! images, then kill the tree, resume it, or leave it stopped.
//!
//! Whatever fails, the tree is resumed exactly as it was: every syscall
//! session puts registers and signal mask back, the scratch memory we map
//! into a task is unmapped before its memory is read, and nothing else is
//! changed in the tasks.

use crate::error::{Error, IoContext, Result};
use crate::freeze::{self, Process, Release, Tree};
use crate::inject::{self, sigbit, Scratch, Session};
use crate::options::{AfterDump, DumpOptions};
use crate::progress::Progress;
use crate::state::{attrs, files, mm, regs, seccomp, signals, timers};
use crate::{fault, netlock, procfs};
use stasis_image::file::ImageWriter;
use stasis_image::kinds::kind;
use stasis_image::messages::*;
use stasis_sys::{task, Pid};
use std::path::Path;
use std::time::Instant;

/// Numbers a dump reports (and writes to `stats-dump`).
#[derive(Debug, Default, Clone)]
pub struct DumpStats {
    pub freezing_us: u64,
    pub frozen_us: u64,
    pub memdump_us: u64,
    pub memwrite_us: u64,
    pub pages_scanned: u64,
    pub pages_written: u64,
    /// Pages a child shares with its parent since fork, saved once.
    pub pages_skipped_parent: u64,
}

/// Everything saved about one process before it is written out.
struct ProcessImage {
    pstree: PstreeEntry,
    ids: TaskKobjIdsEntry,
    cores: Vec<(Pid, CoreEntry)>,
    mm: Option<MmEntry>,
    pagemap: Vec<PagemapEntry>,
    pages_id: u32,
    fds: Vec<FdinfoEntry>,
    fs: Option<FsEntry>,
}

/// Namespace ids: everything is in stasis's own namespaces.
fn ns_ids(ids: &mut TaskKobjIdsEntry) {
    ids.pid_ns_id = Some(1);
    ids.net_ns_id = Some(2);
    ids.ipc_ns_id = Some(3);
    ids.uts_ns_id = Some(4);
    ids.time_ns_id = Some(5);
    ids.mnt_ns_id = Some(6);
    ids.user_ns_id = Some(7);
    ids.cgroup_ns_id = Some(8);
}

pub fn dump(o: &DumpOptions) -> Result<DumpStats> {
    let dir = &o.images_dir;
    check_images_dir(dir)?;
    let root = procfs::stat(o.pid, o.pid).map_err(|_| Error::Refused(format!("no process with pid {}", o.pid)))?;
    if o.pid == std::process::id() as Pid {
        return Err(Error::Refused("stasis cannot dump itself".into()));
    }
    if root.sid() != o.pid && !o.shell_job {
        return Err(Error::Refused(format!(
            "process {} is not a session leader (its session is {}); dump it with --shell-job if it was started from a shell",
            o.pid,
            root.sid()
        )));
    }
    let t0 = Instant::now();
    fault::point("seize")?;
    let mut tree = freeze::freeze(o.pid)?;
    let mut stats = DumpStats { freezing_us: t0.elapsed().as_micros() as u64, ..DumpStats::default() };
    let frozen = Instant::now();
    tracing::info!(pid = o.pid, processes = tree.procs.len(), "tree frozen");
    let mut table = files::FileTable::new(o.ghost_limit);
    table.shell_job = o.shell_job;
    table.tcp_established = o.tcp_established;
    table.ext_unix_sk = o.ext_unix_sk;
    table.file_locks = o.file_locks;
    // Packets of every connection are held back before any socket enters
    // repair mode: repair mode does not stop the kernel from taking in
    // (and acknowledging) data, which would then be missing from the image.
    let conns = if o.tcp_established { tree_connections(&tree)? } else { Vec::new() };
    let mut lock = match netlock::lock(&conns) {
        Ok(added) => netlock::Guard(added),
        Err(e) => {
            freeze::release(&mut tree, Release::Resume);
            return Err(e);
        }
    };
    let result = dump_frozen(o, &tree, &mut table, &mut stats);
    let result = result.and_then(|()| fault::point("release"));
    match result {
        Ok(()) => {
            let how = match o.after {
                AfterDump::Kill => Release::Kill,
                AfterDump::Run => Release::Resume,
                AfterDump::Stop => Release::Stop,
            };
            if how == Release::Kill {
                // Their sockets vanish silently (they are in repair mode
                // when the tasks die). Connections to the outside stay
                // locked, so the peer is not answered with a reset while the
                // process is gone; the others are let go with the tree.
                kill_and_wait(&mut tree);
                lock.0.retain(|c| conns.iter().any(|r| r.local == c.remote && r.lport == c.rport && r.remote == c.local && r.rport == c.lport));
            } else {
                table.inet.release();
                freeze::release(&mut tree, how);
            }
            stats.frozen_us = frozen.elapsed().as_micros() as u64;
            write_stats(dir, &stats)?;
            Ok(stats)
        }
        Err(e) => {
            table.inet.release();
            freeze::release(&mut tree, Release::Resume);
            Err(e)
        }
    }
}

/// The established TCP connections of the tree's sockets.
fn tree_connections(tree: &Tree) -> Result<Vec<netlock::Conn>> {
    let mut inodes = std::collections::BTreeSet::new();
    for p in tree.procs.iter().filter(|p| p.zombie.is_none()) {
        for fd in procfs::fds(p.pid)? {
            if let Ok(link) = procfs::readlink(p.pid, &format!("fd/{fd}")) {
                if let Some(ino) = link.strip_prefix("socket:[").and_then(|l| l.strip_suffix(']')).and_then(|n| n.parse::<u32>().ok()) {
                    inodes.insert(ino);
                }
            }
        }
    }
    let mut out = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        let words = if family == libc::AF_INET { 1 } else { 4 };
        for i in crate::diag::tcp_sockets(family)?.values().filter(|i| i.state == 1 && inodes.contains(&i.ino)) {
            if let (Some(local), Some(remote)) = (netlock::ip_of(&i.src[..words]), netlock::ip_of(&i.dst[..words])) {
                out.push(netlock::Conn { local, lport: i.sport, remote, rport: i.dport });
            }
        }
    }
    Ok(out)
}

fn check_images_dir(dir: &Path) -> Result<()> {
    let md = std::fs::metadata(dir).ctx(|| format!("images directory {}", dir.display()))?;
    if !md.is_dir() {
        return Err(Error::Refused(format!("{} is not a directory", dir.display())));
    }
    Ok(())
}

/// Kill every task and wait until the kernel has torn them down, so the
/// pids are free as soon as their parents reap them.
fn kill_and_wait(tree: &mut Tree) {
    for p in tree.procs.iter().filter(|p| p.zombie.is_none()) {
        if let Err(e) = task::kill(p.pid, libc::SIGKILL) {
            tracing::warn!(pid = p.pid, "cannot kill: {e}");
        }
    }
    for p in &mut tree.procs {
        // Other threads first: a thread group leader is reported dead only
        // after the rest of its group has been waited for.
        p.threads.reverse();
        for t in p.threads.drain(..) {
            loop {
                match t.tracee.wait() {
                    Ok(stasis_sys::Stop::Exited(_) | stasis_sys::Stop::Killed(_)) | Err(_) => break,
                    Ok(_) => {
                        let _ = t.tracee.cont(0);
                    }
                }
            }
        }
    }
}

fn write_stats(dir: &Path, s: &DumpStats) -> Result<()> {
    let e = StatsEntry {
        dump: Some(DumpStatsEntry {
            freezing_time: s.freezing_us as u32,
            frozen_time: s.frozen_us as u32,
            memdump_time: s.memdump_us as u32,
            memwrite_time: s.memwrite_us as u32,
            pages_scanned: s.pages_scanned,
            pages_skipped_parent: s.pages_skipped_parent,
            pages_written: s.pages_written,
            irmap_resolve: Some(0),
            pages_lazy: 0,
            page_pipes: Some(0),
            page_pipe_bufs: Some(0),
            shpages_scanned: Some(0),
            shpages_skipped_parent: Some(0),
            shpages_written: Some(0),
        }),
        restore: None,
    };
    let mut w = ImageWriter::create(&dir.join("stats-dump"), kind("STATS"))?;
    w.put(&e)?;
    w.finish()?;
    Ok(())
}

fn dump_frozen(o: &DumpOptions, tree: &Tree, table: &mut files::FileTable, stats: &mut DumpStats) -> Result<()> {
    let dir = &o.images_dir;
    let mut images = Vec::new();
    let mut next_pages_id = 1;
    let mut progress = Progress::new(o.progress, "dumping memory", 0);
    let mut next_id = [2u32; 4];
    let mut shmem = std::collections::BTreeMap::new();
    let mut ids: Vec<(Pid, TaskKobjIdsEntry)> = Vec::new();
    let mut seccomp_dump = seccomp::SeccompDump::default();
    // Ptys with their master in the tree, found before any fd is dumped.
    let pidfds: Vec<(Pid, std::os::fd::OwnedFd)> =
        tree.procs.iter().filter(|p| p.zombie.is_none()).map(|p| Ok((p.pid, task::pidfd_open(p.pid)?))).collect::<Result<_>>()?;
    table.ptys = crate::state::tty::PtyDump::scan(&pidfds.iter().map(|(p, f)| (*p, std::os::fd::AsFd::as_fd(f))).collect::<Vec<_>>())?;
    drop(pidfds);
    for p in &tree.procs {
        if let Some(status) = p.zombie {
            images.push(zombie_image(o, p, status)?);
            continue;
        }
        let pids = process_ids(p.pid, &ids, &mut next_id)?;
        let parent = images
            .iter()
            .find(|i: &&ProcessImage| i.pstree.pid as Pid == p.ppid && p.pid != o.pid)
            .and_then(|i| i.mm.as_ref().map(|m| (p.ppid, m)));
        let mut img =
            dump_process(o, p, table, pids.files_id, &mut next_pages_id, &mut progress, stats, &mut shmem, parent, &mut seccomp_dump)?;
        img.ids = pids.clone();
        ids.push((p.pid, pids));
        images.push(img);
    }
    progress.finish();
    let t = Instant::now();
    for (k, v) in table.memfd_contents() {
        shmem.entry(k).or_insert(v);
    }
    stats.pages_written += mm::dump_shmem(dir, &shmem, &mut next_pages_id)?;
    stats.memwrite_us += t.elapsed().as_micros() as u64;
    fault::point("images")?;
    write_images(dir, &images, table, seccomp_dump)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn dump_process(
    o: &DumpOptions,
    p: &Process,
    table: &mut files::FileTable,
    obj_id: u32,
    next_pages_id: &mut u32,
    progress: &mut Progress,
    stats: &mut DumpStats,
    shmem: &mut std::collections::BTreeMap<u64, (std::path::PathBuf, u64)>,
    parent: Option<(Pid, &MmEntry)>,
    seccomp_dump: &mut seccomp::SeccompDump,
) -> Result<ProcessImage> {
    let pid = p.pid;
    let dir = &o.images_dir;
    let _span = tracing::info_span!("dump", pid).entered();
    let status = procfs::status(pid, pid)?;
    // Calls we run inside must not meet the process's seccomp filters.
    let tids: Vec<Pid> = p.threads.iter().map(|t| t.tid).collect();
    if seccomp::in_use(pid, &tids)? {
        for t in &p.threads {
            t.tracee.set_options(stasis_sys::ptrace::PTRACE_O_SUSPEND_SECCOMP).map_err(|e| {
                Error::Unsupported(format!(
                    "process {pid} uses seccomp; suspending it while stasis works inside needs CAP_SYS_ADMIN: {}",
                    crate::error::detail(&e)
                ))
            })?;
        }
    }

    // Registers first, before any syscall runs in the task.
    fault::point("regs")?;
    let mut thread_regs = Vec::new();
    for t in &p.threads {
        thread_regs.push(regs::dump(&t.tracee)?);
    }

    // What only the task can tell: through syscalls run inside it.
    let maps = procfs::smaps(pid)?;
    let gadget = inject::find_gadget(pid, &maps)?;
    let trap_ignored = status.hex("SigIgn") & sigbit(libc::SIGTRAP) != 0;
    let leader = p.leader();
    let mut s = Session::begin(&leader.tracee, pid, gadget)?;
    s.r.use_syscall_stops(trap_ignored);
    let inside = (|| -> Result<_> {
        fault::point("inject")?;
        let scratch = s.map_scratch(4096)?;
        let r = read_inside(&mut s, &scratch, p, pid, gadget, trap_ignored);
        s.unmap(scratch)?;
        r
    })();
    let end = s.end();
    let (actions, tmrs, proc_in, thread_in) = inside?;
    end?;
    let mut actions = actions;
    if trap_ignored {
        // Syscall stops do not disturb an ignored SIGTRAP, but make sure the
        // image says what the task had.
        if let Some(a) = signals::action_signals().zip(actions.iter_mut()).find(|(s, _)| *s == libc::SIGTRAP) {
            a.1.sigaction = libc::SIG_IGN as u64;
        }
    }

    fault::point("signals")?;
    let shared_q = signals::queue(&leader.tracee, true)?;

    // Memory, read after the scratch mapping is gone.
    fault::point("mm")?;
    let exe_link = procfs::readlink(pid, "exe")?;
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).ctx(|| format!("open the executable of {pid}"))?;
    let exe_file_id = table.path_file(dir, &exe_link, &exe, libc::O_RDONLY as u32)?;
    let maps = procfs::smaps(pid)?;
    let pages_id = *next_pages_id;
    *next_pages_id += 1;
    let t = Instant::now();
    let mut pages = mm::PagesOut::create(dir, pages_id)?;
    fault::point("pages")?;
    let fields = mm::MmFields {
        brk: proc_in.brk,
        dumpable: proc_in.dumpable,
        thp_disabled: proc_in.thp_disabled,
        exe_file_id,
    };
    let md = mm::dump(pid, &maps, &fields, table, dir, &mut pages, parent, progress)?;
    stats.pages_scanned += md.pages_scanned;
    stats.pages_skipped_parent += md.pages_inherited;
    stats.pages_written += pages.pages_written;
    pages.finish()?;
    stats.memdump_us += t.elapsed().as_micros() as u64;
    for (k, v) in md.shmem {
        shmem.entry(k).or_insert(v);
    }

    fault::point("files")?;
    let pidfd = task::pidfd_open(pid)?;
    let fds = files::dump_fds(pid, &pidfd, table, dir)?;
    let cwd_link = procfs::readlink(pid, "cwd")?;
    let cwd = std::fs::File::open(format!("/proc/{pid}/cwd")).ctx(|| format!("open the cwd of {pid}"))?;
    let root_link = procfs::readlink(pid, "root")?;
    let rootdir = std::fs::File::open(format!("/proc/{pid}/root")).ctx(|| format!("open the root of {pid}"))?;
    let dir_flags = (libc::O_RDONLY | libc::O_DIRECTORY) as u32;
    let fs = FsEntry {
        cwd_id: table.path_file(dir, &cwd_link, &cwd, dir_flags)?,
        root_id: table.path_file(dir, &root_link, &rootdir, dir_flags)?,
        umask: status.octal("Umask"),
    };

    // Per-thread cores.
    let st = procfs::stat(pid, pid)?;
    let mut cores = Vec::new();
    for (i, (t, (gp, fp))) in p.threads.iter().zip(thread_regs).enumerate() {
        let tstatus = procfs::status(pid, t.tid)?;
        let tin = &thread_in[i];
        let mut tc = ThreadCoreEntry {
            blk_sigset: Some(tin.mask),
            sas: Some(tin.sas.clone()),
            pdeath_sig: Some(tin.inside.pdeath_sig),
            signals_p: signals::queue(&t.tracee, false)?,
            creds: Some(attrs::dump_creds(&tstatus, tin.inside.secbits)?),
            comm: Some(procfs::read(pid, &format!("task/{}/comm", t.tid))?.trim_end_matches('\n').to_string()),
            ..ThreadCoreEntry::default()
        };
        attrs::dump_thread_outside(&t.tracee, &mut tc)?;
        (tc.seccomp_mode, tc.seccomp_filter) = seccomp_dump.thread(&t.tracee, pid)?;
        let mut core = CoreEntry {
            mtype: regs::MTYPE,
            thread_info: Some(ThreadInfoX86 {
                clear_tid_addr: tin.inside.clear_tid,
                gpregs: regs::gp_to_image(&gp),
                fpregs: fp,
                tls: Vec::new(),
            }),
            thread_core: Some(tc),
            ..CoreEntry::default()
        };
        if i == 0 {
            let task_state = if t.group_stop.is_some() { TASK_STOPPED } else { TASK_ALIVE };
            core.tc = Some(TaskCoreEntry {
                task_state,
                exit_code: 0,
                personality: u32::from_str_radix(procfs::read(pid, "personality")?.trim(), 16).unwrap_or(0),
                flags: st.flags(),
                blk_sigset: tin.mask,
                comm: st.comm.clone(),
                timers: Some(tmrs.clone()),
                rlimits: Some(attrs::dump_rlimits(pid)?),
                signals_s: shared_q.clone(),
                loginuid: procfs::read(pid, "loginuid").ok().and_then(|s| s.trim().parse().ok()),
                oom_score_adj: procfs::read(pid, "oom_score_adj").ok().and_then(|s| s.trim().parse().ok()),
                sigactions: actions.clone(),
                child_subreaper: Some(proc_in.child_subreaper),
                stop_signo: t.group_stop.map(|s| s as u32),
                ..TaskCoreEntry::default()
            });
        }
        cores.push((t.tid, core));
    }

    let mut ids = TaskKobjIdsEntry { vm_id: obj_id, files_id: obj_id, fs_id: obj_id, sighand_id: obj_id, ..Default::default() };
    ns_ids(&mut ids);
    Ok(ProcessImage {
        pstree: PstreeEntry {
            pid: pid as u32,
            ppid: if pid == o.pid { 0 } else { p.ppid as u32 },
            pgid: p.pgid as u32,
            sid: p.sid as u32,
            threads: p.threads.iter().map(|t| t.tid as u32).collect(),
        },
        ids,
        cores,
        mm: Some(md.mm),
        pagemap: md.pagemap,
        pages_id,
        fds,
        fs: Some(fs),
    })
}

struct ThreadInside {
    mask: u64,
    sas: ThreadSasEntry,
    inside: attrs::ThreadInside,
}

type Inside = (Vec<SaEntry>, TaskTimersEntry, attrs::ProcessInside, Vec<ThreadInside>);

fn read_inside(
    s: &mut Session<'_>,
    scratch: &Scratch,
    p: &Process,
    pid: Pid,
    gadget: stasis_sys::RemoteAddr,
    syscall_stops: bool,
) -> Result<Inside> {
    let actions = signals::dump_actions(s, scratch)?;
    let tmrs = timers::dump(s, scratch, pid)?;
    let proc_in = attrs::dump_process_inside(s, scratch)?;
    let mut threads = Vec::new();
    threads.push(ThreadInside {
        mask: s.saved_mask(),
        sas: signals::dump_altstack(s, scratch)?,
        inside: attrs::dump_thread_inside(s, scratch)?,
    });
    for t in &p.threads[1..] {
        let mut ts = Session::begin(&t.tracee, pid, gadget)?;
        ts.r.use_syscall_stops(syscall_stops);
        let r = (|| -> Result<ThreadInside> {
            Ok(ThreadInside {
                mask: ts.saved_mask(),
                sas: signals::dump_altstack(&mut ts, scratch)?,
                inside: attrs::dump_thread_inside(&mut ts, scratch)?,
            })
        })();
        let end = ts.end();
        threads.push(r?);
        end?;
    }
    Ok((actions, tmrs, proc_in, threads))
}

/// Ids of the kernel objects a process may share with others (address
/// space, fd table, fs info, signal handlers): the same id where kcmp(2)
/// says two processes share the object.
fn process_ids(pid: Pid, earlier: &[(Pid, TaskKobjIdsEntry)], next: &mut [u32; 4]) -> Result<TaskKobjIdsEntry> {
    let kinds = [task::KCMP_VM, task::KCMP_FILES, task::KCMP_FS, task::KCMP_SIGHAND];
    let mut got = [0u32; 4];
    for (i, kind) in kinds.iter().enumerate() {
        for (other, oids) in earlier {
            if task::kcmp_same(pid, *other, *kind, 0, 0)? {
                got[i] = [oids.vm_id, oids.files_id, oids.fs_id, oids.sighand_id][i];
                break;
            }
        }
        if got[i] == 0 {
            got[i] = next[i];
            next[i] += 1;
        } else if *kind == task::KCMP_VM || *kind == task::KCMP_SIGHAND {
            return Err(Error::Unsupported(format!(
                "process {pid} shares its {} with another process (a vfork child?); not supported",
                if *kind == task::KCMP_VM { "address space" } else { "signal handlers" }
            )));
        }
    }
    let mut ids = TaskKobjIdsEntry { vm_id: got[0], files_id: got[1], fs_id: got[2], sighand_id: got[3], ..Default::default() };
    ns_ids(&mut ids);
    Ok(ids)
}

/// A zombie keeps only its exit status (and its pid) for its parent.
fn zombie_image(o: &DumpOptions, p: &Process, status: u32) -> Result<ProcessImage> {
    if p.pid == o.pid {
        return Err(Error::Refused(format!("process {} is a zombie; there is nothing to dump", p.pid)));
    }
    let comm = procfs::stat(p.pid, p.pid).map(|s| s.comm).unwrap_or_default();
    // A zombie cannot be asked anything; /proc still shows its signal
    // masks, which restore gives back (a caught signal gets a placeholder
    // handler address: a zombie never runs it).
    let st = procfs::status(p.pid, p.pid)?;
    let (ign, cgt) = (st.hex("SigIgn"), st.hex("SigCgt"));
    let sigactions = signals::action_signals()
        .map(|sig| SaEntry {
            sigaction: if ign & inject::sigbit(sig) != 0 {
                1
            } else if cgt & inject::sigbit(sig) != 0 {
                2
            } else {
                0
            },
            flags: 0,
            restorer: 0,
            mask: 0,
            compat_sigaction: Some(false),
            mask_extended: None,
        })
        .collect();
    let core = CoreEntry {
        mtype: regs::MTYPE,
        tc: Some(TaskCoreEntry {
            task_state: TASK_ZOMBIE,
            exit_code: status,
            comm,
            blk_sigset: st.hex("SigBlk"),
            sigactions,
            ..TaskCoreEntry::default()
        }),
        ..CoreEntry::default()
    };
    let mut ids = TaskKobjIdsEntry::default();
    ns_ids(&mut ids);
    Ok(ProcessImage {
        pstree: PstreeEntry { pid: p.pid as u32, ppid: p.ppid as u32, pgid: p.pgid as u32, sid: p.sid as u32, threads: vec![p.pid as u32] },
        ids,
        cores: vec![(p.pid, core)],
        mm: None,
        pagemap: Vec::new(),
        pages_id: 0,
        fds: Vec::new(),
        fs: None,
    })
}

/// CRIU's task states.
pub const TASK_ALIVE: u32 = 1;
pub const TASK_STOPPED: u32 = 3;
pub const TASK_ZOMBIE: u32 = 6;

fn write_images(dir: &Path, images: &[ProcessImage], table: &mut files::FileTable, seccomp_dump: seccomp::SeccompDump) -> Result<()> {
    let mut root_ids = TaskKobjIdsEntry { vm_id: 1, files_id: 1, fs_id: 1, sighand_id: 1, ..Default::default() };
    ns_ids(&mut root_ids);
    let inv = InventoryEntry {
        img_version: 2,
        fdinfo_per_id: Some(true),
        root_ids: Some(root_ids),
        ns_per_id: Some(true),
        lsmtype: Some(Lsmtype::NO_LSM),
        network_lock_method: Some(0),
        plugins_entry: Some(PluginsEntry::default()),
        ..InventoryEntry::default()
    };
    let mut w = ImageWriter::create(&dir.join("inventory.img"), kind("INVENTORY"))?;
    w.put(&inv)?;
    w.finish()?;

    let mut w = ImageWriter::create(&dir.join("pstree.img"), kind("PSTREE"))?;
    for p in images {
        w.put(&p.pstree)?;
    }
    w.finish()?;

    for p in images {
        let pid = p.pstree.pid;
        for (tid, core) in &p.cores {
            let mut w = ImageWriter::create(&dir.join(format!("core-{tid}.img")), kind("CORE"))?;
            w.put(core)?;
            w.finish()?;
        }
        if p.mm.is_none() {
            continue; // a zombie: its core is all there is
        }
        let mut w = ImageWriter::create(&dir.join(format!("ids-{pid}.img")), kind("IDS"))?;
        w.put(&p.ids)?;
        w.finish()?;
        if let Some(mm) = &p.mm {
            let mut w = ImageWriter::create(&dir.join(format!("mm-{pid}.img")), kind("MM"))?;
            w.put(mm)?;
            w.finish()?;
            let mut w = ImageWriter::create(&dir.join(format!("pagemap-{pid}.img")), kind("PAGEMAP"))?;
            w.put(&PagemapHead { pages_id: p.pages_id })?;
            for e in &p.pagemap {
                w.put(e)?;
            }
            w.finish()?;
        }
        let fdinfo = dir.join(format!("fdinfo-{}.img", p.ids.files_id));
        // A shared fd table (CLONE_FILES) is written once.
        if !fdinfo.exists() {
            let mut w = ImageWriter::create(&fdinfo, kind("FDINFO"))?;
            for f in &p.fds {
                w.put(f)?;
            }
            w.finish()?;
        }
        if let Some(fs) = &p.fs {
            let mut w = ImageWriter::create(&dir.join(format!("fs-{pid}.img")), kind("FS"))?;
            w.put(fs)?;
            w.finish()?;
        }
    }
    table.write(dir)?;
    let mut w = ImageWriter::create(&dir.join("seccomp.img"), kind("SECCOMP"))?;
    w.put(&SeccompEntry { seccomp_filters: seccomp_dump.filters })?;
    w.finish()?;
    Ok(())
}
