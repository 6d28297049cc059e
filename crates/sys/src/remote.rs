//! Running one system call inside a stopped tracee.
//!
//! The tracee's registers are pointed at a `syscall` instruction (a
//! "gadget": two bytes `0f 05` anywhere in an executable mapping of the
//! tracee) with the call number and arguments loaded, and the task is
//! single-stepped: the kernel runs the call and reports a SIGTRAP right
//! after it, before the next instruction is fetched. That is why the
//! gadget needs nothing after it, and why a call may even unmap the page
//! the gadget sits on.
//!
//! `orig_rax` is set to -1 so that the kernel's syscall-restart logic, which
//! runs when a task leaves a stop that interrupted a system call, leaves our
//! registers alone; the task's own registers, put back by
//! [`Remote::finish`], carry its restart state as they were.
//!
//! The single-step trap is a forced SIGTRAP: if the tracee blocks or
//! ignores SIGTRAP, the kernel resets that signal's action to default and
//! unblocks it. Callers therefore leave SIGTRAP unblocked, and for a task
//! that ignores SIGTRAP switch to [`Remote::use_syscall_stops`]: the call
//! is then run between a syscall-entry and a syscall-exit stop
//! (`PTRACE_SYSCALL`), which involves no signal at all but costs a second
//! round trip.

use crate::ptrace::{Regs, Stop, Tracee};
use crate::{Error, RemoteAddr, Result};

/// A syscall session in one tracee. Registers are saved when the session
/// starts and restored by [`Remote::finish`].
pub struct Remote<'a> {
    t: &'a Tracee,
    gadget: RemoteAddr,
    saved: Regs,
    /// Child tids reported by `PTRACE_EVENT_CLONE`/`FORK` during calls.
    new_tasks: Vec<crate::Pid>,
    syscall_stops: bool,
}

impl<'a> Remote<'a> {
    pub fn new(t: &'a Tracee, gadget: RemoteAddr) -> Result<Remote<'a>> {
        let saved = t.regs()?;
        Ok(Remote { t, gadget, saved, new_tasks: Vec::new(), syscall_stops: false })
    }

    pub fn tracee(&self) -> &Tracee {
        self.t
    }

    /// The registers the task had when the session started.
    pub fn saved_regs(&self) -> &Regs {
        &self.saved
    }

    /// Replace the registers that [`Remote::finish`] puts back.
    pub fn set_saved_regs(&mut self, r: Regs) {
        self.saved = r;
    }

    /// Run calls between syscall stops instead of single-stepping.
    pub fn use_syscall_stops(&mut self, on: bool) {
        self.syscall_stops = on;
    }

    fn resume(&self) -> Result<()> {
        if self.syscall_stops {
            self.t.syscall(0)
        } else {
            self.t.singlestep(0)
        }
    }

    pub fn set_gadget(&mut self, g: RemoteAddr) {
        self.gadget = g;
    }

    pub fn gadget(&self) -> RemoteAddr {
        self.gadget
    }

    /// Tasks created by calls so far (clone, fork), oldest first.
    pub fn take_new_tasks(&mut self) -> Vec<crate::Pid> {
        std::mem::take(&mut self.new_tasks)
    }

    /// Run `nr` with up to six arguments; the raw return value (a negative
    /// errno on failure).
    pub fn raw(&mut self, nr: i64, args: &[u64]) -> Result<i64> {
        let mut r = self.saved;
        r.rax = nr as u64;
        r.orig_rax = u64::MAX;
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        r.rdi = a(0);
        r.rsi = a(1);
        r.rdx = a(2);
        r.r10 = a(3);
        r.r8 = a(4);
        r.r9 = a(5);
        r.rip = self.gadget.0;
        self.t.set_regs(&r)?;
        self.resume()?;
        // Single-step: one SIGTRAP after the call. Syscall stops: one at
        // entry, one at exit (both reported as SIGTRAP).
        let mut traps = if self.syscall_stops { 2 } else { 1 };
        while traps > 0 {
            match self.t.wait()? {
                Stop::Signal(s) if s & 0x7f == libc::SIGTRAP => {
                    traps -= 1;
                    if traps > 0 {
                        self.resume()?;
                    }
                }
                Stop::Event(e) if e == libc::PTRACE_EVENT_CLONE || e == libc::PTRACE_EVENT_FORK || e == libc::PTRACE_EVENT_VFORK => {
                    self.new_tasks.push(self.t.event_msg()? as crate::Pid);
                    self.resume()?;
                }
                Stop::Exited(c) => return Err(Error::Gone { op: "remote syscall", pid: self.t.tid(), how: format!("exited with {c}") }),
                Stop::Killed(s) => return Err(Error::Gone { op: "remote syscall", pid: self.t.tid(), how: format!("killed by signal {s}") }),
                other => {
                    return Err(Error::UnexpectedStop { op: "remote syscall", pid: self.t.tid(), stop: other.to_string() })
                }
            }
        }
        let after = self.t.regs()?;
        if after.rip != self.gadget.0 + 2 {
            return Err(Error::UnexpectedStop {
                op: "remote syscall",
                pid: self.t.tid(),
                stop: format!("trap at {:#x}, expected {:#x}", after.rip, self.gadget.0 + 2),
            });
        }
        Ok(after.rax as i64)
    }

    /// Run a call; a negative return becomes an error naming `op`.
    pub fn call(&mut self, op: &'static str, nr: i64, args: &[u64]) -> Result<u64> {
        let v = self.raw(nr, args)?;
        if (-4095..0).contains(&v) {
            return Err(Error::errno(op, self.t.tid(), (-v) as i32));
        }
        Ok(v as u64)
    }

    /// Put the task's own registers back.
    pub fn restore_regs(&self) -> Result<()> {
        self.t.set_regs(&self.saved)
    }
}
