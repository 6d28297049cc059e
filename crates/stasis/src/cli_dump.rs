//! `dump`: checkpoint a process tree.

use crate::logging;
use anyhow::{Context, Result};
use clap::Args;
use stasis_engine::{AfterDump, DumpOptions};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Root of the process tree to dump
    #[arg(short = 't', long = "tree", value_name = "PID")]
    pid: i32,
    /// Directory to write the images to
    #[arg(short = 'D', long = "images-dir", value_name = "DIR")]
    images_dir: PathBuf,
    /// Directory for the log file (default: the images directory)
    #[arg(short = 'W', long = "work-dir", value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Log file; a relative name is put in the work directory
    #[arg(short = 'o', long = "log-file", value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Verbosity: -v, -vv, or -vN (0 errors only ... 4 debug)
    #[arg(short = 'v', long = "verbosity", num_args = 0..=1, default_missing_value = "", value_name = "N")]
    verbosity: Option<String>,
    /// Leave the tree running after the dump
    #[arg(short = 'R', long = "leave-running", conflicts_with = "leave_stopped")]
    leave_running: bool,
    /// Leave the tree stopped after the dump
    #[arg(short = 's', long = "leave-stopped")]
    leave_stopped: bool,
    /// Allow dumping a process started from a shell (its session and group belong to the shell)
    #[arg(short = 'j', long = "shell-job")]
    shell_job: bool,
    /// Save established TCP connections (kernel TCP repair mode); without it they are refused
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow unix sockets connected to sockets outside the tree (reconnected by name on restore)
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Save the file locks the tree holds (flock, POSIX and OFD locks); without it they are refused
    #[arg(short = 'l', long = "file-locks")]
    file_locks: bool,
    /// Largest file deleted while open whose contents are saved (K, M, G suffixes)
    #[arg(long = "ghost-limit", value_name = "SIZE", value_parser = parse_size, default_value = "1M")]
    ghost_limit: u64,
}

/// A size with an optional K, M or G suffix (powers of 1024), as CRIU takes it.
fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| format!("bad size {s:?}"))
}

pub fn run(a: DumpArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.images_dir)
        .with_context(|| format!("cannot create images directory {}", a.images_dir.display()))?;
    let work = a.work_dir.clone().unwrap_or_else(|| a.images_dir.clone());
    logging::init(logging::verbosity(&a.verbosity)?, logging::log_path(&a.log_file, &work))?;
    let opts = DumpOptions {
        pid: a.pid,
        images_dir: a.images_dir,
        after: if a.leave_running {
            AfterDump::Run
        } else if a.leave_stopped {
            AfterDump::Stop
        } else {
            AfterDump::Kill
        },
        shell_job: a.shell_job,
        ghost_limit: a.ghost_limit,
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        file_locks: a.file_locks,
        progress: std::io::stderr().is_terminal(),
    };
    let stats = stasis_engine::dump(&opts).with_context(|| format!("dump of pid {} failed", opts.pid))?;
    tracing::info!(
        frozen_us = stats.frozen_us,
        pages_written = stats.pages_written,
        "dump of {} finished",
        opts.pid
    );
    Ok(ExitCode::SUCCESS)
}
