//! Dump and restore throughput, printed beside the machine's own limits
//! measured in the same run. Run as root: `cargo bench -p stasis`.
//!
//! Sizes default to 256 MiB, 1 GiB and 4 GiB of touched anonymous memory;
//! `STASIS_BENCH_SIZES=256,1024` picks others (MiB). The image directory is
//! under the target directory (same disk as the build) unless
//! `STASIS_BENCH_DIR` names another.

#[path = "../tests/e2e/util.rs"]
mod util;
#[path = "../tests/e2e/harness.rs"]
mod harness;

use harness::Workload;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn gib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 / d.as_secs_f64()
}

/// Run stasis; wall time and peak RSS (KiB) of the stasis process. The
/// peak is polled from /proc (VmHWM): the rusage of a child created by
/// posix_spawn would report our own peak instead.
fn timed(args: &[&str]) -> (Duration, u64) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stasis")).args(args).spawn().expect("run stasis");
    let status_path = format!("/proc/{}/status", child.id());
    let mut hwm = 0u64;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(l) = s.lines().find(|l| l.starts_with("VmHWM:")) {
                hwm = hwm.max(l.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0));
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let d = t.elapsed();
    assert!(status.success(), "stasis {args:?} failed");
    (d, hwm)
}

fn pages_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("pages-"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn read_all(p: &Path) {
    let mut f = std::fs::File::open(p).unwrap();
    let mut buf = vec![0u8; 8 << 20];
    while f.read(&mut buf).unwrap() > 0 {}
}

struct Aligned {
    raw: Vec<u8>,
    off: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let raw = vec![0x5au8; len + 4096];
        let off = (4096 - raw.as_ptr() as usize % 4096) % 4096;
        Aligned { raw, off, len }
    }
    fn buf(&mut self) -> &mut [u8] {
        &mut self.raw[self.off..self.off + self.len]
    }
}

/// The machine's limits for `size` bytes: memcpy, first touch of fresh
/// memory, and the image directory's disk written and read with and
/// without the page cache.
fn limits(size: u64, dir: &Path) -> Vec<(&'static str, f64)> {
    let n = size as usize;
    let mut out = Vec::new();

    let t = Instant::now();
    let mut a = vec![0u8; n];
    for i in (0..n).step_by(4096) {
        a[i] = 1;
    }
    out.push(("first touch of fresh memory", gib_s(size, t.elapsed())));
    let mut b = vec![0u8; n];
    for i in (0..n).step_by(4096) {
        b[i] = 2;
    }
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        b.copy_from_slice(&a);
        best = best.min(t.elapsed());
    }
    std::hint::black_box(&b);
    out.push(("memcpy", gib_s(size, best)));
    drop(a);
    drop(b);

    let chunk = 8 << 20;
    let p = dir.join("bench-disk.tmp");
    let _ = std::fs::remove_file(&p);
    let mut blk = Aligned::new(chunk);
    let t = Instant::now();
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&p).unwrap();
        for _ in 0..n / chunk {
            f.write_all(blk.buf()).unwrap();
        }
    }
    out.push(("disk write, page cache", gib_s(size, t.elapsed())));
    let t = Instant::now();
    read_all(&p);
    out.push(("disk read, page cache (cached)", gib_s(size, t.elapsed())));
    let _ = std::fs::remove_file(&p);
    let t = Instant::now();
    {
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_DIRECT).open(&p).unwrap();
        for _ in 0..n / chunk {
            f.write_all(blk.buf()).unwrap();
        }
    }
    out.push(("disk write, O_DIRECT", gib_s(size, t.elapsed())));
    let t = Instant::now();
    {
        let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&p).unwrap();
        while f.read(blk.buf()).unwrap() > 0 {}
    }
    out.push(("disk read, O_DIRECT", gib_s(size, t.elapsed())));
    let _ = std::fs::remove_file(&p);
    out
}

