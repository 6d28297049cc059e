//! Dump and restore of process trees, without a parasite: all state is
//! read from outside through ptrace and /proc, or through single syscalls
//! run inside a stopped task (see [`inject`]).
#![forbid(unsafe_code)]

pub mod check;
mod diag;
mod dump;
mod error;
pub mod fault;
mod freeze;
mod inject;
mod netlock;
mod options;
pub mod procfs;
mod progress;
mod restore;
pub mod state;

pub use dump::DumpStats;
pub use error::{Error, Result};
pub use options::{AfterDump, DumpOptions, RestoreOptions};
pub use restore::{RestoreStats, Restored};

/// Checkpoint the tree rooted at `o.pid` into `o.images_dir`.
pub fn dump(o: &DumpOptions) -> Result<DumpStats> {
    dump::dump(o)
}

/// Restore a tree; with `o.detach` return once it runs (status 0), else
/// wait for the root task and return its exit status (128 + signal if it
/// was killed).
pub fn restore(o: &RestoreOptions) -> Result<i32> {
    let r = restore::restore(o)?;
    tracing::info!(pid = r.root, us = r.stats.restore_us, pages = r.stats.pages_restored, "restored");
    if o.detach {
        return Ok(0);
    }
    loop {
        match stasis_sys::ptrace::wait_tid(r.root)? {
            stasis_sys::Stop::Exited(c) => return Ok(c),
            stasis_sys::Stop::Killed(s) => return Ok(128 + s),
            _ => {}
        }
    }
}

/// Restore and hand back the result without waiting (for tests and
/// benchmarks driving the engine directly).
pub fn restore_detached(o: &RestoreOptions) -> Result<Restored> {
    restore::restore(o)
}
