//! Sockets and the kernel objects behind descriptors: each workload
//! proves after restore that its queues read back, its connections carry
//! data both ways and its events still arrive.

use crate::harness::*;

#[test]
fn unix_sockets_keep_queues_names_and_connections() {
    if !crate::util::require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("unix", &[]);
    w.dump(&[]);
    w.check_images();
    w.restore(&[], &[]);
    w.finish();
}

#[test]
fn eventfd_epoll_signalfd_timerfd_inotify_memfd_keep_working() {
    if !crate::util::require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("anon", &[]);
    w.dump(&[]);
    w.check_images();
    w.restore(&[], &[]);
    w.finish();
}

/// TCP (loopback, a full window, IPv6) and UDP sockets, plus a connection
/// to a server of ours outside the tree. Without `--tcp-established` the
/// dump and the restore refuse, naming the connection, and change
/// nothing; with it, the outside server writes while the process is gone,
/// and after restore the connection delivers that data and answers, with
/// no reset.
#[test]
fn inet_sockets_survive_and_an_outside_peer_sees_no_reset() {
    use std::io::{Read, Write};
    if !crate::util::require_root() {
        return;
    }
    let _g = serial();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let greeter = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut hello = [0u8; 19];
        s.read_exact(&mut hello).unwrap();
        assert_eq!(&hello, b"hello-from-workload");
        s.write_all(b"hello-from-test").unwrap();
        s
    });
    let mut w = Workload::start("inet", &[&format!("peer={port}")]);
    let mut peer = greeter.join().unwrap();

    let o = w.dump_with(&[]);
    let err = crate::util::text(&o.stderr);
    assert!(!o.status.success() && err.contains("--tcp-established") && err.contains("established TCP connection 127.0.0.1:"), "{err}");
    assert!(std::path::Path::new(&format!("/proc/{}", w.pid)).exists(), "a refused dump killed the workload");

    w.dump(&["--tcp-established"]);
    // The process is gone: this goes out, is held back, and is sent again
    // after the restore.
    peer.write_all(b"written-during-the-gap").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = w.restore_with(&[]);
    assert!(!o.status.success() && crate::util::text(&o.stderr).contains("--tcp-established"), "{}", crate::util::text(&o.stderr));
    assert!(!std::path::Path::new(&format!("/proc/{}", w.pid)).exists(), "a refused restore left the process behind");
    w.restore(&["--tcp-established"], &[]);
    w.check_images();
    let answer = std::thread::spawn(move || {
        peer.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 20];
        peer.read_exact(&mut buf).map(|_| buf)
    });
    w.finish();
    let got = answer.join().unwrap().expect("the outside peer's connection");
    assert_eq!(&got, b"answer-after-restore");
    // The network lock is gone: no rule names a connection of the test.
    let rules = std::process::Command::new("nft").args(["list", "table", "inet", "stasis"]).output().unwrap();
    let rules = crate::util::text(&rules.stdout);
    assert!(!rules.contains(&format!(":{port} ")) && !rules.contains(&format!("dport {port} ")), "rules left behind:\n{rules}");
}

/// What stasis cannot save is refused in one line naming the pid, the fd
/// and its kind, and the target goes on untouched: its object still
/// works afterwards (checked by the workload itself).
#[test]
fn unsaveable_descriptors_are_refused_and_the_target_runs_on() {
    if !crate::util::require_root() {
        return;
    }
    let _g = serial();
    for (kind, says) in [
        ("io_uring", "is an io_uring instance"),
        ("perf", "is a perf event"),
        ("userfaultfd", "is a userfaultfd"),
        ("bpf", "is a BPF object"),
        ("mqueue", "is the POSIX message queue"),
        ("netlink", "is a netlink socket"),
        ("scm", "has file descriptors in flight"),
        ("pending", "connections not yet accepted"),
        ("unixpending", "connection not yet accepted from outside the dumped tree"),
    ] {
        let w = Workload::start("unsaveable", &[kind]);
        let _client = (kind == "unixpending").then(|| {
            use std::io::Write;
            let mut c = std::os::unix::net::UnixStream::connect(w.dir.join("pending.sock")).unwrap();
            c.write_all(b"x").unwrap();
            c
        });
        let before = outside(w.pid);
        let o = w.dump_with(&[]);
        let err = crate::util::text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{kind}: {err}");
        assert!(err.contains(&format!("fd 3 of {}", w.pid)) && err.contains(says) && err.lines().count() == 1, "{kind}: {err}");
        let d = diff_outside(&before, &outside(w.pid), &[]);
        assert!(d.is_empty(), "{kind}: the refused dump changed the target:\n{}", d.join("\n"));
        w.finish();
    }
}

/// A datagram socket connected to a socket outside the tree (a log
/// daemon, say) is refused without `--ext-unix-sk`; with it, the restored
/// socket is connected to the same name again and its messages arrive.
#[test]
fn external_unix_peer_needs_ext_unix_sk_and_is_reconnected() {
    if !crate::util::require_root() {
        return;
    }
    let _g = serial();
    let tmp = crate::util::TempDir::new("ext-unix");
    let path = tmp.join("log.sock");
    let daemon = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    daemon.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut w = Workload::start("extpeer", &[path.to_str().unwrap()]);
    let mut buf = [0u8; 64];
    let n = daemon.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"before");

    let o = w.dump_with(&[]);
    let err = crate::util::text(&o.stderr);
    assert!(!o.status.success() && err.contains("--ext-unix-sk") && err.contains(path.to_str().unwrap()), "{err}");
    w.dump(&["--ext-unix-sk"]);
    let o = w.restore_with(&[]);
    let err = crate::util::text(&o.stderr);
    assert!(!o.status.success() && err.contains("--ext-unix-sk") && err.contains(path.to_str().unwrap()), "{err}");
    assert!(!std::path::Path::new(&format!("/proc/{}", w.pid)).exists(), "a refused restore left the process behind");
    w.restore(&["--ext-unix-sk"], &[]);
    w.finish();
    let n = daemon.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after-restore");
}

/// A pty inside the tree: master in the workload, slave the controlling
/// terminal of its child's session, with a foreground group blocked in a
/// read. After restore the same pty carries a typed line to the reader,
/// which still has its terminal, session, foreground group and settings.
#[test]
fn pty_pair_inside_the_tree_keeps_its_session_and_settings() {
    if !crate::util::require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("pty", &[]);
    w.dump(&[]);
    w.check_images();
    w.restore(&[], &[]);
    w.finish();
}
