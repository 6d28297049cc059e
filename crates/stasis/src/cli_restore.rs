//! `restore`: bring a checkpointed tree back.

use crate::logging;
use anyhow::{Context, Result};
use clap::Args;
use stasis_engine::RestoreOptions;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Directory holding the images
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
    /// Return once the tree runs on its own instead of waiting for it
    #[arg(short = 'd', long = "restore-detached")]
    detach: bool,
    /// Restore a process that was dumped with --shell-job into this terminal session
    #[arg(short = 'j', long = "shell-job")]
    shell_job: bool,
    /// Restore established TCP connections saved with --tcp-established
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Reconnect unix sockets that were connected outside the tree (dumped with --ext-unix-sk) by name
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Take again the file locks saved with --file-locks
    #[arg(short = 'l', long = "file-locks")]
    file_locks: bool,
    /// Write the pid of the restored root task to this file
    #[arg(long = "pidfile", value_name = "FILE")]
    pidfile: Option<PathBuf>,
}

pub fn run(a: RestoreArgs) -> Result<ExitCode> {
    let work = a.work_dir.clone().unwrap_or_else(|| a.images_dir.clone());
    logging::init(logging::verbosity(&a.verbosity)?, logging::log_path(&a.log_file, &work))?;
    let opts = RestoreOptions {
        images_dir: a.images_dir,
        detach: a.detach,
        shell_job: a.shell_job,
        pidfile: a.pidfile,
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        file_locks: a.file_locks,
        progress: std::io::stderr().is_terminal(),
    };
    let status = stasis_engine::restore(&opts)
        .with_context(|| format!("restore from {} failed", opts.images_dir.display()))?;
    Ok(ExitCode::from(status.clamp(0, 255) as u8))
}
