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

/// Copy a vector checkpoint to a scratch directory (restore writes
/// stats-restore there) and restore it, detached. `None` if its pids are
/// not free here.
pub fn restore_vector(name: &str, pids: &[i32]) -> Option<TempDir> {
    restore_vector_with(name, pids, &[])
}

pub fn restore_vector_with(name: &str, pids: &[i32], extra: &[&str]) -> Option<TempDir> {
    if !require(pids.iter().all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()), "the vector's pids free") {
        return None;
    }
    let tmp = TempDir::new(&format!("vector-{name}"));
    for e in std::fs::read_dir(vectors().join(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.join(e.file_name().to_str().unwrap())).unwrap();
    }
    let mut args = vec!["restore", "-D", tmp.path().to_str().unwrap(), "-d"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{name}: {}", text(&o.stderr));
    Some(tmp)
}

/// Kill a restored vector tree (ours: we are its subreaper) and reap it.
pub fn end_vector(root: i32) {
    let tree = tree_pids(root);
    stasis_sys::task::kill(root, libc::SIGKILL).unwrap();
    let _ = stasis_sys::ptrace::wait_tid(root);
    for pid in tree.into_iter().skip(1) {
        if is_our_child(pid) || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = stasis_sys::ptrace::wait_tid(pid);
        }
    }
}

fn stat_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()
}

/// Images written by CRIU 4.2 for `sleep 100000` restore and run on.
#[test]
fn criu_sleep_vector_restores() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let pid = 7306;
    let Some(_tmp) = restore_vector("sleep", &[pid]) else { return };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let stat = stat_of(pid);
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    end_vector(pid);
    assert!(stat.contains("(sleep) S"), "{stat}");
    assert_eq!(cmdline, "/usr/bin/sleep\u{0}100000\u{0}");
    assert!(maps.starts_with("55c7c1b0d000-55c7c1b0f000 r--p 00000000") && maps.contains("/usr/bin/sleep"), "{maps}");
    assert!(maps.contains("7ffeb10c9000-7ffeb10ea000 rw-p 00000000 00:00 0                          [stack]"), "{maps}");
}

