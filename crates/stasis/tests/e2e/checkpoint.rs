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

fn cycle(name: &str, args: &[&str]) {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start(name, args);
    w.dump_restore();
    w.finish();
}

#[test]
fn general_and_vector_registers_survive() {
    cycle("regs", &[]);
}

fn have_avx512() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" avx512f") && c.contains(" avx512bw"))
}

#[test]
fn avx512_registers_survive() {
    if !have_avx512() {
        // Not a missing capability of ours: this CPU has no AVX-512 to test.
        eprintln!("skipped: this CPU has no AVX-512");
        return;
    }
    cycle("regs", &["avx512"]);
}

#[test]
fn signal_state_survives() {
    cycle("signals", &[]);
}

#[test]
fn timers_survive() {
    cycle("timers", &[]);
}

#[test]
fn task_attributes_survive() {
    cycle("attrs", &[]);
}

#[test]
fn open_files_survive() {
    cycle("files", &[]);
}

#[test]
fn a_task_sleeping_in_a_syscall_finishes_its_sleep() {
    cycle("sleeper", &[]);
}
