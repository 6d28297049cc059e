//! Test hook: `STASIS_FAULT=<stage>` makes the dump or restore fail at
//! that stage, so tests can show that a failure at any point leaves the
//! target as it was (dump) or nothing behind (restore).
//!
//! Dump stages, in order: `seize`, `regs`, `inject`, `signals`, `mm`,
//! `pages`, `files`, `images`, `release`. Restore stages: `fork`, `memory`,
//! `files`, `attributes`, `registers`, `release`.

use crate::error::{Error, Result};

pub const DUMP_STAGES: &[&str] = &["seize", "regs", "inject", "signals", "mm", "pages", "files", "images", "release"];
pub const RESTORE_STAGES: &[&str] = &["fork", "memory", "files", "attributes", "registers", "release"];

/// Fail here if the hook names this stage.
pub fn point(stage: &str) -> Result<()> {
    match std::env::var("STASIS_FAULT") {
        Ok(s) if s == stage => {
            tracing::warn!(stage, "failing on purpose (STASIS_FAULT)");
            Err(Error::Fault(stage.to_string()))
        }
        _ => Ok(()),
    }
}
