//! The checkpoint test driver: start a workload, dump it, make sure it is
//! gone, restore it, compare what is visible from outside, tell it to check
//! itself, and collect its verdict.

#![allow(dead_code)]

use crate::util::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Checkpoint tests run one at a time: they need specific pids to be
/// free, and a freed pid must not be handed to another test's process.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    static SUBREAPER: OnceLock<()> = OnceLock::new();
    SUBREAPER.get_or_init(|| stasis_sys::task::set_child_subreaper().expect("become child subreaper"));
    g
}

fn workload_src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/workloads")
}

/// Compile `tests/workloads/NAME.c` (once per test run).
pub fn build(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("workloads");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(name);
    let src = workload_src().join(format!("{name}.c"));
    let o = Command::new("cc")
        .args(["-O1", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter", "-o"])
        .arg(&out)
        .arg(&src)
        .args(["-lrt", "-pthread"])
        .output()
        .expect("run cc (install gcc)");
    assert!(o.status.success(), "cc {}: {}", src.display(), text(&o.stderr));
    built.insert(name.to_string(), out.clone());
    out
}

/// What a process shows to the outside world, for before/after checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    pub fields: BTreeMap<String, String>,
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read(p.as_ref()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_else(|e| format!("<{e}>"))
}

fn link(p: impl AsRef<Path>) -> String {
    std::fs::read_link(p.as_ref()).map(|l| l.display().to_string()).unwrap_or_else(|e| format!("<{e}>"))
}

/// Status lines that describe the task rather than its momentary activity
/// (not SigQ: it counts the signals queued for the whole user).
const STATUS_KEYS: &[&str] = &[
    "Name", "Umask", "Tgid", "Pid", "PPid", "Uid", "Gid", "Groups", "NSpid", "NSpgid", "NSsid", "SigPnd",
    "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters",
    "Threads", "Speculation_Store_Bypass", "Cpus_allowed_list",
];

pub fn outside(pid: i32) -> Outside {
    let mut f = BTreeMap::new();
    let base = PathBuf::from(format!("/proc/{pid}"));
    // Mappings; shared anonymous memory gets a new inode number.
    let maps: Vec<String> = read(base.join("maps"))
        .lines()
        .map(|l| {
            if l.contains("/dev/zero (deleted)") || l.contains("/SYSV") || l.contains("/memfd:") {
                let mut parts: Vec<&str> = l.split_whitespace().collect();
                if parts.len() > 4 {
                    parts[4] = "INODE";
                }
                parts.join(" ")
            } else {
                l.split_whitespace().collect::<Vec<_>>().join(" ")
            }
        })
        .collect();
    f.insert("maps".into(), maps.join("\n"));
    let vmflags: Vec<String> = read(base.join("smaps")).lines().filter(|l| l.starts_with("VmFlags:")).map(str::to_string).collect();
    f.insert("vmflags".into(), vmflags.join("\n"));
    for k in ["cmdline", "environ", "personality", "limits", "timers", "comm", "oom_score_adj", "loginuid"] {
        f.insert(k.into(), read(base.join(k)));
    }
    for k in ["exe", "cwd", "root"] {
        f.insert(k.into(), link(base.join(k)));
    }
    let status = read(base.join("status"));
    for l in status.lines() {
        if let Some((k, v)) = l.split_once(':') {
            if STATUS_KEYS.contains(&k) {
                f.insert(format!("status.{k}"), v.trim().to_string());
            }
        }
    }
    let stat = read(base.join("stat"));
    if let Some(i) = stat.rfind(')') {
        let w: Vec<&str> = stat[i + 2..].split_whitespace().collect();
        // ppid pgrp session tty_nr ... priority nice num_threads ... rt_priority policy
        for (name, idx) in [("ppid", 1), ("pgrp", 2), ("session", 3), ("tty_nr", 4), ("tpgid", 5), ("priority", 15), ("nice", 16), ("rt_priority", 37), ("policy", 38)] {
            f.insert(format!("stat.{name}"), w.get(idx).unwrap_or(&"?").to_string());
        }
    }
    let mut fds = Vec::new();
    if let Ok(rd) = std::fs::read_dir(base.join("fd")) {
        let mut nums: Vec<i32> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
        nums.sort_unstable();
        for n in nums {
            let info = read(base.join(format!("fdinfo/{n}")));
            let mut keep: Vec<String> = info
                .lines()
                .filter(|l| l.starts_with("pos:") || l.starts_with("flags:") || l.starts_with("eventfd-count") || l.starts_with("sigmask") || l.starts_with("clockid") || l.starts_with("tfd:"))
                // An epoll target's inode is new if it is a pipe or socket.
                .map(|l| if l.starts_with("tfd:") { l.split_whitespace().filter(|w| !w.starts_with("ino:")).collect::<Vec<_>>().join(" ") } else { l.to_string() })
                .collect();
            // epoll lists its targets in kernel-pointer order.
            keep.sort();
            let target = link(base.join(format!("fd/{n}")));
            // Pipes and sockets get new inode numbers.
            let target = match target.split_once(":[") {
                Some((kind, _)) if kind == "pipe" || kind == "socket" => format!("{kind}:[INODE]"),
                _ => target,
            };
            fds.push(format!("{n} {target} {}", keep.join(" ")));
        }
    }
    f.insert("fds".into(), fds.join("\n"));
    Outside { fields: f }
}

/// Report fields that differ, ignoring `skip`.
pub fn diff_outside(before: &Outside, after: &Outside, skip: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in &before.fields {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let a = after.fields.get(k).cloned().unwrap_or_default();
        if &a != v {
            if v.contains('\n') || a.contains('\n') {
                let bl: Vec<&str> = v.lines().collect();
                let al: Vec<&str> = a.lines().collect();
                let gone: Vec<&&str> = bl.iter().filter(|l| !al.contains(l)).collect();
                let new: Vec<&&str> = al.iter().filter(|l| !bl.contains(l)).collect();
                out.push(format!("{k}: before only {gone:?}, after only {new:?}"));
            } else {
                out.push(format!("{k}: {v:?} before, {a:?} after"));
            }
        }
    }
    out
}

pub struct Workload {
    pub name: String,
    pub dir: TempDir,
    pub pid: i32,
    child: Option<Child>,
    pub before: Option<Outside>,
    /// Every process of the tree before the dump, with its outside view.
    pub before_tree: BTreeMap<i32, Outside>,
}

/// The pids of a tree: `root` and its descendants, root first.
pub fn tree_pids(root: i32) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let pid = out[i];
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in rd.filter_map(|e| e.ok()) {
                let kids = read(format!("/proc/{pid}/task/{}/children", t.file_name().to_string_lossy()));
                out.extend(kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()));
            }
        }
        i += 1;
    }
    out
}

