//! Threads, process trees and what they share.

use crate::harness::*;
use crate::util::*;

#[test]
fn threads_keep_their_ids_state_and_blocking_calls() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("threads", &["6"]);
    w.dump_restore();
    w.finish();
}

#[test]
fn two_hundred_threads() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("threads", &["200"]);
    w.dump_restore();
    w.finish();
}

#[test]
fn a_tree_with_sessions_groups_zombies_and_shared_state() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("tree", &[]);
    let pss_before = tree_pss_kib(w.pid);
    w.dump(&[]);
    w.restore(&[], &[]);
    let pss_after = tree_pss_kib(w.pid);
    // Reported, not asserted: see docs/performance.md.
    eprintln!("tree memory (sum of Pss): {pss_before} KiB before the dump, {pss_after} KiB after restore");
    w.finish();
}
