//! A progress line on standard error for dumps and restores that take
//! more than a second, when standard error is a terminal.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    enabled: bool,
    what: &'static str,
    pub total: u64,
    done: u64,
    started: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    pub fn new(enabled: bool, what: &'static str, total: u64) -> Progress {
        let now = Instant::now();
        Progress { enabled, what, total, done: 0, started: now, last: now, shown: false }
    }

    pub fn add(&mut self, pages: u64) {
        self.done += pages;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.started) < Duration::from_secs(1) || now.duration_since(self.last) < Duration::from_millis(100) {
            return;
        }
        self.last = now;
        self.shown = true;
        let pct = if self.total > 0 { self.done * 100 / self.total } else { 100 };
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r{}: {} of {} pages ({pct}%)   ", self.what, self.done, self.total);
        let _ = e.flush();
    }

    pub fn finish(&mut self) {
        if self.shown {
            let _ = writeln!(std::io::stderr(), "\r{}: {} of {} pages, done.      ", self.what, self.done, self.total);
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
