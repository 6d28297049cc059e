//! Creating tasks with chosen pids, and per-task queries that only exist
//! as raw system calls.
//!
//! Kernel interfaces: clone3(2) with `set_tid`, pidfd_open(2),
//! pidfd_getfd(2), get_robust_list(2), sched_getscheduler(2),
//! sched_getparam(2), getpriority(2), prlimit(2), kill(2), tgkill(2),
//! kcmp(2), and the `PAGEMAP_SCAN` ioctl on `/proc/PID/pagemap`.

use crate::{Error, Pid, RemoteAddr, RemoteFd, Result};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `struct clone_args` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

impl CloneArgs {
    /// The struct as bytes, to copy into a tracee's memory.
    pub fn to_bytes(&self) -> [u8; 88] {
        let words = [
            self.flags,
            self.pidfd,
            self.child_tid,
            self.parent_tid,
            self.exit_signal,
            self.stack,
            self.stack_size,
            self.tls,
            self.set_tid,
            self.set_tid_size,
            self.cgroup,
        ];
        let mut b = [0u8; 88];
        for (i, w) in words.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

pub(crate) fn clear_errno() {
    // SAFETY: __errno_location returns this thread's errno slot, valid for
    // the life of the thread.
    unsafe { *libc::__errno_location() = 0 };
}

/// Fork a child of ours with pid `pid` that asks to be traced and stops
/// itself with SIGSTOP before running any code of its own. It dies with us
/// (parent-death signal). Returns once the child exists; the caller waits
/// for its stop.
pub fn spawn_stopped_child(pid: Pid) -> Result<Pid> {
    let set_tid: [libc::pid_t; 1] = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: set_tid.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM gives the child a copy of our address
    // space, like fork. `args` and `set_tid` stay alive across the call. In
    // the child (return value 0) we only issue raw system calls that touch
    // no shared state, and never return into Rust code: the child either
    // stops for good (the tracer then replaces its whole state) or exits.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if r == 0 {
        // SAFETY: raw syscalls with integer arguments only; see above.
        unsafe {
            libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0);
            loop {
                libc::syscall(libc::SYS_kill, libc::syscall(libc::SYS_getpid), libc::SIGSTOP);
                libc::syscall(libc::SYS_exit_group, 127);
            }
        }
    }
    if r < 0 {
        return Err(Error::os("clone3 with set_tid", pid));
    }
    Ok(r as Pid)
}

pub fn pidfd_open(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(Error::os("pidfd_open", pid));
    }
    // SAFETY: the kernel just returned this new descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Duplicate descriptor `fd` of the process behind `pidfd` into ours.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, pid: Pid, fd: RemoteFd) -> Result<OwnedFd> {
    // SAFETY: plain integer arguments; `pidfd` is borrowed for the call.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd.0, 0) };
    if r < 0 {
        return Err(Error::os("pidfd_getfd", pid));
    }
    // SAFETY: the kernel just returned this new descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// A thread's robust futex list head and its length.
pub fn robust_list(tid: Pid) -> Result<(RemoteAddr, u64)> {
    let mut head: usize = 0;
    let mut len: usize = 0;
    // SAFETY: both out-pointers point at live locals for the call.
    let r = unsafe { libc::syscall(libc::SYS_get_robust_list, tid, &mut head as *mut usize, &mut len as *mut usize) };
    if r < 0 {
        return Err(Error::os("get_robust_list", tid));
    }
    Ok((RemoteAddr(head as u64), len as u64))
}

/// Scheduling policy (with `SCHED_RESET_ON_FORK` folded in) and priority.
pub fn sched(tid: Pid) -> Result<(u32, u32)> {
    // SAFETY: integer argument only.
    let policy = unsafe { libc::sched_getscheduler(tid) };
    if policy < 0 {
        return Err(Error::os("sched_getscheduler", tid));
    }
    let mut p = libc::sched_param { sched_priority: 0 };
    // SAFETY: `p` is a live, writable sched_param.
    if unsafe { libc::sched_getparam(tid, &mut p) } < 0 {
        return Err(Error::os("sched_getparam", tid));
    }
    Ok((policy as u32, p.sched_priority as u32))
}

/// The nice value of a thread.
pub fn nice(tid: Pid) -> Result<i32> {
    clear_errno();
    // SAFETY: integer arguments only.
    let v = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    if v == -1 && crate::errno() != 0 {
        return Err(Error::os("getpriority", tid));
    }
    Ok(v)
}

