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
    // The 32 MiB every process inherited and never wrote is saved once.
    let pages: u64 = std::fs::read_dir(w.img())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("pages-"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(pages < 40 << 20, "the tree's pages images hold {} MiB", pages >> 20);
    w.restore(&[], &[]);
    let pss_after = tree_pss_kib(w.pid);
    eprintln!("tree memory (sum of Pss): {pss_before} KiB before the dump, {pss_after} KiB after restore");
    // ... and stays shared in memory after restore.
    assert!(pss_after < pss_before * 3 / 2, "tree memory grew from {pss_before} KiB to {pss_after} KiB");
    w.finish();
}

/// A tree that forks and spawns threads all the time is caught whole,
/// whatever instant the freeze lands on.
#[test]
fn a_tree_changing_while_frozen_is_caught_whole() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("busy", &[]);
    for round in 0..3 {
        w.dump(&[]);
        let o = w.restore_with(&[]);
        assert!(o.status.success(), "round {round}: {}\n{}", text(&o.stderr), w.log("restore.log"));
    }
    w.finish();
}

/// Every dump stage failing in turn leaves a whole tree running as it was.
#[test]
fn failed_dumps_leave_every_task_of_a_tree_untouched() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let w = Workload::start("tree", &[]);
    let before = tree_outside(w.pid);
    for stage in ["seize", "regs", "inject", "signals", "mm", "pages", "files", "images", "release"] {
        let o = stasis()
            .env("STASIS_FAULT", stage)
            .args(["dump", "-t", &w.pid.to_string(), "-D", w.img().to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "stage {stage}");
        let now = tree_outside(w.pid);
        assert_eq!(before.keys().collect::<Vec<_>>(), now.keys().collect::<Vec<_>>(), "stage {stage}: tasks changed");
        for (pid, b) in &before {
            let d = diff_outside(b, &now[pid], &[]);
            assert!(d.is_empty(), "stage {stage}: {pid} changed:\n{}", d.join("\n"));
        }
    }
    w.finish();
}

/// Every restore stage failing in turn leaves none of the tree's tasks.
#[test]
fn failed_restores_of_a_tree_leave_nothing_behind() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("tree", &[]);
    w.dump(&[]);
    let pids: Vec<i32> = w.before_tree.keys().copied().collect();
    for stage in ["fork", "memory", "files", "attributes", "registers", "release"] {
        let o = stasis()
            .env("STASIS_FAULT", stage)
            .args(["restore", "-D", w.img().to_str().unwrap(), "-d"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "stage {stage}");
        for pid in &pids {
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "stage {stage}: task {pid} left behind");
        }
    }
    w.restore(&[], &[]);
    w.finish();
}
