//! Seccomp: strict mode and filter chains, per thread.
//!
//! Dump: while stasis traces a task that has seccomp it sets
//! PTRACE_O_SUSPEND_SECCOMP, so the calls it runs inside the task are not
//! filtered (a filter could deny or kill them). Each thread's filters are
//! read with PTRACE_SECCOMP_GET_FILTER (index 0 is the oldest, whatever
//! ptrace(2) says: the kernel counts from the first installed) and their
//! install flags with PTRACE_SECCOMP_GET_METADATA. All chains go into one
//! table (seccomp.img), oldest first, each entry naming the one installed
//! before it; chains with a common beginning share its entries. A thread's
//! core names its newest filter.
//!
//! Restore: after everything else but the credentials (installing a
//! filter needs CAP_SYS_ADMIN or no_new_privs, and the task is still root
//! then), with seccomp suspended for the rest of the restore. Filters all
//! the threads of a process share are installed once from the main thread
//! with SECCOMP_FILTER_FLAG_TSYNC, so the threads share them as before (a
//! later TSYNC by the program keeps working); the rest per thread. Strict
//! mode is set last, per thread.
//!
//! Kernel interfaces: ptrace(2) PTRACE_SECCOMP_GET_FILTER,
//! PTRACE_SECCOMP_GET_METADATA, PTRACE_O_SUSPEND_SECCOMP; seccomp(2).

use crate::error::{Error, Result};
use crate::inject::{Scratch, Session};
use stasis_image::messages::*;
use stasis_sys::{Pid, Tracee};

/// The filters of every thread dumped, in seccomp.img order.
#[derive(Default)]
pub struct SeccompDump {
    pub filters: Vec<SeccompFilter>,
}

/// Whether any thread of the process runs under seccomp.
pub fn in_use(pid: Pid, tids: &[Pid]) -> Result<bool> {
    for &t in tids {
        if crate::procfs::status(pid, t)?.number("Seccomp").unwrap_or(0) != 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

impl SeccompDump {
    /// A thread's mode and newest filter (an index into the table).
    pub fn thread(&mut self, t: &Tracee, pid: Pid) -> Result<(Option<i32>, Option<u32>)> {
        let tid = t.tid();
        match crate::procfs::status(pid, tid)?.number("Seccomp").unwrap_or(0) {
            0 => Ok((None, None)),
            1 => Ok((Some(SeccompMode::strict), None)),
            2 => {
                let mut chain = Vec::new();
                while let Some(f) = t.seccomp_filter(chain.len() as u64)? {
                    let flags = t.seccomp_filter_flags(chain.len() as u64)?;
                    chain.push((f, flags));
                }
                if chain.is_empty() {
                    return Err(Error::Unsupported(format!("thread {tid} of {pid} is in seccomp filter mode but shows no filter")));
                }
                let mut prev: Option<u32> = None;
                for (filter, flags) in chain {
                    let flags = (flags != 0).then_some(flags as u32);
                    let idx = match self.filters.iter().position(|e| e.filter == filter && e.prev == prev && e.flags == flags) {
                        Some(i) => i,
                        None => {
                            self.filters.push(SeccompFilter { filter, prev, flags });
                            self.filters.len() - 1
                        }
                    };
                    prev = Some(idx as u32);
                }
                Ok((Some(SeccompMode::filter), prev))
            }
            m => Err(Error::Unsupported(format!("thread {tid} of {pid} is in seccomp mode {m}, unknown to stasis"))),
        }
    }
}

/// The chain ending at filter `last`, oldest first, as indices.
pub fn chain(filters: &[SeccompFilter], last: u32) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    let mut cur = Some(last);
    while let Some(i) = cur {
        let f = filters.get(i as usize).ok_or_else(|| Error::BadImage(format!("seccomp.img has no filter {i}")))?;
        if out.len() > filters.len() {
            return Err(Error::BadImage("seccomp.img: the filters' prev links form a loop".into()));
        }
        if f.filter.is_empty() || f.filter.len() % 8 != 0 || f.filter.len() > 4096 * 8 {
            return Err(Error::BadImage(format!("seccomp.img: filter {i} is {} bytes, not a BPF program", f.filter.len())));
        }
        out.push(i);
        cur = f.prev;
    }
    out.reverse();
    Ok(out)
}

const SECCOMP_SET_MODE_FILTER: u64 = 1;
const SECCOMP_FILTER_FLAG_TSYNC: u64 = 1;
const PR_SET_SECCOMP: u64 = 22;
const SECCOMP_MODE_STRICT: u64 = 1;

/// Install filter `f` in the task of `s` (with TSYNC: in all its threads).
pub fn install(s: &mut Session<'_>, scratch: &Scratch, f: &SeccompFilter, tsync: bool) -> Result<()> {
    // struct sock_fprog { u16 len; (pad) ; struct sock_filter *filter; }
    let prog = scratch.at(0);
    let insns = scratch.at(16);
    if 16 + f.filter.len() as u64 > scratch.len {
        return Err(Error::Unsupported(format!("a seccomp filter of {} bytes does not fit the restore scratch area", f.filter.len())));
    }
    let mut hdr = [0u8; 16];
    hdr[0..2].copy_from_slice(&((f.filter.len() / 8) as u16).to_ne_bytes());
    hdr[8..16].copy_from_slice(&insns.0.to_ne_bytes());
    s.write(prog, &hdr)?;
    s.write(insns, &f.filter)?;
    let flags = u64::from(f.flags.unwrap_or(0)) | if tsync { SECCOMP_FILTER_FLAG_TSYNC } else { 0 };
    let r = s.raw(libc::SYS_seccomp, &[SECCOMP_SET_MODE_FILTER, flags, prog.0])?;
    if r != 0 {
        return Err(Error::Unsupported(format!(
            "cannot install a seccomp filter in task {}: {}",
            s.tid(),
            if r > 0 { format!("thread {r} has diverging filters") } else { std::io::Error::from_raw_os_error(-r as i32).to_string() }
        )));
    }
    Ok(())
}

/// Put the task of `s` into strict mode.
pub fn set_strict(s: &mut Session<'_>) -> Result<()> {
    s.call("prctl(PR_SET_SECCOMP, strict)", libc::SYS_prctl, &[PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0]).map(drop)
}