fn bench_size(mib: u64, dir: &Path) {
    let size = mib * MIB;
    println!("\n== {mib} MiB of touched anonymous memory");
    let mut w = Workload::start("hog", &[&mib.to_string()]);
    let img = w.img();
    let (d_dump, rss_dump) = timed(&["dump", "-t", &w.pid.to_string(), "-D", img.to_str().unwrap()]);
    w.reap_dumped();
    let bytes = pages_bytes(&img);
    println!(
        "dump                        {:7.3} s  {:6.2} GiB/s   stasis peak RSS {:5} MiB   image {} MiB",
        d_dump.as_secs_f64(),
        gib_s(size, d_dump),
        rss_dump / 1024,
        bytes / MIB
    );
    let (d_res, rss_res) = timed(&["restore", "-D", img.to_str().unwrap(), "-d"]);
    println!(
        "restore (image on disk)     {:7.3} s  {:6.2} GiB/s   stasis peak RSS {:5} MiB",
        d_res.as_secs_f64(),
        gib_s(size, d_res),
        rss_res / 1024
    );
    // Again from a cached image, as CRIU's reference figures were taken.
    let img2 = w.dir.join("img2");
    std::fs::create_dir_all(&img2).unwrap();
    timed(&["dump", "-t", &w.pid.to_string(), "-D", img2.to_str().unwrap()]);
    w.reap_restored();
    for e in std::fs::read_dir(&img2).unwrap() {
        read_all(&e.unwrap().path());
    }
    let (d_res2, rss_res2) = timed(&["restore", "-D", img2.to_str().unwrap(), "-d"]);
    println!(
        "restore (cached image)      {:7.3} s  {:6.2} GiB/s   stasis peak RSS {:5} MiB",
        d_res2.as_secs_f64(),
        gib_s(size, d_res2),
        rss_res2 / 1024
    );
    w.finish();
    for (name, v) in limits(size, dir) {
        println!("limit: {name:<33} {v:6.2} GiB/s");
    }
}

fn bench_vmas(n: u64) {
    println!("\n== a process with {n} mappings");
    let mut w = Workload::start("hog", &[&n.to_string(), "vmas"]);
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", w.pid)).unwrap().lines().count();
    let img = w.img();
    let (d_dump, _) = timed(&["dump", "-t", &w.pid.to_string(), "-D", img.to_str().unwrap()]);
    w.reap_dumped();
    let (d_res, _) = timed(&["restore", "-D", img.to_str().unwrap(), "-d"]);
    println!("mappings {maps}: dump {:.3} s, restore {:.3} s", d_dump.as_secs_f64(), d_res.as_secs_f64());
    w.finish();
}

/// Dump and restore of a whole tree or a many-threaded process.
fn bench_tasks(title: &str, workload: &str, args: &[&str]) {
    println!("\n== {title}");
    let mut w = Workload::start(workload, args);
    w.before_tree = harness::tree_outside(w.pid);
    let tasks: usize = w
        .before_tree
        .keys()
        .map(|p| std::fs::read_dir(format!("/proc/{p}/task")).map(|d| d.count()).unwrap_or(0))
        .sum();
    let img = w.img();
    let (d_dump, rss) = timed(&["dump", "-t", &w.pid.to_string(), "-D", img.to_str().unwrap()]);
    w.reap_dumped();
    let (d_res, rss2) = timed(&["restore", "-D", img.to_str().unwrap(), "-d"]);
    println!(
        "{} processes, {tasks} tasks: dump {:.3} s (peak RSS {} MiB), restore {:.3} s (peak RSS {} MiB)",
        w.before_tree.len(),
        d_dump.as_secs_f64(),
        rss / 1024,
        d_res.as_secs_f64(),
        rss2 / 1024
    );
    w.finish();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !util::is_root() {
        eprintln!("the checkpoint benchmark needs root");
        return;
    }
    let _g = harness::serial();
    let dir: PathBuf = std::env::var("STASIS_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&dir).unwrap();
    let sizes: Vec<u64> = std::env::var("STASIS_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![256, 1024, 4096]);
    println!("stasis checkpoint benchmark, {}", Command::new("date").output().map(|o| util::text(&o.stdout)).unwrap_or_default().trim());
    for mib in sizes {
        bench_size(mib, &dir);
    }
    bench_vmas(5000);
    bench_tasks("a tree of 100 processes (1 MiB written each)", "flock", &["100"]);
    bench_tasks("a process with 200 threads (blocked in futex, nanosleep, read, poll)", "threads", &["200", "calm"]);
}
