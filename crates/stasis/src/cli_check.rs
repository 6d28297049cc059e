//! `check`: the kernel features stasis relies on.

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CheckArgs {}

pub fn run(_a: CheckArgs) -> Result<ExitCode> {
    let features = stasis_engine::check::check();
    let mut missing_required = false;
    for f in &features {
        let mark = if f.present { "yes" } else if f.required { "NO " } else { "no " };
        let kind = if f.required { "required" } else { "optional" };
        println!("{mark}  {kind}  {}: {}", f.name, f.detail);
        missing_required |= f.required && !f.present;
    }
    if missing_required {
        println!("Some required features are missing: dump and restore will not work here.");
        return Ok(ExitCode::from(1));
    }
    println!("Looks good.");
    Ok(ExitCode::SUCCESS)
}