/// The outside view of every process of a tree, plus its threads.
pub fn tree_outside(root: i32) -> BTreeMap<i32, Outside> {
    tree_pids(root)
        .into_iter()
        .map(|pid| {
            let mut o = outside(pid);
            let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
                .unwrap_or_default();
            tids.sort_unstable();
            o.fields.insert("threads".into(), format!("{tids:?}"));
            for t in &tids {
                o.fields.insert(format!("thread {t} comm"), read(format!("/proc/{pid}/task/{t}/comm")));
                let st = read(format!("/proc/{pid}/task/{t}/status"));
                for k in ["SigBlk", "SigPnd", "Cpus_allowed_list"] {
                    if let Some(l) = st.lines().find(|l| l.starts_with(&format!("{k}:"))) {
                        o.fields.insert(format!("thread {t} {k}"), l.to_string());
                    }
                }
            }
            (pid, o)
        })
        .collect()
}

/// Memory a tree really uses, in KiB: the sum of proportional set sizes
/// (a page shared by n processes counts 1/n in each).
pub fn tree_pss_kib(root: i32) -> u64 {
    tree_pids(root)
        .into_iter()
        .filter_map(|pid| {
            read(format!("/proc/{pid}/smaps_rollup"))
                .lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .sum()
}

fn wait_for_file(p: &Path, timeout: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if p.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

impl Workload {
    /// Start workload `name` and wait until it is ready.
    pub fn start(name: &str, args: &[&str]) -> Workload {
        Self::start_with_stdio(name, args, None)
    }

    /// Same, with standard input, output and error on `tty`.
    pub fn start_with_stdio(name: &str, args: &[&str], tty: Option<&std::os::fd::OwnedFd>) -> Workload {
        let bin = build(name);
        let dir = TempDir::new(name);
        std::fs::create_dir_all(dir.join("img")).unwrap();
        let stdio = |null: Stdio| match tty {
            Some(t) => Stdio::from(t.try_clone().unwrap()),
            None => null,
        };
        let mut child = Command::new(&bin)
            .arg(dir.path())
            .args(args)
            .current_dir(dir.path())
            .stdin(stdio(Stdio::null()))
            .stdout(stdio(Stdio::null()))
            .stderr(stdio(Stdio::piped()))
            .spawn()
            .expect("start workload");
        let pid = child.id() as i32;
        if !wait_for_file(&dir.join("ready"), Duration::from_secs(20)) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("workload {name} did not get ready: {}", text(&o.stderr));
        }
        Workload { name: name.into(), dir, pid, child: Some(child), before: None, before_tree: BTreeMap::new() }
    }

    pub fn img(&self) -> PathBuf {
        self.dir.join("img")
    }

    pub fn dump_with(&self, extra: &[&str]) -> Output {
        let pid = self.pid.to_string();
        let img = self.img();
        let mut args = vec!["dump", "-t", &pid, "-D", img.to_str().unwrap(), "-v4", "-o", "dump.log"];
        args.extend_from_slice(extra);
        run(&args)
    }

    /// Dump (killing the workload) and check it is gone.
    pub fn dump(&mut self, extra: &[&str]) {
        self.before = Some(outside(self.pid));
        self.before_tree = tree_outside(self.pid);
        let o = self.dump_with(extra);
        assert!(o.status.success(), "dump of {} failed: {}\nlog:\n{}", self.name, text(&o.stderr), self.log("dump.log"));
        self.reap_dumped();
        assert!(!Path::new(&format!("/proc/{}", self.pid)).exists(), "pid {} still exists after the dump", self.pid);
    }

    /// Reap the workload after a dump killed it: our child at first, an
    /// adopted one after a restore.
    pub fn reap_dumped(&mut self) {
        if let Some(mut c) = self.child.take() {
            let st = c.wait().unwrap();
            assert!(!st.success(), "workload {} exited by itself during the dump", self.name);
        } else {
            let _ = stasis_sys::ptrace::wait_tid(self.pid);
        }
        // The rest of the tree was killed too; orphans come to us (we are
        // a subreaper): reap exactly those, so their pids are free again.
        // The image says which tasks the dump caught (the tree may have
        // changed since our snapshot).
        let mut others: Vec<i32> = self.before_tree.keys().copied().filter(|&p| p != self.pid).collect();
        if let Ok(cp) = stasis_image::checkpoint::Checkpoint::open(&self.img()) {
            others.extend(cp.pstree.iter().map(|e| e.pid as i32).filter(|&p| p != self.pid));
        }
        others.sort_unstable();
        others.dedup();
        let t = Instant::now();
        for pid in others {
            while Path::new(&format!("/proc/{pid}")).exists() && t.elapsed() < Duration::from_secs(10) {
                if is_our_child(pid) {
                    let _ = stasis_sys::ptrace::wait_tid(pid);
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// Same, for a restored workload that was dumped again.
    pub fn reap_restored(&mut self) {
        self.reap_dumped();
    }

    pub fn log(&self, name: &str) -> String {
        read(self.img().join(name))
    }

    pub fn restore_with(&self, extra: &[&str]) -> Output {
        let img = self.img();
        let mut args = vec!["restore", "-D", img.to_str().unwrap(), "-d", "-v4", "-o", "restore.log"];
        args.extend_from_slice(extra);
        run(&args)
    }

    /// Restore, detached, and compare the outside view with the one before
    /// the dump.
    pub fn restore(&mut self, extra: &[&str], skip: &[&str]) {
        let o = self.restore_with(extra);
        assert!(o.status.success(), "restore of {} failed: {}\nlog:\n{}", self.name, text(&o.stderr), self.log("restore.log"));
        assert!(Path::new(&format!("/proc/{}", self.pid)).exists(), "pid {} does not exist after restore", self.pid);
        let after = outside(self.pid);
        let d = diff_outside(self.before.as_ref().unwrap(), &after, skip);
        assert!(d.is_empty(), "{} looks different after restore:\n{}", self.name, d.join("\n"));
        let after_tree = tree_outside(self.pid);
        let before_pids: Vec<&i32> = self.before_tree.keys().collect();
        let after_pids: Vec<&i32> = after_tree.keys().collect();
        assert_eq!(before_pids, after_pids, "{}: the processes of the tree differ", self.name);
        for (pid, b) in &self.before_tree {
            let d = diff_outside(b, &after_tree[pid], skip);
            assert!(d.is_empty(), "{}: process {pid} looks different after restore:\n{}", self.name, d.join("\n"));
        }
    }

    /// Every image of the dump is private (0600), decodes with our reader
    /// and with Debian's crit, and encodes back from our JSON to the same
    /// bytes. Returns how many images were checked.
    pub fn check_images(&self) -> usize {
        let mut n = 0;
        for e in std::fs::read_dir(self.img()).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).unwrap().permissions());
            assert_eq!(mode & 0o077, 0, "{name} is readable by others ({mode:o})");
            if name.starts_with("pages-") || name.ends_with(".log") || name.ends_with(".json") || name.ends_with(".re") {
                continue;
            }
            let json = self.dir.join(&format!("{name}.json"));
            let o = run(&["decode", "-i", p.to_str().unwrap(), "-o", json.to_str().unwrap()]);
            assert!(o.status.success(), "{name}: {}", text(&o.stderr));
            let again = self.dir.join(&format!("{name}.re"));
            let o = run(&["encode", "-i", json.to_str().unwrap(), "-o", again.to_str().unwrap()]);
            assert!(o.status.success(), "{name}: {}", text(&o.stderr));
            assert!(std::fs::read(&p).unwrap() == std::fs::read(&again).unwrap(), "{name}: decode then encode changed its bytes");
            if crate::util::have_crit() {
                crate::images::check_crit_decodes(&p);
            }
            n += 1;
        }
        n
    }

    pub fn dump_restore(&mut self) {
        self.dump(&[]);
        self.restore(&[], &[]);
    }

    /// Tell the workload to check itself; wait for its verdict (a minute
    /// at most: a workload that hangs fails the test instead of the run).
    pub fn finish(mut self) {
        stasis_sys::task::kill(self.pid, libc::SIGUSR2).expect("signal workload");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            let done = match self.child.as_mut() {
                Some(c) => c.try_wait().unwrap().map(|st| st.code().unwrap_or(-1)),
                None => match stasis_sys::ptrace::try_wait_tid(self.pid).expect("wait for restored workload") {
                    Some(stasis_sys::Stop::Exited(c)) => Some(c),
                    Some(other) => panic!("workload {} ended with {other}", self.name),
                    None => None,
                },
            };
            if let Some(c) = done {
                self.child = None;
                break c;
            }
            if Instant::now() > deadline {
                let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", self.pid))
                    .map(|rd| {
                        rd.filter_map(|e| e.ok())
                            .map(|e| {
                                let t = e.file_name().to_string_lossy().into_owned();
                                format!("{t}:{}", read(format!("/proc/{}/task/{t}/wchan", self.pid)))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                panic!("workload {} did not finish its checks within a minute (tasks {tasks:?})", self.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let result = read(self.dir.join("result"));
        assert!(status == 0 && result == "ok\n", "workload {} failed its self-check (exit {status}):\n{result}", self.name);
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        // Only our own process, by pid, and only if it is still ours.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        } else if std::thread::panicking() && is_our_child(self.pid) {
            let tree = tree_pids(self.pid);
            let _ = stasis_sys::task::kill(self.pid, libc::SIGKILL);
            let _ = stasis_sys::ptrace::wait_tid(self.pid);
            // The rest of our tree, now orphaned to us.
            for pid in tree.into_iter().skip(1) {
                if is_our_child(pid) {
                    let _ = stasis_sys::task::kill(pid, libc::SIGKILL);
                    let _ = stasis_sys::ptrace::wait_tid(pid);
                }
            }
        }
    }
}

/// Whether `pid` is a child of this test process (so ours to kill).
pub fn is_our_child(pid: i32) -> bool {
    let stat = read(format!("/proc/{pid}/stat"));
    let ppid = stat.rfind(')').and_then(|i| stat[i + 2..].split_whitespace().nth(1)?.parse::<u32>().ok());
    ppid == Some(std::process::id())
}