/// A resource limit of a process: (soft, hard).
pub fn get_rlimit(pid: Pid, resource: u32) -> Result<(u64, u64)> {
    let mut old = libc::rlimit64 { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `old` is a live, writable rlimit64; no new limit is passed.
    let r = unsafe { libc::prlimit64(pid, resource as _, std::ptr::null(), &mut old) };
    if r < 0 {
        return Err(Error::os("prlimit", pid));
    }
    Ok((old.rlim_cur, old.rlim_max))
}

/// Set a resource limit of a process.
pub fn set_rlimit(pid: Pid, resource: u32, cur: u64, max: u64) -> Result<()> {
    let new = libc::rlimit64 { rlim_cur: cur, rlim_max: max };
    // SAFETY: `new` is a live rlimit64; no old value is requested.
    let r = unsafe { libc::prlimit64(pid, resource as _, &new, std::ptr::null_mut()) };
    if r < 0 {
        return Err(Error::os("prlimit", pid));
    }
    Ok(())
}

pub fn kill(pid: Pid, sig: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    if unsafe { libc::kill(pid, sig) } < 0 {
        return Err(Error::os("kill", pid));
    }
    Ok(())
}

pub fn tgkill(tgid: Pid, tid: Pid, sig: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    if unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) } < 0 {
        return Err(Error::os("tgkill", tid));
    }
    Ok(())
}

/// kcmp(2) types.
pub const KCMP_FILE: i32 = 0;
pub const KCMP_VM: i32 = 1;
pub const KCMP_FILES: i32 = 2;
pub const KCMP_FS: i32 = 3;
pub const KCMP_SIGHAND: i32 = 4;

/// Whether two tasks share a kernel object (or two fds the same file).
pub fn kcmp_same(pid1: Pid, pid2: Pid, kind: i32, idx1: u64, idx2: u64) -> Result<bool> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid1, pid2, kind, idx1, idx2) };
    if r < 0 {
        return Err(Error::os("kcmp", pid1));
    }
    Ok(r == 0)
}

/// Page category bits of the `PAGEMAP_SCAN` ioctl.
pub const PAGE_IS_WPALLOWED: u64 = 1 << 0;
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
pub const PAGE_IS_FILE: u64 = 1 << 2;
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
pub const PAGE_IS_PFNZERO: u64 = 1 << 5;

#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `_IOWR('f', 16, struct pm_scan_arg)`
const PAGEMAP_SCAN: u64 = 0xc060_6610;

/// One run of pages with the same categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRun {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}

/// Scan `[start, end)` of the process whose `/proc/PID/pagemap` is open
/// as `pagemap`, returning runs of pages that have any of `anyof`
/// categories, annotated with the `report` categories. `None` if the
/// kernel lacks `PAGEMAP_SCAN` (before 6.7).
pub fn pagemap_scan(
    pagemap: BorrowedFd<'_>,
    pid: Pid,
    start: u64,
    end: u64,
    anyof: u64,
    report: u64,
) -> Result<Option<Vec<PageRun>>> {
    let mut out = Vec::new();
    let mut buf = vec![PageRegion::default(); 512];
    let mut at = start;
    while at < end {
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            flags: 0,
            start: at,
            end,
            walk_end: 0,
            vec: buf.as_mut_ptr() as u64,
            vec_len: buf.len() as u64,
            max_pages: 0,
            category_inverted: 0,
            category_mask: 0,
            category_anyof_mask: anyof,
            return_mask: report | anyof,
        };
        // SAFETY: `arg` is a live pm_scan_arg whose `vec` points at `buf`,
        // which outlives the call and holds `vec_len` regions.
        let n = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg as *mut PmScanArg) };
        if n < 0 {
            let e = crate::errno();
            if e == libc::ENOTTY || e == libc::EINVAL {
                return Ok(None);
            }
            return Err(Error::errno("PAGEMAP_SCAN", pid, e));
        }
        for r in &buf[..n as usize] {
            out.push(PageRun { start: r.start, end: r.end, categories: r.categories });
        }
        if arg.walk_end <= at {
            break;
        }
        at = arg.walk_end;
    }
    Ok(Some(out))
}

/// lseek(2) with any `whence`, including SEEK_DATA and SEEK_HOLE.
pub fn lseek(fd: BorrowedFd<'_>, off: u64, whence: i32) -> Result<u64> {
    // SAFETY: integer arguments only; `fd` is borrowed for the call.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), off as libc::off_t, whence) };
    if r < 0 {
        return Err(Error::os("lseek", 0));
    }
    Ok(r as u64)
}

/// Make the calling process adopt orphaned descendants (restored tasks whose
/// restorer exited are then ours to reap).
pub fn set_child_subreaper() -> Result<()> {
    // SAFETY: integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(Error::os("prctl(PR_SET_CHILD_SUBREAPER)", 0));
    }
    Ok(())
}

/// Wait for child `pid` to exit; returns its exit code (or 128 + signal)
/// and its peak resident set size in KiB.
pub fn wait_rusage(pid: Pid) -> Result<(i32, u64)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for the kernel to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are live, writable locals for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 && crate::errno() != libc::EINTR {
            return Err(Error::os("wait4", pid));
        }
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    Ok((code, ru.ru_maxrss as u64))
}