/// CRIU 4.2's images of dash running a loop with `sleep` children: the
/// shell comes back and goes on starting new children.
#[test]
fn criu_shell_loop_vector_restores_and_keeps_forking() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let Some(_tmp) = restore_vector("sh-loop", &[7323, 7332]) else { return };
    let t = std::time::Instant::now();
    let mut new_children = Vec::new();
    while t.elapsed() < std::time::Duration::from_secs(3) && new_children.len() < 3 {
        for c in tree_pids(7323).into_iter().skip(1) {
            if c != 7332 && !new_children.contains(&c) {
                new_children.push(c);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stat = stat_of(7323);
    end_vector(7323);
    assert!(stat.contains("(sh) S"), "{stat}");
    assert!(new_children.len() >= 2, "the shell started only {new_children:?} after restore");
}

/// CRIU 4.2's images of python with three counting threads: all four
/// threads come back and the counters run.
#[test]
fn criu_python_threads_vector_restores_with_its_threads() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let pid = 7348;
    let Some(_tmp) = restore_vector("py-threads", &[7348, 7350, 7351, 7352]) else { return };
    let ticks = |s: &str| -> u64 {
        let w: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split_whitespace().collect();
        w[11].parse::<u64>().unwrap() + w[12].parse::<u64>().unwrap()
    };
    let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    let before: Vec<u64> = tids.iter().map(|t| ticks(&stat_of(*t))).collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let after: Vec<u64> = tids.iter().map(|t| ticks(&stat_of(*t))).collect();
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    end_vector(pid);
    assert_eq!(tids, vec![7348, 7350, 7351, 7352]);
    assert!(alive, "python exited after restore");
    assert!(after.iter().zip(&before).skip(1).filter(|(a, b)| a > b).count() >= 1, "the counting threads do not run: {before:?} -> {after:?}");
}

/// CRIU 4.2's images of python holding a pipe, unix socketpairs, an
/// eventfd, an epoll set, a memfd and a loopback TCP connection, all with
/// data in flight: every descriptor comes back holding what it held.
#[test]
fn criu_python_fds_vector_restores_every_descriptor() {
    use std::os::fd::AsFd;
    if !require_root() {
        return;
    }
    let _g = serial();
    let pid = 3959;
    let Some(_tmp) = restore_vector_with("py-fds", &[pid], &["--tcp-established"]) else { return };
    let pidfd = stasis_sys::task::pidfd_open(pid).unwrap();
    let grab = |fd: i32| stasis_sys::task::pidfd_getfd(pidfd.as_fd(), pid, stasis_sys::RemoteFd(fd)).unwrap();
    let peek = |fd: i32| -> Vec<u8> {
        let f = grab(fd);
        let mut buf = vec![0u8; 4096];
        let r = stasis_sys::net::recvmsg(f.as_fd(), &mut buf, libc::MSG_PEEK | libc::MSG_DONTWAIT).unwrap();
        buf.truncate(r.len);
        buf
    };
    let link = |fd: i32| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap().to_string_lossy().into_owned();
    let fdinfo = |fd: i32| std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap();
    let pipe = stasis_sys::fd::pipe_peek(grab(3).as_fd()).unwrap();
    let (a, b) = (peek(5), peek(6));
    // Datagrams keep their boundaries: read them one by one.
    let db = grab(8);
    let mut grams = Vec::new();
    for _ in 0..3 {
        let mut buf = [0u8; 64];
        let r = stasis_sys::net::recvmsg(db.as_fd(), &mut buf, libc::MSG_DONTWAIT).unwrap();
        grams.push(String::from_utf8_lossy(&buf[..r.len]).into_owned());
    }
    let ev = fdinfo(9);
    let ep = fdinfo(11);
    let memfd = std::fs::read(format!("/proc/{pid}/fd/12")).unwrap();
    let (memfd_link, memfd_pos) = (link(12), fdinfo(12));
    let (cli, acc) = (peek(14), peek(15));
    let listener = grab(13);
    let listening = stasis_sys::net::getsockopt_int(listener.as_fd(), libc::SOL_SOCKET, libc::SO_ACCEPTCONN).unwrap();
    // The listener still accepts on its old address.
    let addr = stasis_sys::net::sockname(listener.as_fd()).unwrap();
    let port = u16::from_be_bytes([addr[2], addr[3]]);
    let connected = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    // End the connection with a reset, as a dump does silently: a normal
    // close would leave the port in TIME_WAIT for a minute, and the next
    // run's restore could not bind the listener.
    for fd in [14, 15] {
        let linger = [1i32, 0];
        let bytes: Vec<u8> = linger.iter().flat_map(|v| v.to_ne_bytes()).collect();
        stasis_sys::net::setsockopt(grab(fd).as_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &bytes).unwrap();
    }
    drop((db, listener, pidfd));
    end_vector(pid);
    assert!(alive, "python exited after restore");
    assert_eq!(pipe, b"pipe-data-".repeat(10));
    assert_eq!((a.as_slice(), b.as_slice()), (&b"stream-b-to-a"[..], &b"stream-a-to-b"[..]));
    assert_eq!(grams, ["d1", "d22", "d333"]);
    assert!(ev.contains("eventfd-count:                5"), "{ev}");
    assert!(ep.contains("tfd:        3 events: 80000019") && ep.contains("tfd:        9 events:       19"), "{ep}");
    assert_eq!(memfd, vec![b'm'; 65536]);
    assert!(memfd_link == "/memfd:vec (deleted)" && memfd_pos.starts_with("pos:\t65536"), "{memfd_link} {memfd_pos}");
    assert_eq!((cli.as_slice(), acc.as_slice()), (&b"tcp-server-to-client"[..], &b"tcp-client-to-server"[..]));
    assert!(listening == 1 && connected, "listener on port {port}: listening {listening}, connect {connected}");
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
    let n = w.check_images();
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

/// A shell job whose standard streams are its shell's terminal: dumped with
/// --shell-job, restored with --shell-job into the restoring shell's
/// terminal.
#[test]
fn a_shell_job_on_a_terminal_moves_to_the_restoring_terminal() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let (_m1, s1) = stasis_sys::fd::openpty().unwrap();
    let mut w = Workload::start_with_stdio("regs", &["no-setsid", "keep-stdio"], Some(&s1));
    let o = w.dump_with(&[]);
    assert!(text(&o.stderr).contains("--shell-job"), "{}", text(&o.stderr));
    w.dump(&["--shell-job"]);
    let (_m2, s2) = stasis_sys::fd::openpty().unwrap();
    let new_tty = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&s2))).unwrap();
    let img = w.img();
    let o = stasis()
        .args(["restore", "-D", img.to_str().unwrap(), "-d", "--shell-job"])
        .stdin(std::process::Stdio::from(s2.try_clone().unwrap()))
        .stdout(std::process::Stdio::from(s2.try_clone().unwrap()))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    for fd in 0..3 {
        let l = std::fs::read_link(format!("/proc/{}/fd/{fd}", w.pid)).unwrap();
        assert_eq!(l, new_tty, "fd {fd} of the restored job");
    }
    w.finish();
}

