//! `check`: the kernel features stasis relies on.

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CheckArgs {}

pub fn run(_a: CheckArgs) -> Result<ExitCode> {
    anyhow::bail!("check is not implemented yet")
}
