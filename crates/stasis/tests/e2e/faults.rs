//! Failures: a dump that fails at any stage leaves the target running
//! exactly as before; a restore that fails leaves nothing behind; bad or
//! missing images are refused with the file named.

use crate::harness::*;
use crate::util::*;
use std::path::Path;

fn stages(kind: &str) -> Vec<String> {
    // The list the engine documents, kept here too so a stage cannot be
    // dropped from the engine without the test noticing.
    let s: &[&str] = match kind {
        "dump" => &["seize", "regs", "inject", "signals", "mm", "pages", "files", "images", "release"],
        _ => &["fork", "memory", "files", "attributes", "registers", "release"],
    };
    s.iter().map(|x| x.to_string()).collect()
}

fn dump_fault(w: &Workload, stage: &str) -> std::process::Output {
    let pid = w.pid.to_string();
    stasis()
        .env("STASIS_FAULT", stage)
        .args(["dump", "-t", &pid, "-D", w.img().to_str().unwrap(), "-v4", "-o", "dump.log"])
        .output()
        .unwrap()
}

/// Run every dump stage's fault on a workload and show it is untouched.
fn survives_failed_dumps(name: &str) {
    let w = Workload::start(name, &[]);
    let before = outside(w.pid);
    for stage in stages("dump") {
        let o = dump_fault(&w, &stage);
        assert_eq!(o.status.code(), Some(1), "stage {stage}: dump should fail");
        assert!(text(&o.stderr).contains(&format!("injected fault at stage {stage}")), "stage {stage}: {}", text(&o.stderr));
        let now = outside(w.pid);
        let d = diff_outside(&before, &now, &[]);
        assert!(d.is_empty(), "stage {stage}: the target changed:\n{}", d.join("\n"));
        let state = std::fs::read_to_string(format!("/proc/{}/stat", w.pid)).unwrap();
        assert!(!state.contains(") t ") && !state.contains(") T "), "stage {stage}: left stopped: {state}");
    }
    // Registers and memory are checked by the workload itself.
    w.finish();
}

#[test]
fn failed_dumps_leave_registers_and_memory_untouched() {
    if !require_root() {
        return;
    }
    let _g = serial();
    survives_failed_dumps("regs");
    survives_failed_dumps("memory");
}

fn no_task(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn failed_restores_leave_nothing_behind() {
    if !require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("files", &[]);
    w.dump(&[]);
    for stage in stages("restore") {
        let o = stasis()
            .env("STASIS_FAULT", &stage)
            .args(["restore", "-D", w.img().to_str().unwrap(), "-d", "-v4", "-o", "restore.log"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "stage {stage}: restore should fail");
        assert!(text(&o.stderr).contains(&format!("injected fault at stage {stage}")), "stage {stage}: {}", text(&o.stderr));
        assert!(no_task(w.pid), "stage {stage}: pid {} exists after a failed restore", w.pid);
    }
    // No deleted-file copies were left on disk either.
    let leftovers: Vec<_> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("gone") || n.contains("stasis-ghost"))
        .collect();
    assert!(leftovers.is_empty(), "left on disk: {leftovers:?}");
    // The images are intact: a normal restore works.
    w.restore(&[], &[]);
    w.finish();
}

fn restore_error(w: &Workload) -> String {
    let o = stasis()
        .env("STASIS_PID_WAIT_MS", "300")
        .args(["restore", "-D", w.img().to_str().unwrap(), "-d"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(!e.contains("panicked"), "{e}");
    assert!(no_task(w.pid) || is_our_child(w.pid), "a half-restored task exists");
    e
}

#[test]
fn bad_images_and_taken_pids_are_refused_clearly() {
    if !require_root() {
        return;
    }
    let _g = serial();
    // The pid is taken: the original still runs (--leave-running).
    let w = Workload::start("regs", &[]);
    assert!(w.dump_with(&["-R"]).status.success());
    let e = restore_error(&w);
    assert!(e.contains(&format!("pid {} is in use", w.pid)), "{e}");
    let pid = w.pid;
    let copy = |from: &str, to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for f in std::fs::read_dir(from).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    };
    let saved = TempDir::new("bad-restore-src");
    copy(w.img().to_str().unwrap(), &saved.join("img"));
    let img = saved.join("img");
    drop(w); // kills our workload: its pid is free now
    std::thread::sleep(std::time::Duration::from_millis(100));

    let cases: Vec<(&str, Box<dyn Fn(&Path)>, String)> = vec![
        ("missing core", Box::new(move |d: &Path| std::fs::remove_file(d.join(format!("core-{pid}.img"))).unwrap()), format!("core-{pid}.img: image file is missing")),
        (
            "truncated mm",
            Box::new(move |d: &Path| {
                let p = d.join(format!("mm-{pid}.img"));
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            }),
            format!("mm-{pid}.img: at byte 8: entry length"),
        ),
        (
            "wrong magic",
            Box::new(move |d: &Path| {
                let p = d.join(format!("ids-{pid}.img"));
                let mut b = std::fs::read(&p).unwrap();
                b[4] ^= 0xff;
                std::fs::write(&p, &b).unwrap();
            }),
            format!("ids-{pid}.img: at byte 4: unknown image type magic"),
        ),
        (
            "truncated pages",
            Box::new(|d: &Path| {
                let p = d.join("pages-1.img");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() - 4096]).unwrap();
            }),
            "pages-1.img: holds".to_string(),
        ),
        (
            "not a checkpoint",
            Box::new(|d: &Path| std::fs::remove_file(d.join("inventory.img")).unwrap()),
            "not a checkpoint directory".to_string(),
        ),
    ];
    for (what, damage, want) in cases {
        let tmp = TempDir::new("bad-restore");
        let d = tmp.join("img");
        copy(img.to_str().unwrap(), &d);
        damage(&d);
        let o = stasis().env("STASIS_PID_WAIT_MS", "300").args(["restore", "-D", d.to_str().unwrap(), "-d"]).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{what}");
        let e = text(&o.stderr);
        assert!(e.contains(&want), "{what}: want {want:?} in: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{what}: {e}");
        assert!(no_task(pid), "{what}: a task with pid {pid} was left behind");
    }
}
