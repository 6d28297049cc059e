//! Signals: actions, blocked masks, pending queues, alternate stacks.
//!
//! Kernel interfaces: rt_sigaction(2) and sigaltstack(2) run inside the
//! task; `PTRACE_GETSIGMASK`/`SETSIGMASK`; `PTRACE_PEEKSIGINFO` (reads the
//! queues without dequeuing); rt_sigqueueinfo(2)/rt_tgsigqueueinfo(2) run
//! inside the restored task, which may queue any siginfo to itself.

use crate::error::Result;
use crate::inject::{Scratch, Session};
use stasis_image::messages::{SaEntry, SignalQueueEntry, SiginfoEntry, ThreadSasEntry};
use stasis_sys::{RemoteAddr, Tracee};

/// Signals with an action: all but SIGKILL and SIGSTOP, in order.
pub fn action_signals() -> impl Iterator<Item = i32> {
    (1..=64).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
}

const SIGSET_SIZE: u64 = 8;

/// Read every signal action of the process.
pub fn dump_actions(s: &mut Session<'_>, scratch: &Scratch) -> Result<Vec<SaEntry>> {
    let out = scratch.at(0);
    let mut v = Vec::with_capacity(62);
    for sig in action_signals() {
        s.call("rt_sigaction", libc::SYS_rt_sigaction, &[sig as u64, 0, out.0, SIGSET_SIZE])?;
        let b = s.read(out, 32)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        v.push(SaEntry {
            sigaction: w(0),
            flags: w(1),
            restorer: w(2),
            mask: w(3),
            compat_sigaction: Some(false),
            mask_extended: None,
        });
    }
    Ok(v)
}

/// Set every signal action from the image.
pub fn restore_actions(s: &mut Session<'_>, scratch: &Scratch, actions: &[SaEntry]) -> Result<()> {
    let at = scratch.at(0);
    for (sig, a) in action_signals().zip(actions) {
        let mut b = Vec::with_capacity(32);
        for w in [a.sigaction, a.flags, a.restorer, a.mask] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        s.write(at, &b)?;
        s.call("rt_sigaction", libc::SYS_rt_sigaction, &[sig as u64, at.0, 0, SIGSET_SIZE])?;
    }
    Ok(())
}

/// Whether the image ignores SIGTRAP (the session must then avoid
/// single-stepping, see `stasis_sys::remote`).
pub fn ignores_sigtrap(actions: &[SaEntry]) -> bool {
    action_signals().zip(actions).any(|(sig, a)| sig == libc::SIGTRAP && a.sigaction == 1)
}

/// A queue of pending signals as the image stores it.
pub fn queue(t: &Tracee, shared: bool) -> Result<Option<SignalQueueEntry>> {
    let q = t.peek_siginfo(shared)?;
    Ok(Some(SignalQueueEntry { signals: q.iter().map(|si| SiginfoEntry { siginfo: si.to_vec() }).collect() }))
}

/// Queue signals again in a restored process. The kernel lets a task send
/// itself any siginfo, but only itself: the shared queue is refilled from
/// the main thread, a thread's own queue from that thread.
pub fn restore_queue(
    s: &mut Session<'_>,
    scratch: &Scratch,
    tgid: i32,
    tid: Option<i32>,
    q: &SignalQueueEntry,
) -> Result<()> {
    let at = scratch.at(0);
    for e in &q.signals {
        if e.siginfo.len() != 128 {
            return Err(crate::error::Error::BadImage(format!("siginfo of {} bytes, expected 128", e.siginfo.len())));
        }
        let signo = i32::from_le_bytes(e.siginfo[0..4].try_into().unwrap_or([0; 4]));
        s.write(at, &e.siginfo)?;
        match tid {
            None => s.call("rt_sigqueueinfo", libc::SYS_rt_sigqueueinfo, &[tgid as u64, signo as u64, at.0])?,
            Some(t) => s.call(
                "rt_tgsigqueueinfo",
                libc::SYS_rt_tgsigqueueinfo,
                &[tgid as u64, t as u64, signo as u64, at.0],
            )?,
        };
    }
    Ok(())
}

/// The alternate signal stack of the session's thread.
pub fn dump_altstack(s: &mut Session<'_>, scratch: &Scratch) -> Result<ThreadSasEntry> {
    let at = scratch.at(0);
    s.call("sigaltstack", libc::SYS_sigaltstack, &[0, at.0])?;
    let b = s.read(at, 24)?;
    Ok(ThreadSasEntry {
        ss_sp: u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8])),
        ss_flags: u32::from_le_bytes(b[8..12].try_into().unwrap_or([0; 4])),
        ss_size: u64::from_le_bytes(b[16..24].try_into().unwrap_or([0; 8])),
    })
}

pub fn restore_altstack(s: &mut Session<'_>, scratch: &Scratch, sas: &ThreadSasEntry) -> Result<()> {
    let at: RemoteAddr = scratch.at(0);
    // "Currently on this stack" is not something one sets: it follows from
    // the stack pointer the thread resumes with.
    let flags = sas.ss_flags & !(libc::SS_ONSTACK as u32);
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&sas.ss_sp.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&sas.ss_size.to_le_bytes());
    s.write(at, &b)?;
    s.call("sigaltstack", libc::SYS_sigaltstack, &[at.0, 0])?;
    Ok(())
}
