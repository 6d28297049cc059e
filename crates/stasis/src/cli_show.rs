//! `show DIR`: what a checkpoint holds, in the spirit of `crit x DIR ps|fds|mems`.

use anyhow::Result;
use clap::Args;
use stasis_image::checkpoint::{describe_file, fd_type_name, Checkpoint};
use stasis_image::messages::{FileEntry, PagemapEntry, PstreeEntry, VmaEntry};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Checkpoint directory
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Only the process tree
    #[arg(long)]
    ps: bool,
    /// Only the open files
    #[arg(long)]
    fds: bool,
    /// Only the memory
    #[arg(long)]
    mems: bool,
}

const PAGE: u64 = 4096;

pub fn run(a: ShowArgs) -> Result<ExitCode> {
    let cp = Checkpoint::open(&a.dir)?;
    let all = !(a.ps || a.fds || a.mems);
    print!("{}", render(&cp, all || a.ps, all || a.fds, all || a.mems)?);
    Ok(ExitCode::SUCCESS)
}

fn render(cp: &Checkpoint, ps: bool, fds: bool, mems: bool) -> Result<String> {
    let mut out = String::new();
    let threads: usize = cp.pstree.iter().map(|p| p.threads.len().max(1)).sum();
    writeln!(
        out,
        "checkpoint {}: {} process{}, {} thread{}",
        cp.dir.display(),
        cp.pstree.len(),
        if cp.pstree.len() == 1 { "" } else { "es" },
        threads,
        if threads == 1 { "" } else { "s" }
    )?;
    let comms: HashMap<u32, String> = cp
        .pstree
        .iter()
        .map(|p| {
            let comm = cp.core(p.pid).ok().and_then(|c| c.tc).map(|t| t.comm).unwrap_or_else(|| "?".into());
            (p.pid, comm)
        })
        .collect();
    let files: HashMap<u32, FileEntry> = cp.files()?.into_iter().map(|f| (f.id, f)).collect();

    if ps {
        writeln!(out, "\nprocesses:\n{:>8} {:>8} {:>8} {:>8} {:>7}  COMMAND", "PID", "PPID", "PGID", "SID", "THREADS")?;
        let mut rows = Vec::new();
        tree_rows(&cp.pstree, 0, 0, &mut rows);
        for (p, depth) in rows {
            writeln!(
                out,
                "{:>8} {:>8} {:>8} {:>8} {:>7}  {}{}",
                p.pid,
                p.ppid,
                p.pgid,
                p.sid,
                p.threads.len(),
                "    ".repeat(depth),
                comms[&p.pid]
            )?;
        }
    }

    if fds {
        writeln!(out, "\nopen files:")?;
        for p in &cp.pstree {
            writeln!(out, "  {} {}", p.pid, comms[&p.pid])?;
            if let Ok(fs) = cp.fs(p.pid) {
                for (what, id) in [("cwd", fs.cwd_id), ("root", fs.root_id)] {
                    let name = files.get(&id).map(describe_file).unwrap_or_else(|| format!("file id {id}"));
                    writeln!(out, "    {what:>5}  {name}")?;
                }
            }
            let ids = cp.ids(p.pid)?;
            for fd in cp.fdinfo(ids.files_id)? {
                let name = files.get(&fd.id).map(describe_file).unwrap_or_else(|| format!("file id {} (missing)", fd.id));
                writeln!(out, "    {:>5}  {:<9} {}", fd.fd, fd_type_name(fd.r#type), name)?;
            }
        }
    }

    if mems {
        writeln!(out, "\nmemory:")?;
        for p in &cp.pstree {
            let mm = cp.mm(p.pid)?;
            let (pages_id, pagemap) = cp.pagemap(p.pid)?;
            let mapped: u64 = mm.vmas.iter().map(|v| v.end - v.start).sum();
            let present: u64 = pagemap.iter().map(page_count).sum();
            let saved: u64 =
                pagemap.iter().filter(|e| e.in_parent != Some(true) && e.flags.unwrap_or(4) & 1 == 0).map(page_count).sum();
            writeln!(
                out,
                "  {} {}: {} mappings, {} mapped, {} present, {} saved in pages-{pages_id}.img",
                p.pid,
                comms[&p.pid],
                mm.vmas.len(),
                size(mapped),
                size(present * PAGE),
                size(saved * PAGE)
            )?;
            for v in &mm.vmas {
                let pages_in: u64 = pagemap.iter().map(|e| overlap_pages(e, v)).sum();
                writeln!(
                    out,
                    "    {:012x}-{:012x} {} {:>9} saved  {}",
                    v.start,
                    v.end,
                    prot_str(v),
                    size(pages_in * PAGE),
                    vma_name(v, &mm, &files)
                )?;
            }
        }
    }
    Ok(out)
}

fn tree_rows<'a>(all: &'a [PstreeEntry], ppid: u32, depth: usize, rows: &mut Vec<(&'a PstreeEntry, usize)>) {
    for p in all.iter().filter(|p| p.ppid == ppid || (depth == 0 && !all.iter().any(|q| q.pid == p.ppid))) {
        if rows.iter().any(|(q, _)| q.pid == p.pid) {
            continue;
        }
        rows.push((p, depth));
        tree_rows(all, p.pid, depth + 1, rows);
    }
}

fn page_count(e: &PagemapEntry) -> u64 {
    e.nr_pages.unwrap_or(u64::from(e.compat_nr_pages))
}

fn overlap_pages(e: &PagemapEntry, v: &VmaEntry) -> u64 {
    let s = e.vaddr.max(v.start);
    let end = (e.vaddr + page_count(e) * PAGE).min(v.end);
    if end > s {
        (end - s) / PAGE
    } else {
        0
    }
}

fn prot_str(v: &VmaEntry) -> String {
    let f = |bit: u32, c: char| if v.prot & bit != 0 { c } else { '-' };
    format!("{}{}{}{}", f(1, 'r'), f(2, 'w'), f(4, 'x'), if v.flags & 1 != 0 { 's' } else { 'p' })
}

fn vma_name(v: &VmaEntry, mm: &stasis_image::messages::MmEntry, files: &HashMap<u32, FileEntry>) -> String {
    const STACK: u32 = 1 << 1;
    const VSYSCALL: u32 = 1 << 2;
    const VDSO: u32 = 1 << 3;
    const HEAP: u32 = 1 << 5;
    const FILE_PRIVATE: u32 = 1 << 6;
    const FILE_SHARED: u32 = 1 << 7;
    const ANON_SHARED: u32 = 1 << 8;
    const VVAR: u32 = 1 << 12;
    let s = v.status;
    if s & VDSO != 0 {
        return "[vdso]".into();
    }
    if s & VVAR != 0 {
        return "[vvar]".into();
    }
    if s & VSYSCALL != 0 {
        return "[vsyscall]".into();
    }
    if s & HEAP != 0 {
        return "[heap]".into();
    }
    if s & STACK != 0 || (v.start <= mm.mm_start_stack && mm.mm_start_stack < v.end) {
        return "[stack]".into();
    }
    if s & (FILE_PRIVATE | FILE_SHARED) != 0 {
        let id = v.shmid as u32;
        let name = files.get(&id).map(describe_file).unwrap_or_else(|| format!("file id {id}"));
        return if id == mm.exe_file_id { format!("{name} (exe)") } else { name };
    }
    if s & ANON_SHARED != 0 {
        return format!("shared anonymous (shmid {})", v.shmid);
    }
    String::new()
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
