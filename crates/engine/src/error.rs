//! Engine errors. Each names the task, file or resource it is about.

use stasis_image::file::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sys(#[from] stasis_sys::Error),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Proc(#[from] crate::procfs::ProcError),
    #[error("{what}")]
    Io { what: String, source: std::io::Error },
    /// State we do not know how to save or restore; nothing was changed.
    #[error("{0}")]
    Unsupported(String),
    /// A precondition on the environment does not hold.
    #[error("{0}")]
    Refused(String),
    /// An image is readable but its contents do not make sense.
    #[error("{0}")]
    BadImage(String),
    /// A failure injected by the `STASIS_FAULT` test hook.
    #[error("injected fault at stage {0}")]
    Fault(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { what: what.into(), source }
    }
}

/// An error and its causes on one line ("bind: Address already in use"),
/// for messages that wrap an error into a string.
pub fn detail(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// Attach context to an I/O result.
pub trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
