//! Log setup with CRIU's verbosity scale and log file placement.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tracing_subscriber::filter::LevelFilter;

/// CRIU's `-v` scale: 0 and 1 errors, 2 warnings (the default), 3 info,
/// 4 debug, 5 and up everything. `-v` alone adds one, `-vv` two, `-v4`
/// sets 4.
pub fn verbosity(arg: &Option<String>) -> Result<u32> {
    const DEFAULT: u32 = 2;
    match arg.as_deref() {
        None => Ok(DEFAULT),
        Some("") => Ok(DEFAULT + 1),
        Some(s) if s.chars().all(|c| c == 'v') => Ok(DEFAULT + 1 + s.len() as u32),
        Some(s) => s.parse().with_context(|| format!("bad verbosity {s:?}: use -v, -vv or -vN with N from 0 to 5")),
    }
}

fn level(v: u32) -> LevelFilter {
    match v {
        0 | 1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Where `-o FILE` points: like CRIU, a relative name lives in the work
/// directory (the images directory unless `-W` says otherwise).
pub fn log_path(file: &Option<PathBuf>, work_dir: &Path) -> Option<PathBuf> {
    let f = file.as_ref()?;
    if f.as_os_str() == "-" {
        return None;
    }
    Some(if f.is_absolute() { f.clone() } else { work_dir.join(f) })
}

/// Send logs to `file` (created owner-only) or to standard error.
pub fn init(verbosity: u32, file: Option<PathBuf>) -> Result<()> {
    let builder = tracing_subscriber::fmt().with_max_level(level(verbosity)).with_target(false);
    match file {
        Some(path) => {
            let f = stasis_image::file::create_private(&path)?;
            builder.with_ansi(false).with_writer(std::sync::Mutex::new(f)).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_verbosity_forms() {
        assert_eq!(verbosity(&None).unwrap(), 2);
        assert_eq!(verbosity(&Some(String::new())).unwrap(), 3);
        assert_eq!(verbosity(&Some("vv".into())).unwrap(), 5);
        assert_eq!(verbosity(&Some("4".into())).unwrap(), 4);
        assert!(verbosity(&Some("x".into())).is_err());
    }
}