/// A file deleted while open and larger than --ghost-limit is refused by
/// name, and the process keeps running untouched.
#[test]
fn a_deleted_file_over_the_ghost_limit_is_refused() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("files", &[]);
    let before = outside(w.pid);
    let o = w.dump_with(&["--ghost-limit", "1K"]);
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(e.contains("gone.txt") && e.contains("ghost file limit of 1024") && e.contains("--ghost-limit"), "{e}");
    assert_eq!(diff_outside(&before, &outside(w.pid), &[]), Vec::<String>::new());
    w.dump(&["--ghost-limit", "8K"]);
    w.restore(&[], &[]);
    w.finish();
}

/// Seccomp filters (shared by all threads, and the main thread's own) and
/// a thread in strict mode come back exactly; the shared filter is still
/// shared, so the program can add one to all threads at once (TSYNC).
#[test]
fn seccomp_filters_and_strict_mode_survive() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("seccomp", &[]);
    w.dump(&[]);
    w.check_images();
    w.restore(&[], &[]);
    w.finish();
}

/// File locks (flock, POSIX ranges, OFD) are refused without
/// `--file-locks` on dump (target untouched) and on restore (nothing left
/// behind); with it they are held again after restore, by the same
/// process, as a child of the workload finds out.
#[test]
fn file_locks_need_the_flag_and_are_held_after_restore() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("locks", &[]);
    let before = outside(w.pid);
    let o = w.dump_with(&[]);
    let err = text(&o.stderr);
    assert!(!o.status.success() && err.contains("--file-locks") && err.contains(&format!("fd 3 of {}", w.pid)), "{err}");
    assert!(diff_outside(&before, &outside(w.pid), &[]).is_empty(), "a refused dump changed the target");
    w.dump(&["--file-locks"]);
    w.check_images();
    let o = w.restore_with(&[]);
    assert!(!o.status.success() && text(&o.stderr).contains("--file-locks"), "{}", text(&o.stderr));
    assert!(!std::path::Path::new(&format!("/proc/{}", w.pid)).exists(), "a refused restore left the process behind");
    w.restore(&["--file-locks"], &[]);
    w.finish();
}

/// Calls the kernel would restart through its own restart state (poll,
/// timed futex waits, select) do not fail with EINTR after restore: the
/// blocked threads are woken the normal way and see their events.
#[test]
fn blocked_calls_resume_without_eintr() {
    cycle("blocked", &[]);
}
