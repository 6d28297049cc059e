//! Single-process checkpoint and restore: each workload proves its own
//! state after a real dump, kill and restore.

use crate::harness::*;
use crate::util::*;

#[test]
fn memory_of_every_kind_survives() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("memory", &[]);
    w.dump(&[]);
    // Only touched pages are saved: the 2 GiB sparse mapping costs 16 pages.
    let pages: u64 = std::fs::read_dir(w.img())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().unwrap().starts_with("pages-"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(pages < 24 << 20, "pages images hold {pages} bytes");
    w.restore(&[], &[]);
    w.finish();
}
