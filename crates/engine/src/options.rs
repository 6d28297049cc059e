//! What the command line asks of the engine.

use std::path::PathBuf;

/// How a dump treats the tree once its state is saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AfterDump {
    /// Kill the tree (CRIU's default).
    #[default]
    Kill,
    /// Let it run on (`--leave-running`).
    Run,
    /// Leave every task stopped with SIGSTOP (`--leave-stopped`).
    Stop,
}

#[derive(Clone, Debug, Default)]
pub struct DumpOptions {
    pub pid: i32,
    pub images_dir: PathBuf,
    pub after: AfterDump,
    pub shell_job: bool,
    /// Largest deleted-but-open file whose contents are saved.
    pub ghost_limit: u64,
    /// Save established TCP connections (repair mode, `--tcp-established`).
    pub tcp_established: bool,
    /// Allow unix sockets connected outside the tree (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
    /// Save file locks (`--file-locks`); without it a process holding
    /// locks is refused.
    pub file_locks: bool,
    /// Show a progress line (stderr is a terminal).
    pub progress: bool,
}

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    pub images_dir: PathBuf,
    /// Return once the tree runs on its own (`-d`).
    pub detach: bool,
    pub shell_job: bool,
    pub pidfile: Option<PathBuf>,
    /// Restore established TCP connections (`--tcp-established`).
    pub tcp_established: bool,
    /// Reconnect unix sockets to their peers outside the tree by name
    /// (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
    /// Take the saved file locks again (`--file-locks`).
    pub file_locks: bool,
    pub progress: bool,
}
