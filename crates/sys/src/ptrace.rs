//! A traced task.
//!
//! Kernel interfaces: ptrace(2) (`PTRACE_SEIZE`, `PTRACE_INTERRUPT`,
//! `PTRACE_GETREGS`/`SETREGS`, `PTRACE_GETREGSET`/`SETREGSET` with
//! `NT_X86_XSTATE`, `PTRACE_GETSIGMASK`/`SETSIGMASK`, `PTRACE_PEEKSIGINFO`,
//! `PTRACE_GET_RSEQ_CONFIGURATION`), waitpid(2) with `__WALL`.
//!
//! A [`Tracee`] does not detach or kill on drop: the engine decides what
//! happens to every task at the end (resume it untouched after a failed
//! dump, kill it after a successful one, kill it after a failed restore),
//! and a silent implicit choice here would hide mistakes there.

use crate::{Error, Pid, Result};
use std::mem::size_of;

/// The general-purpose registers (`struct user_regs_struct`).
pub type Regs = libc::user_regs_struct;

/// A zeroed register set.
pub fn zero_regs() -> Regs {
    // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;
const NT_X86_XSTATE: libc::c_int = 0x202;
/// Larger than any x86 xsave area the kernel exposes (AMX makes it ~11 KiB).
const XSTATE_MAX: usize = 16384;

/// Why `waitpid` returned for a traced task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Stopped by `PTRACE_INTERRUPT` (or a trap-stop of a seized task).
    Interrupt,
    /// A group-stop (SIGSTOP and friends) seen by a seized tracer.
    Group(i32),
    /// A `PTRACE_EVENT_*` stop other than `PTRACE_EVENT_STOP`.
    Event(i32),
    /// Signal-delivery-stop: the task is about to receive this signal.
    Signal(i32),
    /// The task exited with this code.
    Exited(i32),
    /// The task was killed by this signal.
    Killed(i32),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Interrupt => write!(f, "ptrace interrupt stop"),
            Stop::Group(s) => write!(f, "group stop by signal {s}"),
            Stop::Event(e) => write!(f, "ptrace event {e}"),
            Stop::Signal(s) => write!(f, "signal {s}"),
            Stop::Exited(c) => write!(f, "exited with code {c}"),
            Stop::Killed(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Decode a `waitpid` status.
pub fn decode_status(status: i32) -> Stop {
    if libc::WIFEXITED(status) {
        return Stop::Exited(libc::WEXITSTATUS(status));
    }
    if libc::WIFSIGNALED(status) {
        return Stop::Killed(libc::WTERMSIG(status));
    }
    let sig = libc::WSTOPSIG(status);
    let event = (status >> 16) & 0xff;
    if event == libc::PTRACE_EVENT_STOP {
        return match sig {
            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => Stop::Group(sig),
            _ => Stop::Interrupt,
        };
    }
    if event != 0 {
        return Stop::Event(event);
    }
    Stop::Signal(sig)
}

/// The rseq registration of a thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RseqConfig {
    pub abi_pointer: u64,
    pub abi_size: u32,
    pub signature: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct RawRseqConfig {
    rseq_abi_pointer: u64,
    rseq_abi_size: u32,
    signature: u32,
    flags: u32,
    pad: u32,
}

#[repr(C)]
struct PeekSiginfoArgs {
    off: u64,
    flags: u32,
    nr: i32,
}

/// One queued signal as the kernel stores it (`siginfo_t`, 128 bytes).
pub type RawSiginfo = [u8; 128];

/// A thread we trace.
#[derive(Debug, PartialEq, Eq)]
pub struct Tracee {
    tid: Pid,
}

fn ptrace(req: libc::c_uint, tid: Pid, addr: usize, data: usize) -> libc::c_long {
    // SAFETY: every caller passes for `addr`/`data` either plain integers or
    // pointers to live, correctly sized buffers owned by the caller for the
    // duration of the call, as the request in question requires; ptrace
    // never retains them.
    unsafe { libc::ptrace(req, tid, addr as *mut libc::c_void, data as *mut libc::c_void) }
}

fn check(r: libc::c_long, op: &'static str, tid: Pid) -> Result<libc::c_long> {
    if r == -1 {
        Err(Error::os(op, tid))
    } else {
        Ok(r)
    }
}

/// Seccomp is not applied to a tracee with this option while it is traced
/// (needs CAP_SYS_ADMIN).
pub const PTRACE_O_SUSPEND_SECCOMP: i32 = 1 << 21;

impl Tracee {
    /// Attach without stopping the task (`PTRACE_SEIZE`).
    pub fn seize(tid: Pid, options: i32) -> Result<Tracee> {
        check(ptrace(libc::PTRACE_SEIZE, tid, 0, options as usize), "PTRACE_SEIZE", tid)?;
        Ok(Tracee { tid })
    }

    /// Adopt a task that is already traced by us (a child that called
    /// `PTRACE_TRACEME`, or one auto-attached through `PTRACE_O_TRACECLONE`).
    pub fn adopt(tid: Pid) -> Tracee {
        Tracee { tid }
    }

    pub fn tid(&self) -> Pid {
        self.tid
    }

    pub fn set_options(&self, options: i32) -> Result<()> {
        check(ptrace(libc::PTRACE_SETOPTIONS, self.tid, 0, options as usize), "PTRACE_SETOPTIONS", self.tid)
            .map(drop)
    }

    pub fn interrupt(&self) -> Result<()> {
        check(ptrace(libc::PTRACE_INTERRUPT, self.tid, 0, 0), "PTRACE_INTERRUPT", self.tid).map(drop)
    }

    /// Wait for the next stop or exit of this task.
    pub fn wait(&self) -> Result<Stop> {
        wait_tid(self.tid)
    }

    /// Resume, delivering `sig` (0 for none).
    pub fn cont(&self, sig: i32) -> Result<()> {
        check(ptrace(libc::PTRACE_CONT, self.tid, 0, sig as usize), "PTRACE_CONT", self.tid).map(drop)
    }

    /// Execute one instruction, delivering `sig` (0 for none).
    pub fn singlestep(&self, sig: i32) -> Result<()> {
        check(ptrace(libc::PTRACE_SINGLESTEP, self.tid, 0, sig as usize), "PTRACE_SINGLESTEP", self.tid).map(drop)
    }

    /// Resume until the next syscall entry or exit, delivering `sig`.
    pub fn syscall(&self, sig: i32) -> Result<()> {
        check(ptrace(libc::PTRACE_SYSCALL, self.tid, 0, sig as usize), "PTRACE_SYSCALL", self.tid).map(drop)
    }

    /// Let a group-stopped seized task stay stopped while we stop tracing
    /// its other states (`PTRACE_LISTEN`).
    pub fn listen(&self) -> Result<()> {
        check(ptrace(libc::PTRACE_LISTEN, self.tid, 0, 0), "PTRACE_LISTEN", self.tid).map(drop)
    }

    /// Stop tracing, delivering `sig` (0 for none).
    pub fn detach(self, sig: i32) -> Result<()> {
        check(ptrace(libc::PTRACE_DETACH, self.tid, 0, sig as usize), "PTRACE_DETACH", self.tid).map(drop)
    }

    pub fn event_msg(&self) -> Result<u64> {
        let mut v: libc::c_ulong = 0;
        check(
            ptrace(libc::PTRACE_GETEVENTMSG, self.tid, 0, &mut v as *mut _ as usize),
            "PTRACE_GETEVENTMSG",
            self.tid,
        )?;
        Ok(v)
    }

    pub fn regs(&self) -> Result<Regs> {
        let mut r = zero_regs();
        check(ptrace(libc::PTRACE_GETREGS, self.tid, 0, &mut r as *mut Regs as usize), "PTRACE_GETREGS", self.tid)?;
        Ok(r)
    }

    pub fn set_regs(&self, r: &Regs) -> Result<()> {
        check(ptrace(libc::PTRACE_SETREGS, self.tid, 0, r as *const Regs as usize), "PTRACE_SETREGS", self.tid)
            .map(drop)
    }

    /// The XSAVE area in the standard (non-compacted) format.
    pub fn xstate(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; XSTATE_MAX];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        check(
            ptrace(libc::PTRACE_GETREGSET, self.tid, NT_X86_XSTATE as usize, &mut iov as *mut _ as usize),
            "PTRACE_GETREGSET(NT_X86_XSTATE)",
            self.tid,
        )?;
        buf.truncate(iov.iov_len);
        Ok(buf)
    }

    pub fn set_xstate(&self, area: &[u8]) -> Result<()> {
        let mut copy = area.to_vec();
        let mut iov = libc::iovec { iov_base: copy.as_mut_ptr().cast(), iov_len: copy.len() };
        check(
            ptrace(libc::PTRACE_SETREGSET, self.tid, NT_X86_XSTATE as usize, &mut iov as *mut _ as usize),
            "PTRACE_SETREGSET(NT_X86_XSTATE)",
            self.tid,
        )
        .map(drop)
    }

    pub fn sigmask(&self) -> Result<u64> {
        let mut m: u64 = 0;
        check(
            ptrace(libc::PTRACE_GETSIGMASK, self.tid, size_of::<u64>(), &mut m as *mut u64 as usize),
            "PTRACE_GETSIGMASK",
            self.tid,
        )?;
        Ok(m)
    }

    pub fn set_sigmask(&self, m: u64) -> Result<()> {
        check(
            ptrace(libc::PTRACE_SETSIGMASK, self.tid, size_of::<u64>(), &m as *const u64 as usize),
            "PTRACE_SETSIGMASK",
            self.tid,
        )
        .map(drop)
    }

    /// The signal that caused the current signal-delivery-stop.
    pub fn siginfo(&self) -> Result<RawSiginfo> {
        let mut si = [0u8; 128];
        check(ptrace(libc::PTRACE_GETSIGINFO, self.tid, 0, si.as_mut_ptr() as usize), "PTRACE_GETSIGINFO", self.tid)?;
        Ok(si)
    }

    /// Queued signals, without dequeuing them: the thread's own queue, or
    /// the process-wide one when `shared`.
    /// Seccomp filter `index` of the task (0 is the oldest) as raw
    /// `sock_filter` instructions; `None` past the oldest.
    /// (`PTRACE_SECCOMP_GET_FILTER`.)
    pub fn seccomp_filter(&self, index: u64) -> Result<Option<Vec<u8>>> {
        const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
        const BPF_MAXINSNS: usize = 4096;
        let mut buf = vec![0u8; BPF_MAXINSNS * 8];
        let r = ptrace(PTRACE_SECCOMP_GET_FILTER, self.tid, index as usize, buf.as_mut_ptr() as usize);
        if r < 0 {
            if crate::errno() == libc::ENOENT {
                return Ok(None);
            }
            return Err(Error::os("PTRACE_SECCOMP_GET_FILTER", self.tid));
        }
        buf.truncate(r as usize * 8);
        Ok(Some(buf))
    }

    /// The flags a seccomp filter was installed with (SECCOMP_FILTER_FLAG_LOG
    /// ...). (`PTRACE_SECCOMP_GET_METADATA`.)
    pub fn seccomp_filter_flags(&self, index: u64) -> Result<u64> {
        const PTRACE_SECCOMP_GET_METADATA: libc::c_uint = 0x420d;
        let mut meta = [index, 0u64];
        check(
            ptrace(PTRACE_SECCOMP_GET_METADATA, self.tid, std::mem::size_of_val(&meta), meta.as_mut_ptr() as usize),
            "PTRACE_SECCOMP_GET_METADATA",
            self.tid,
        )?;
        Ok(meta[1])
    }

    pub fn peek_siginfo(&self, shared: bool) -> Result<Vec<RawSiginfo>> {
        let mut out = Vec::new();
        loop {
            let mut batch = [[0u8; 128]; 32];
            let args = PeekSiginfoArgs {
                off: out.len() as u64,
                flags: if shared { libc::PTRACE_PEEKSIGINFO_SHARED as u32 } else { 0 },
                nr: batch.len() as i32,
            };
            let n = check(
                ptrace(
                    libc::PTRACE_PEEKSIGINFO,
                    self.tid,
                    &args as *const PeekSiginfoArgs as usize,
                    batch.as_mut_ptr() as usize,
                ),
                "PTRACE_PEEKSIGINFO",
                self.tid,
            )? as usize;
            out.extend_from_slice(&batch[..n]);
            if n < batch.len() {
                return Ok(out);
            }
        }
    }

    pub fn rseq(&self) -> Result<RseqConfig> {
        let mut raw = RawRseqConfig::default();
        check(
            ptrace(
                PTRACE_GET_RSEQ_CONFIGURATION,
                self.tid,
                size_of::<RawRseqConfig>(),
                &mut raw as *mut RawRseqConfig as usize,
            ),
            "PTRACE_GET_RSEQ_CONFIGURATION",
            self.tid,
        )?;
        Ok(RseqConfig {
            abi_pointer: raw.rseq_abi_pointer,
            abi_size: raw.rseq_abi_size,
            signature: raw.signature,
            flags: raw.flags,
        })
    }

    /// Read one word (`PTRACE_PEEKDATA`); works on any mapping, even
    /// without read permission.
    pub fn peek(&self, addr: crate::RemoteAddr) -> Result<u64> {
        crate::task::clear_errno();
        let v = ptrace(libc::PTRACE_PEEKDATA, self.tid, addr.0 as usize, 0);
        if v == -1 && crate::errno() != 0 {
            return Err(Error::os("PTRACE_PEEKDATA", self.tid));
        }
        Ok(v as u64)
    }
}

/// Wait for a specific task (thread or process) we trace or parent.
pub fn wait_tid(tid: Pid) -> Result<Stop> {
    assert!(tid > 0, "wait_tid needs a specific task");
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable int for the call.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        if r == tid {
            return Ok(decode_status(status));
        }
        if r == -1 && crate::errno() == libc::EINTR {
            continue;
        }
        return Err(Error::os("waitpid", tid));
    }
}

/// Non-blocking wait: `None` if the task has nothing to report.
pub fn try_wait_tid(tid: Pid) -> Result<Option<Stop>> {
    let mut status = 0;
    // SAFETY: `status` is a valid, writable int for the call.
    let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
    match r {
        0 => Ok(None),
        r if r == tid => Ok(Some(decode_status(status))),
        _ => Err(Error::os("waitpid", tid)),
    }
}

/// Wait for any child (or traced task): `None` once there are none left.
pub fn wait_any() -> Result<Option<(Pid, Stop)>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable int for the call.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if r > 0 {
            return Ok(Some((r, decode_status(status))));
        }
        match crate::errno() {
            libc::EINTR => continue,
            libc::ECHILD => return Ok(None),
            _ => return Err(Error::os("waitpid", -1)),
        }
    }
}
