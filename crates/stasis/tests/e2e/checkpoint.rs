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

#[test]
fn ten_rounds_in_a_row() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("memory", &[]);
    for _ in 0..10 {
        w.dump_restore();
    }
    w.finish();
}

#[test]
fn leave_running_and_leave_stopped() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let w = Workload::start("regs", &[]);
    let before = outside(w.pid);
    let o = w.dump_with(&["-R"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(diff_outside(&before, &outside(w.pid), &[]), Vec::<String>::new());
    assert!(w.img().join(format!("core-{}.img", w.pid)).exists());
    let o = w.dump_with(&["-s"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let state = std::fs::read_to_string(format!("/proc/{}/stat", w.pid)).unwrap();
    assert!(state.contains(") T "), "not stopped after --leave-stopped: {state}");
    stasis_sys::task::kill(w.pid, libc::SIGCONT).unwrap();
    w.finish();
}

/// `restore` without `-d` waits for the task and exits with its status;
/// `--pidfile` names the restored root.
#[test]
fn restore_in_the_foreground_returns_the_exit_status() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("signals", &[]);
    w.dump(&[]);
    let pidfile = w.dir.join("restored.pid");
    let mut child = stasis()
        .args(["restore", "-D", w.img().to_str().unwrap(), "--pidfile", pidfile.to_str().unwrap()])
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !pidfile.exists() && t.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert_eq!(pid, w.pid);
    stasis_sys::task::kill(pid, libc::SIGUSR2).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "restore did not exit with the task's status");
    assert_eq!(std::fs::read_to_string(w.dir.join("result")).unwrap(), "ok\n");
}

#[test]
fn a_process_that_is_not_a_session_leader_needs_shell_job() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("regs", &["no-setsid"]);
    let o = w.dump_with(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--shell-job"), "{}", text(&o.stderr));
    w.dump(&["--shell-job"]);
    let o = w.restore_with(&[]);
    assert!(!o.status.success() && text(&o.stderr).contains("--shell-job"), "{}", text(&o.stderr));
    assert!(!std::path::Path::new(&format!("/proc/{}", w.pid)).exists());
    w.restore(&["--shell-job"], &[]);
    w.finish();
}

/// Images written by CRIU 4.2 for `sleep 100000` restore and run on.
#[test]
fn criu_sleep_vector_restores() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let pid = 7306;
    if !require(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "free pid 7306") {
        return;
    }
    let tmp = TempDir::new("vector-sleep");
    for e in std::fs::read_dir(vectors().join("sleep")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.join(e.file_name().to_str().unwrap())).unwrap();
    }
    let o = run(&["restore", "-D", tmp.path().to_str().unwrap(), "-d"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    stasis_sys::task::kill(pid, libc::SIGKILL).unwrap();
    let _ = stasis_sys::ptrace::wait_tid(pid);
    assert!(stat.contains("(sleep) S"), "{stat}");
    assert_eq!(cmdline, "/usr/bin/sleep\0100000\0");
    assert!(maps.starts_with("55c7c1b0d000-55c7c1b0f000 r--p 00000000") && maps.contains("/usr/bin/sleep"), "{maps}");
    assert!(maps.contains("7ffeb10c9000-7ffeb10ea000 rw-p 00000000 00:00 0                          [stack]"), "{maps}");
}

/// Every image a dump writes is private, decodes with our reader and
/// with Debian's crit, and the stats record what happened.
#[test]
fn dump_images_are_private_crit_readable_and_carry_stats() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("files", &[]);
    w.dump(&[]);
    let mut n = 0;
    for e in std::fs::read_dir(w.img()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "{name} is readable by others ({mode:o})");
        if name.starts_with("pages-") || name.ends_with(".log") {
            continue;
        }
        let o = run(&["decode", "-i", p.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        if have_crit() {
            crate::images::check_crit_decodes(&p);
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} images");
    let stats = run(&["decode", "-i", w.img().join("stats-dump").to_str().unwrap()]);
    let s = text(&stats.stdout);
    assert!(s.contains("\"pages_written\"") && !s.contains("\"pages_written\": 0,"), "{s}");
    w.restore(&[], &[]);
    let stats = run(&["decode", "-i", w.img().join("stats-restore").to_str().unwrap()]);
    assert!(text(&stats.stdout).contains("\"restore_time\""), "{}", text(&stats.stdout));
    w.finish();
}

#[test]
fn check_lists_kernel_features() {
    if !require_root() {
        return;
    }
    let o = run(&["check"]);
    let s = text(&o.stdout);
    assert!(o.status.success(), "{s}");
    for f in ["PTRACE_SEIZE", "NT_X86_XSTATE", "pidfd_getfd", "PTRACE_GET_RSEQ_CONFIGURATION", "PAGEMAP_SCAN"] {
        assert!(s.contains(f), "check does not mention {f}:\n{s}");
    }
}
