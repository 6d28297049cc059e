//! The unsafe corner of stasis: raw Linux interfaces behind safe types.
//!
//! Everything that needs `unsafe` lives here, so one `grep unsafe` over
//! this crate lists every place to audit:
//!
//! - [`ptrace`]: a traced task ([`Tracee`]): seize, interrupt, wait,
//!   registers, extended state, signal masks and queues, rseq.
//! - [`remote`]: running single syscalls inside a stopped tracee.
//! - [`mem`]: `process_vm_readv`/`process_vm_writev`.
//! - [`task`]: clone3 with `set_tid` for restored tasks, pidfds,
//!   `pidfd_getfd`, and the small per-task queries the kernel only offers
//!   as raw syscalls (robust list, scheduling, priority, rlimits).
//!
//! Safe APIs take [`RemoteAddr`] for addresses inside another process and
//! [`RemoteFd`] for numbers in another process's fd table, so neither can
//! be confused with our own pointers and descriptors.

pub mod fd;
pub mod mem;
pub mod net;
pub mod ptrace;
pub mod remote;
pub mod task;

pub use ptrace::{Regs, Stop, Tracee};
pub use remote::Remote;

use std::fmt;

/// A process or thread id.
pub type Pid = i32;

/// An address in another process's address space. It is only ever a
/// number to us: it is never dereferenced in our own process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RemoteAddr(pub u64);

impl RemoteAddr {
    pub fn add(self, off: u64) -> RemoteAddr {
        RemoteAddr(self.0 + off)
    }
}

impl fmt::Display for RemoteAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A descriptor number in another process's fd table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteFd(pub i32);

/// A failed system call, with what we were doing and to whom.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}{}", of_task(*.pid))]
    Os { op: &'static str, pid: Pid, source: std::io::Error },
    #[error("task {pid} stopped unexpectedly during {op}: {stop}")]
    UnexpectedStop { op: &'static str, pid: Pid, stop: String },
    #[error("task {pid} is gone ({how}) during {op}")]
    Gone { op: &'static str, pid: Pid, how: String },
}

/// " (task N)", or nothing for calls not aimed at a task (pid 0).
fn of_task(pid: Pid) -> String {
    if pid == 0 {
        String::new()
    } else {
        format!(" (task {pid})")
    }
}

impl Error {
    pub fn os(op: &'static str, pid: Pid) -> Error {
        Error::Os { op, pid, source: std::io::Error::last_os_error() }
    }

    pub fn errno(op: &'static str, pid: Pid, errno: i32) -> Error {
        Error::Os { op, pid, source: std::io::Error::from_raw_os_error(errno) }
    }

    /// The errno behind this error, if it came from the kernel.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The errno of the last failed libc call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub const PAGE_SIZE: u64 = 4096;
