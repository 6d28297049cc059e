//! Image tools: crit interchange and bad input.

use crate::util::*;
use std::path::Path;

fn vector_images() -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for d in std::fs::read_dir(vectors()).unwrap() {
        let d = d.unwrap().path();
        if !d.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&d).unwrap() {
            let p = f.unwrap().path();
            let n = p.file_name().unwrap().to_str().unwrap();
            if !n.ends_with(".json") && !n.starts_with("pages-") {
                v.push(p);
            }
        }
    }
    v.sort();
    assert!(v.len() >= 40);
    v
}

#[test]
fn decode_cli_matches_crit_4_2_output() {
    let tmp = TempDir::new("decode");
    for img in vector_images() {
        let out = tmp.join("out.json");
        let o = run(&["decode", "-i", img.to_str().unwrap(), "-o", out.to_str().unwrap(), "--pretty"]);
        assert!(o.status.success(), "{}: {}", img.display(), text(&o.stderr));
        let want = std::fs::read(format!("{}.json", img.display())).unwrap();
        assert!(std::fs::read(&out).unwrap() == want, "{} decodes differently from crit 4.2", img.display());
    }
}

#[test]
fn encode_cli_rebuilds_every_vector() {
    let tmp = TempDir::new("encode");
    for img in vector_images() {
        let out = tmp.join("out.img");
        let json = format!("{}.json", img.display());
        let o = run(&["encode", "-i", &json, "-o", out.to_str().unwrap()]);
        assert!(o.status.success(), "{json}: {}", text(&o.stderr));
        assert!(std::fs::read(&out).unwrap() == std::fs::read(&img).unwrap(), "{json}: bytes differ");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "image files must not be readable by others");
    }
}

/// Debian's crit (3.17) reads what we encode: it knows fewer fields and
/// must skip the newer ones without complaint.
#[test]
fn debian_crit_decodes_images_we_encode() {
    if !require(have_crit(), "crit (Debian package criu)") {
        return;
    }
    let tmp = TempDir::new("crit");
    for img in vector_images() {
        let out = tmp.join(img.file_name().unwrap().to_str().unwrap());
        let json = format!("{}.json", img.display());
        assert!(run(&["encode", "-i", &json, "-o", out.to_str().unwrap()]).status.success());
        check_crit_decodes(&out);
    }
}

pub fn check_crit_decodes(img: &Path) {
    let o = std::process::Command::new("crit").args(["decode", "-i"]).arg(img).arg("--pretty").output().unwrap();
    assert!(o.status.success(), "crit cannot decode {}: {}", img.display(), text(&o.stderr));
}

#[test]
fn info_counts_entries() {
    let img = vectors().join("sh-loop/pagemap-7323.img");
    let o = run(&["info", img.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), "{\n    \"magic\": \"PAGEMAP\",\n    \"count\": 13\n}\n");
}

#[test]
fn show_summarises_a_checkpoint() {
    let o = run(&["show", vectors().join("sh-loop").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    for want in ["2 processes", "7323", "7332", "sleep", "/usr/bin/dash (exe)", "pipe:[86700]", "[heap]", "[vdso]"] {
        assert!(s.contains(want), "show output lacks {want:?}:\n{s}");
    }
}

/// Runs `stasis decode` on `bytes` and returns the one-line error.
fn decode_error(tmp: &TempDir, name: &str, bytes: &[u8]) -> String {
    let p = tmp.join(name);
    std::fs::write(&p, bytes).unwrap();
    let o = run(&["decode", "-i", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{name}: expected exit code 1");
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{name}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{name}: want one line, got {err:?}");
    assert!(err.contains(p.to_str().unwrap()), "{name}: error does not name the file: {err}");
    err
}

#[test]
fn bad_images_are_refused_with_one_clear_line() {
    let tmp = TempDir::new("bad");
    let good = std::fs::read(vectors().join("sleep/core-7306.img")).unwrap();

    let e = decode_error(&tmp, "empty.img", b"");
    assert!(e.contains("too short"), "{e}");

    let e = decode_error(&tmp, "truncated-header.img", &good[..6]);
    assert!(e.contains("too short"), "{e}");

    let e = decode_error(&tmp, "wrong-magic.img", &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
    assert!(e.contains("unknown magic 0xefbeadde"), "{e}");

    let mut unknown_type = good[..4].to_vec();
    unknown_type.extend_from_slice(&0x1234_5678u32.to_le_bytes());
    let e = decode_error(&tmp, "unknown-type.img", &unknown_type);
    assert!(e.contains("unknown image type magic 0x12345678") && e.contains("at byte 4"), "{e}");

    let e = decode_error(&tmp, "truncated-entry.img", &good[..good.len() - 10]);
    assert!(e.contains("at byte 8") && e.contains("runs past the end of the file"), "{e}");

    let e = decode_error(&tmp, "truncated-length.img", &good[..10]);
    assert!(e.contains("truncated entry length"), "{e}");

    let mut huge = good[..8].to_vec();
    huge.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let e = decode_error(&tmp, "huge-length.img", &huge);
    assert!(e.contains("larger than the limit"), "{e}");

    let mut garbage = good[..8].to_vec();
    garbage.extend_from_slice(&6u32.to_le_bytes());
    garbage.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let e = decode_error(&tmp, "garbage.img", &garbage);
    assert!(e.contains("bad CoreEntry entry"), "{e}");

    let mut missing_field = good[..8].to_vec();
    missing_field.extend_from_slice(&0u32.to_le_bytes());
    let e = decode_error(&tmp, "missing-field.img", &missing_field);
    assert!(e.contains("required field mtype is missing"), "{e}");

    let e = decode_error(&tmp, "pages-1.img", &[0u8; 4096]);
    assert!(e.contains("raw data"), "{e}");
}

#[test]
fn bad_json_is_refused() {
    let tmp = TempDir::new("badjson");
    for (name, body, want) in [
        ("syntax.json", "{\"magic\": ", "bad JSON"),
        ("nomagic.json", "{\"entries\": []}", "no \"magic\""),
        ("badmagic.json", "{\"magic\": \"NOPE\", \"entries\": []}", "unknown image type"),
        ("badfield.json", "{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": \"x\"}]}", "bad number"),
        ("missing.json", "{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": 1}]}", "required field ppid"),
    ] {
        let p = tmp.join(name);
        std::fs::write(&p, body).unwrap();
        let o = run(&["encode", "-i", p.to_str().unwrap(), "-o", tmp.join("x.img").to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = text(&o.stderr);
        assert!(err.contains(want) && err.contains(name), "{name}: {err}");
    }
}

#[test]
fn a_directory_that_is_not_a_checkpoint_is_refused() {
    let tmp = TempDir::new("notcp");
    let o = run(&["show", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("not a checkpoint directory") && err.contains(tmp.path().to_str().unwrap()), "{err}");

    let o = run(&["show", tmp.join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("missing"));

    // A checkpoint with a corrupt process tree names that file.
    std::fs::copy(vectors().join("sleep/inventory.img"), tmp.join("inventory.img")).unwrap();
    std::fs::write(tmp.join("pstree.img"), [0x19, 0x43, 0x56, 0x54, 0x30, 0x30, 0x27, 0x50, 9, 0, 0, 0]).unwrap();
    let o = run(&["show", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("pstree.img") && err.contains("at byte 8"), "{err}");
}
