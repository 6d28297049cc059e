//! Memory: the mappings of a process, the mm fields, and page contents.
//!
//! Dump: mappings come from `/proc/PID/smaps` (with VmFlags for madvise
//! state); which pages to save from the `PAGEMAP_SCAN` ioctl (present or
//! swapped, not the shared zero page, not clean file pages), falling back to
//! reading `/proc/PID/pagemap`. Contents are read through `/proc/PID/mem`,
//! which also reads PROT_NONE and write-only memory and, unlike
//! process_vm_readv(2), does not pin pages (see `PagesOut::copy_from_task`). Shared anonymous memory is saved per
//! shmem object through `/proc/PID/map_files`, using SEEK_DATA to find the
//! pages it holds. Only what holds data is written, so a 2 GiB mapping with
//! 16 touched pages costs 16 pages.
//!
//! Restore: inside the new task, every inherited mapping but the vDSO
//! family is unmapped, the vDSO and vvar pages are moved where they were,
//! each mapping is recreated with mmap(2) at its address, and the saved
//! pages are read into place by preadv(2) from the pages image, run inside
//! the task: one copy, made by the kernel.

use crate::error::{Error, IoContext, Result};
use crate::inject::{Scratch, Session};
use crate::procfs::{self, Mapping};
use crate::state::files::{Courier, FileTable, OpenFiles};
use stasis_image::checkpoint::Checkpoint;
use stasis_image::file::ImageWriter;
use stasis_image::kinds::kind;
use stasis_image::messages::{MmEntry, PagemapEntry, PagemapHead, VmaEntry};
use stasis_sys::{task, Pid, PAGE_SIZE};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

// VmaEntry.status bits (CRIU's VMA_AREA_* / VMA_*).
pub const VMA_AREA_REGULAR: u32 = 1 << 0;
pub const VMA_AREA_STACK: u32 = 1 << 1;
pub const VMA_AREA_VSYSCALL: u32 = 1 << 2;
pub const VMA_AREA_VDSO: u32 = 1 << 3;
pub const VMA_AREA_HEAP: u32 = 1 << 5;
pub const VMA_FILE_PRIVATE: u32 = 1 << 6;
pub const VMA_FILE_SHARED: u32 = 1 << 7;
pub const VMA_ANON_SHARED: u32 = 1 << 8;
pub const VMA_ANON_PRIVATE: u32 = 1 << 9;
pub const VMA_AREA_SYSVIPC: u32 = 1 << 10;
pub const VMA_AREA_VVAR: u32 = 1 << 12;
pub const VMA_AREA_MEMFD: u32 = 1 << 14;

/// PagemapEntry.flags
pub const PE_PARENT: u32 = 1 << 0;
pub const PE_PRESENT: u32 = 1 << 2;

/// Mappings the kernel provides and places itself.
pub fn is_special(status: u32) -> bool {
    status & (VMA_AREA_VSYSCALL | VMA_AREA_VDSO | VMA_AREA_VVAR) != 0
}

/// madvise(2) advice that shows in VmFlags, as CRIU records it (1 << advice).
const MADV_FLAGS: &[(&str, i32)] = &[
    ("dd", libc::MADV_DONTDUMP),
    ("dc", libc::MADV_DONTFORK),
    ("hg", libc::MADV_HUGEPAGE),
    ("nh", libc::MADV_NOHUGEPAGE),
    ("mg", libc::MADV_MERGEABLE),
    ("wf", libc::MADV_WIPEONFORK),
];

fn prot_of(m: &Mapping) -> u32 {
    (if m.read { libc::PROT_READ } else { 0 } | if m.write { libc::PROT_WRITE } else { 0 } | if m.exec { libc::PROT_EXEC } else { 0 })
        as u32
}

/// Streams page contents into `pages-N.img`.
///
/// Reading the task and writing the file overlap: a writer thread takes
/// filled blocks while the next one is read. The file is written with
/// O_DIRECT where the filesystem allows it: going through the page cache
/// costs a fresh page of memory per page written, which on these machines
/// is several times slower than the disk (see docs/performance.md).
pub struct PagesOut {
    path: PathBuf,
    cur: Block,
    full: Option<std::sync::mpsc::SyncSender<Block>>,
    free: std::sync::mpsc::Receiver<Block>,
    writer: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    pub pages_written: u64,
}

/// Bytes per block, and blocks in flight: small and fixed, so stasis's
/// own memory stays low whatever the task's size.
const BLOCK: usize = 4 << 20;
const BLOCKS: usize = 3;

/// A page-aligned buffer (O_DIRECT needs aligned memory).
struct Block {
    raw: Vec<u8>,
    off: usize,
    len: usize,
}

impl Block {
    fn new() -> Block {
        let raw = vec![0u8; BLOCK + PAGE_SIZE as usize];
        let off = (PAGE_SIZE as usize - raw.as_ptr() as usize % PAGE_SIZE as usize) % PAGE_SIZE as usize;
        Block { raw, off, len: 0 }
    }
    fn space(&mut self) -> &mut [u8] {
        &mut self.raw[self.off + self.len..self.off + BLOCK]
    }
    fn data(&self) -> &[u8] {
        &self.raw[self.off..self.off + self.len]
    }
}

fn open_pages_file(path: &Path) -> Result<File> {
    let open = |direct: bool| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(stasis_image::file::IMAGE_MODE)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(path)
    };
    match open(true) {
        Ok(f) => Ok(f),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => open(false).ctx(|| format!("create {}", path.display())),
        Err(e) => Err(Error::io(format!("create {}", path.display()), e)),
    }
}

impl PagesOut {
    pub fn create(dir: &Path, id: u32) -> Result<PagesOut> {
        let path = dir.join(format!("pages-{id}.img"));
        let mut f = open_pages_file(&path)?;
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Block>(BLOCKS);
        let (free_tx, free_rx) = std::sync::mpsc::sync_channel::<Block>(BLOCKS);
        for _ in 0..BLOCKS - 1 {
            let _ = free_tx.send(Block::new());
        }
        let writer = std::thread::Builder::new()
            .name("pages-writer".into())
            .spawn(move || -> std::io::Result<()> {
                for mut b in full_rx {
                    f.write_all(b.data())?;
                    b.len = 0;
                    let _ = free_tx.send(b);
                }
                f.flush()
            })
            .ctx(|| "start the page writer thread".into())?;
        Ok(PagesOut { path, cur: Block::new(), full: Some(full_tx), free: free_rx, writer: Some(writer), pages_written: 0 })
    }

    /// Hand the current block to the writer and take a free one.
    fn submit(&mut self) -> Result<()> {
        let next = match self.free.recv() {
            Ok(b) => b,
            Err(_) => return self.writer_failed(),
        };
        let full = std::mem::replace(&mut self.cur, next);
        if self.full.as_ref().is_none_or(|tx| tx.send(full).is_err()) {
            return self.writer_failed();
        }
        Ok(())
    }

    fn writer_failed(&mut self) -> Result<()> {
        self.full = None;
        match self.writer.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => Err(Error::io(format!("write {}", self.path.display()), e)),
            _ => Err(Error::Unsupported(format!("the writer of {} stopped", self.path.display()))),
        }
    }

    /// Append `len` bytes produced by `fill`, which is given free space
    /// and returns how much of it it filled (all of it, or an error).
    fn append(&mut self, mut len: usize, fill: &mut dyn FnMut(&mut [u8]) -> Result<usize>) -> Result<()> {
        while len > 0 {
            if self.cur.space().is_empty() {
                self.submit()?;
            }
            let space = self.cur.space();
            let n = len.min(space.len());
            let got = fill(&mut space[..n])?;
            if got != n {
                return Err(Error::Unsupported("short read of task memory".into()));
            }
            self.cur.len += n;
            self.pages_written += n as u64 / PAGE_SIZE;
            len -= n;
        }
        Ok(())
    }

    /// Copy `[start, end)` of the task's memory into the image.
    fn copy_from_task(&mut self, pid: Pid, mem_file: &File, start: u64, end: u64) -> Result<()> {
        let mut at = start;
        self.append((end - start) as usize, &mut |buf: &mut [u8]| {
            // Through /proc/PID/mem, not process_vm_readv: the latter pins
            // the pages it reads, and pinning an anonymous page that is
            // shared copy-on-write with another process makes the kernel
            // unshare it (copy it), which would silently double the memory
            // of forked trees and lose the sharing we want to save.
            let n = mem_file.read_at(buf, at).ctx(|| format!("read /proc/{pid}/mem at {at:#x}"))?;
            if n != buf.len() {
                return Err(Error::Unsupported(format!("memory of {pid} at {:#x} could not be read", at + n as u64)));
            }
            at += n as u64;
            Ok(n)
        })
    }

    /// Copy `[start, end)` of a file into the image.
    fn copy_from_file(&mut self, f: &File, what: &Path, start: u64, end: u64) -> Result<()> {
        let mut at = start;
        self.append((end - start) as usize, &mut |buf: &mut [u8]| {
            f.read_exact_at(buf, at).ctx(|| format!("read {}", what.display()))?;
            at += buf.len() as u64;
            Ok(buf.len())
        })
    }

    pub fn finish(mut self) -> Result<()> {
        if self.cur.len > 0 {
            self.submit()?;
        }
        self.full = None;
        match self.writer.take().map(|h| h.join()) {
            Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(Error::io(format!("write {}", self.path.display()), e)),
            _ => Err(Error::Unsupported(format!("the writer of {} stopped", self.path.display()))),
        }
    }
}

/// Page runs of `[start, end)` worth saving: present or swapped, not the
/// zero page, and for file mappings not an unmodified file page.
fn pages_to_save(pid: Pid, pagemap: &File, start: u64, end: u64) -> Result<Vec<(u64, u64)>> {
    let want = task::PAGE_IS_PRESENT | task::PAGE_IS_SWAPPED;
    let report = task::PAGE_IS_FILE | task::PAGE_IS_PFNZERO;
    if let Some(runs) = task::pagemap_scan(pagemap.as_fd(), pid, start, end, want, report)? {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for r in runs {
            let swapped = r.categories & task::PAGE_IS_SWAPPED != 0;
            let present = r.categories & task::PAGE_IS_PRESENT != 0;
            let file = r.categories & task::PAGE_IS_FILE != 0;
            let zero = r.categories & task::PAGE_IS_PFNZERO != 0;
            if swapped || (present && !file && !zero) {
                match out.last_mut() {
                    Some(last) if last.1 == r.start => last.1 = r.end,
                    _ => out.push((r.start, r.end)),
                }
            }
        }
        return Ok(out);
    }
    // Before Linux 6.7: one 64-bit word per page.
    let mut out: Vec<(u64, u64)> = Vec::new();
    let npages = ((end - start) / PAGE_SIZE) as usize;
    let mut words = vec![0u8; npages.min(65536) * 8];
    let mut page = 0;
    while page < npages {
        let n = (npages - page).min(65536);
        let b = &mut words[..n * 8];
        pagemap.read_exact_at(b, (start / PAGE_SIZE + page as u64) * 8).ctx(|| format!("read /proc/{pid}/pagemap"))?;
        for (i, w) in b.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            let present = w >> 63 & 1 == 1;
            let swapped = w >> 62 & 1 == 1;
            let file = w >> 61 & 1 == 1;
            if swapped || (present && !file) {
                let a = start + (page + i) as u64 * PAGE_SIZE;
                match out.last_mut() {
                    Some(last) if last.1 == a => last.1 = a + PAGE_SIZE,
                    _ => out.push((a, a + PAGE_SIZE)),
                }
            }
        }
        page += n;
    }
    Ok(out)
}

/// What [`dump`] produces.
pub struct MmDump {
    pub mm: MmEntry,
    pub pagemap: Vec<PagemapEntry>,
    pub pages_scanned: u64,
    /// Pages shared with the parent since fork, saved by the parent.
    pub pages_inherited: u64,
    /// Shared anonymous objects: shmid -> (map_files path of one mapping,
    /// object size).
    pub shmem: BTreeMap<u64, (PathBuf, u64)>,
}

/// The mm fields the image needs besides the mappings.
pub struct MmFields {
    pub brk: u64,
    pub dumpable: i32,
    pub thp_disabled: bool,
    pub exe_file_id: u32,
}

/// Save the memory of `pid`: mappings into the returned `MmEntry`, pages
/// into `pages`.
pub fn dump(
    pid: Pid,
    maps: &[Mapping],
    fields: &MmFields,
    table: &mut FileTable,
    dir: &Path,
    pages: &mut PagesOut,
    parent: Option<(Pid, &MmEntry)>,
    progress: &mut crate::progress::Progress,
) -> Result<MmDump> {
    let st = procfs::stat(pid, pid)?;
    let mut mm = MmEntry {
        mm_start_code: st.field(26),
        mm_end_code: st.field(27),
        mm_start_stack: st.field(28),
        mm_start_data: st.field(45),
        mm_end_data: st.field(46),
        mm_start_brk: st.field(47),
        mm_brk: fields.brk,
        mm_arg_start: st.field(48),
        mm_arg_end: st.field(49),
        mm_env_start: st.field(50),
        mm_env_end: st.field(51),
        exe_file_id: fields.exe_file_id,
        mm_saved_auxv: procfs::auxv(pid)?,
        dumpable: Some(fields.dumpable),
        thp_disabled: Some(fields.thp_disabled),
        ..MmEntry::default()
    };
    let pagemap_path = format!("/proc/{pid}/pagemap");
    let pagemap = File::open(&pagemap_path).ctx(|| format!("open {pagemap_path}"))?;
    let mem_path = format!("/proc/{pid}/mem");
    let mem_file = File::open(&mem_path).ctx(|| format!("open {mem_path}"))?;
    let mut out =
        MmDump { mm: MmEntry::default(), pagemap: Vec::new(), pages_scanned: 0, pages_inherited: 0, shmem: BTreeMap::new() };
    // First what to save, then the copying, so progress knows the total.
    let mut plan: Vec<(&Mapping, Vec<(u64, u64)>, Vec<(u64, u64)>)> = Vec::new();
    let parent_pagemap = match parent {
        Some((ppid, _)) => Some(File::open(format!("/proc/{ppid}/pagemap")).ctx(|| format!("open /proc/{ppid}/pagemap"))?),
        None => None,
    };
    for m in maps {
        let vma = vma_entry(pid, m, &mm, table, dir, &mut out.shmem)?;
        let dump_pages = !is_special(vma.status) && vma.status & (VMA_FILE_SHARED | VMA_ANON_SHARED) == 0;
        if dump_pages {
            out.pages_scanned += m.len() / PAGE_SIZE;
            let runs = pages_to_save(pid, &pagemap, m.start, m.end)?;
            // Pages this process still shares with its parent since fork
            // (same physical page, same mapping) are saved once, by the
            // parent; restore forks this process from its restored parent,
            // so they stay shared in memory too.
            let inherited_vma = parent.is_some_and(|(_, pmm)| pmm.vmas.iter().any(|p| same_mapping(p, &vma)));
            let (own, inherited) = match (&parent_pagemap, inherited_vma) {
                (Some(ppm), true) => split_inherited(&pagemap, ppm, &runs)?,
                _ => (runs, Vec::new()),
            };
            plan.push((m, own, inherited));
        }
        mm.vmas.push(vma);
    }
    progress.total += plan.iter().flat_map(|(_, r, _)| r).map(|(s, e)| (e - s) / PAGE_SIZE).sum::<u64>();
    for (_m, own, inherited) in plan {
        // Entries in address order; inherited ones carry no data.
        let mut all: Vec<(u64, u64, bool)> = own.iter().map(|&(s, e)| (s, e, false)).chain(inherited.iter().map(|&(s, e)| (s, e, true))).collect();
        all.sort_unstable();
        for (s, e, from_parent) in all {
            if from_parent {
                out.pages_inherited += (e - s) / PAGE_SIZE;
            } else {
                pages.copy_from_task(pid, &mem_file, s, e)?;
                progress.add((e - s) / PAGE_SIZE);
            }
            out.pagemap.push(PagemapEntry {
                vaddr: s,
                compat_nr_pages: 0,
                in_parent: None,
                flags: Some(if from_parent { PE_PARENT } else { PE_PRESENT }),
                nr_pages: Some((e - s) / PAGE_SIZE),
            });
        }
    }
    out.mm = mm;
    Ok(out)
}

/// Whether two mappings are the same one (a child's, inherited from its
/// parent at fork): same range, backing, protection and flags. Only private
/// mappings can share pages copy-on-write.
pub fn same_mapping(a: &VmaEntry, b: &VmaEntry) -> bool {
    a.start == b.start
        && a.end == b.end
        && a.pgoff == b.pgoff
        && a.shmid == b.shmid
        && a.prot == b.prot
        && a.flags == b.flags
        && a.status == b.status
        && a.status & (VMA_ANON_PRIVATE | VMA_FILE_PRIVATE) != 0
        && !is_special(a.status)
}

/// Physical frame numbers of `[start, end)` from a pagemap (0 where a page
/// is not present).
fn frames(pagemap: &File, start: u64, end: u64) -> Result<Vec<u64>> {
    let n = ((end - start) / PAGE_SIZE) as usize;
    let mut b = vec![0u8; n * 8];
    pagemap.read_exact_at(&mut b, start / PAGE_SIZE * 8).ctx(|| "read pagemap".into())?;
    Ok(b.chunks_exact(8)
        .map(|c| {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            if w >> 63 & 1 == 1 {
                w & ((1 << 55) - 1)
            } else {
                0
            }
        })
        .collect())
}

/// Split runs of pages to save into those the task has of its own and
/// those that are physically the parent's page at the same address.
fn split_inherited(mine: &File, parents: &File, runs: &[(u64, u64)]) -> Result<(Vec<(u64, u64)>, Vec<(u64, u64)>)> {
    let mut own: Vec<(u64, u64)> = Vec::new();
    let mut inherited: Vec<(u64, u64)> = Vec::new();
    let push = |v: &mut Vec<(u64, u64)>, a: u64| match v.last_mut() {
        Some(last) if last.1 == a => last.1 = a + PAGE_SIZE,
        _ => v.push((a, a + PAGE_SIZE)),
    };
    for &(s, e) in runs {
        // In chunks, to keep the frame lists small.
        let mut at = s;
        while at < e {
            let end = e.min(at + (64 << 20));
            let a = frames(mine, at, end)?;
            let b = frames(parents, at, end)?;
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                let addr = at + i as u64 * PAGE_SIZE;
                if *x != 0 && x == y {
                    push(&mut inherited, addr);
                } else {
                    push(&mut own, addr);
                }
            }
            at = end;
        }
    }
    Ok((own, inherited))
}

fn vma_entry(
    pid: Pid,
    m: &Mapping,
    mm: &MmEntry,
    table: &mut FileTable,
    dir: &Path,
    shmem: &mut BTreeMap<u64, (PathBuf, u64)>,
) -> Result<VmaEntry> {
    let mut v = VmaEntry {
        start: m.start,
        end: m.end,
        pgoff: 0,
        shmid: 0,
        prot: prot_of(m),
        flags: 0,
        status: VMA_AREA_REGULAR,
        fd: -1,
        madv: None,
        fdflags: None,
    };
    let mut madv = 0u64;
    for (f, adv) in MADV_FLAGS {
        if m.has_flag(f) {
            madv |= 1 << adv;
        }
    }
    if madv != 0 {
        v.madv = Some(madv);
    }
    v.flags = if m.shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE } as u32;
    if m.has_flag("gd") {
        v.flags |= libc::MAP_GROWSDOWN as u32;
    }
    if m.has_flag("nr") {
        v.flags |= libc::MAP_NORESERVE as u32;
    }
    let anon = |v: &mut VmaEntry| {
        v.flags |= libc::MAP_ANONYMOUS as u32;
        v.status |= VMA_ANON_PRIVATE;
    };
    match m.name.as_str() {
        "[vsyscall]" => {
            v.flags |= libc::MAP_ANONYMOUS as u32;
            v.status = VMA_AREA_VSYSCALL | VMA_ANON_PRIVATE;
        }
        "[vdso]" => {
            anon(&mut v);
            v.status |= VMA_AREA_VDSO;
        }
        "[vvar]" | "[vvar_vclock]" => {
            anon(&mut v);
            v.status |= VMA_AREA_VVAR;
        }
        "[heap]" => {
            anon(&mut v);
            v.status |= VMA_AREA_HEAP;
        }
        name if m.inode == 0 || name.is_empty() || (name.starts_with('[') && !name.starts_with("[anon_shmem:")) => {
            if m.shared {
                return Err(Error::Unsupported(format!(
                    "mapping {:#x}-{:#x} ({name}) of {pid} is shared but has no backing object",
                    m.start, m.end
                )));
            }
            anon(&mut v);
            let _ = mm;
        }
        name if m.shared && (name.starts_with("/dev/zero") || name.starts_with("[anon_shmem:")) => {
            v.flags |= libc::MAP_ANONYMOUS as u32;
            v.status |= VMA_ANON_SHARED;
            v.shmid = m.inode;
            v.pgoff = m.offset;
            let link = PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end));
            let size = std::fs::metadata(&link).ctx(|| format!("stat {}", link.display()))?.len();
            shmem.entry(m.inode).or_insert((link, size));
        }
        name if name.starts_with("/SYSV") => {
            return Err(Error::Unsupported(format!("SysV shared memory ({name}) mapped by {pid} is not supported yet")));
        }
        name if name.starts_with("/memfd:") => {
            let link = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
            let f = File::open(&link).ctx(|| format!("open {link} ({name})"))?;
            let writable_shared = m.shared && m.has_flag("mw");
            let flags = if writable_shared { libc::O_RDWR } else { libc::O_RDONLY } as u32;
            v.shmid = u64::from(table.memfd_mapping(name, &f, &link, flags)?);
            v.pgoff = m.offset;
            v.fdflags = Some(flags);
            v.status |= VMA_AREA_MEMFD | if m.shared { VMA_FILE_SHARED } else { VMA_FILE_PRIVATE };
        }
        name => {
            let link = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
            let f = File::open(&link).ctx(|| format!("open {link} ({name})"))?;
            let md = f.metadata().ctx(|| format!("fstat {name}"))?;
            if !md.file_type().is_file() {
                return Err(Error::Unsupported(format!(
                    "mapping {:#x}-{:#x} of {pid} maps {name}, which is not a regular file",
                    m.start, m.end
                )));
            }
            let writable_shared = m.shared && m.has_flag("mw");
            let flags = if writable_shared { libc::O_RDWR } else { libc::O_RDONLY } as u32;
            v.shmid = u64::from(table.path_file(dir, name, &f, flags)?);
            v.pgoff = m.offset;
            v.fdflags = Some(flags);
            v.status |= if m.shared { VMA_FILE_SHARED } else { VMA_FILE_PRIVATE };
        }
    }
    Ok(v)
}

/// Save the pages of shared anonymous objects: `pagemap-shmem-ID.img`
/// and a pages file each.
pub fn dump_shmem(dir: &Path, shmem: &BTreeMap<u64, (PathBuf, u64)>, next_pages_id: &mut u32) -> Result<u64> {
    let mut written = 0;
    for (shmid, (link, size)) in shmem {
        let f = File::open(link).ctx(|| format!("open {}", link.display()))?;
        let id = *next_pages_id;
        *next_pages_id += 1;
        let mut pages = PagesOut::create(dir, id)?;
        let mut w = ImageWriter::create(&dir.join(format!("pagemap-shmem-{shmid}.img")), kind("PAGEMAP"))?;
        w.put(&PagemapHead { pages_id: id })?;
        for (s, e) in data_ranges(&f, *size)? {
            pages.copy_from_file(&f, link, s, e)?;
            w.put(&PagemapEntry {
                vaddr: s,
                compat_nr_pages: 0,
                in_parent: None,
                flags: Some(PE_PRESENT),
                nr_pages: Some((e - s) / PAGE_SIZE),
            })?;
        }
        written += pages.pages_written;
        pages.finish()?;
        w.finish()?;
    }
    Ok(written)
}

/// Page-aligned ranges of a file that hold data (SEEK_DATA/SEEK_HOLE).
fn data_ranges(f: &File, size: u64) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut at = 0u64;
    while at < size {
        let Some(d) = seek(f.as_fd(), at, libc::SEEK_DATA)? else { break };
        let h = seek(f.as_fd(), d, libc::SEEK_HOLE)?.unwrap_or(size).min(size);
        let s = d / PAGE_SIZE * PAGE_SIZE;
        let e = h.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        out.push((s, e.min(size.div_ceil(PAGE_SIZE) * PAGE_SIZE)));
        at = e;
    }
    Ok(out)
}

fn seek(fd: std::os::fd::BorrowedFd<'_>, off: u64, whence: i32) -> Result<Option<u64>> {
    match stasis_sys::task::lseek(fd, off, whence) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

// --- restore ------------------------------------------------------------

/// One range of address space that must stay free or is in use.
pub fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// A free hole of `size` bytes away from all `busy` ranges, searched
/// downwards from below the usual mmap area.
pub fn find_hole(busy: &[(u64, u64)], size: u64) -> Option<u64> {
    let mut candidates: Vec<u64> = vec![0x7e00_0000_0000, 0x6000_0000_0000, 0x4000_0000_0000, 0x1000_0000_0000];
    candidates.extend(busy.iter().filter_map(|r| r.0.checked_sub(size + 16 * PAGE_SIZE)));
    candidates.into_iter().find(|&c| c >= 0x10000 && !busy.iter().any(|&r| overlaps((c, c + size), r)))
}

/// Shared anonymous objects restored so far: shmid -> (pid, start, end) of
/// a mapping of it, whose `/proc/PID/map_files` entry later processes map.
#[derive(Default)]
pub struct ShmemRegistry {
    map: BTreeMap<u64, (Pid, u64, u64)>,
}

/// Restore the address space of the task in session `s`.
#[allow(clippy::too_many_arguments)]
pub fn restore(
    s: &mut Session<'_>,
    scratch: &Scratch,
    keep: (u64, u64),
    courier: &Courier,
    cp: &Checkpoint,
    files: &mut OpenFiles,
    mm: &MmEntry,
    pid: u32,
    shmem: &mut ShmemRegistry,
    parent: Option<&MmEntry>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let puppet = s.pid;
    let current = procfs::smaps(puppet)?;
    // Mappings this task has from its (restored) parent, to keep with the
    // pages it still shares with it.
    let kept: Vec<&VmaEntry> =
        mm.vmas.iter().filter(|v| parent.is_some_and(|p| p.vmas.iter().any(|pv| same_mapping(pv, v)))).collect();
    let is_kept = |v: &VmaEntry| kept.iter().any(|k| k.start == v.start && k.end == v.end);
    // 1. Drop everything else it inherited.
    let mut keep_ranges: Vec<(u64, u64)> = kept.iter().map(|v| (v.start, v.end)).collect();
    keep_ranges.push(keep);
    for m in &current {
        if matches!(m.name.as_str(), "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]") {
            continue;
        }
        for (a, b) in subtract((m.start, m.end), &keep_ranges) {
            s.call("munmap", libc::SYS_munmap, &[a, b - a])?;
        }
    }
    // 2. Put the vDSO family where the image has it.
    move_vdso(s, &current, mm, keep)?;
    // 3. Recreate the mappings.
    let (pages_id, entries) = cp.pagemap(pid)?;
    let has_pages = |v: &VmaEntry| entries.iter().any(|e| overlaps((e.vaddr, e.vaddr + nr_pages(e) * PAGE_SIZE), (v.start, v.end)));
    let has_own_pages = |v: &VmaEntry| {
        entries.iter().any(|e| !is_parent(e) && overlaps((e.vaddr, e.vaddr + nr_pages(e) * PAGE_SIZE), (v.start, v.end)))
    };
    let mut shm_objects: BTreeMap<u64, (u64, u64)> = BTreeMap::new(); // shmid -> (temp addr, size)
    let mut busy: Vec<(u64, u64)> = mm.vmas.iter().map(|v| (v.start, v.end)).collect();
    busy.push(keep);
    for v in &mm.vmas {
        if is_special(v.status) {
            continue;
        }
        if is_kept(v) {
            // Inherited: pages it has not got any more go; pages of its own
            // are written below (into a writable mapping).
            let listed: Vec<(u64, u64)> =
                entries.iter().map(|e| (e.vaddr, e.vaddr + nr_pages(e) * PAGE_SIZE)).filter(|r| overlaps(*r, (v.start, v.end))).collect();
            for (a, b) in subtract((v.start, v.end), &listed) {
                s.call("madvise", libc::SYS_madvise, &[a, b - a, libc::MADV_DONTNEED as u64])?;
            }
            if has_own_pages(v) && v.prot & libc::PROT_WRITE as u32 == 0 {
                s.call("mprotect", libc::SYS_mprotect, &[v.start, v.end - v.start, u64::from(v.prot) | libc::PROT_WRITE as u64])?;
            }
            continue;
        }
        if entries.iter().any(|e| is_parent(e) && overlaps((e.vaddr, e.vaddr + nr_pages(e) * PAGE_SIZE), (v.start, v.end))) {
            return Err(Error::Unsupported(format!(
                "pages at {:#x} are in a parent image or parent process that is not available (incremental checkpoints are not supported)",
                v.start
            )));
        }
        let len = v.end - v.start;
        let fill = has_pages(v);
        let prot = u64::from(v.prot) | if fill { libc::PROT_WRITE as u64 } else { 0 };
        let extra = u64::from(v.flags) & (libc::MAP_GROWSDOWN | libc::MAP_NORESERVE) as u64;
        if v.status & VMA_ANON_SHARED != 0 {
            let path = match shmem.map.get(&v.shmid) {
                Some(&(owner, s0, e0)) => format!("/proc/{owner}/map_files/{s0:x}-{e0:x}"),
                None => {
                    let (tmp, size) = match shm_objects.get(&v.shmid) {
                        Some(o) => *o,
                        None => {
                            let o = make_shmem(s, scratch, cp, v.shmid, mm, &busy)?;
                            busy.push((o.0, o.0 + o.1));
                            shm_objects.insert(v.shmid, o);
                            o
                        }
                    };
                    format!("/proc/{puppet}/map_files/{:x}-{:x}", tmp, tmp + size)
                }
            };
            let at = crate::state::files::write_cstr(s, scratch, 0, &path)?;
            let fd = s.call("open map_files", libc::SYS_openat, &[libc::AT_FDCWD as u64, at.0, libc::O_RDWR as u64, 0])?;
            let r = s.call(
                "mmap shared",
                libc::SYS_mmap,
                &[v.start, len, u64::from(v.prot), (libc::MAP_SHARED | libc::MAP_FIXED) as u64 | extra, fd, v.pgoff],
            );
            s.call("close", libc::SYS_close, &[fd])?;
            r?;
        } else if v.status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED) != 0 {
            let flags = v.fdflags.map(|f| f as i32).unwrap_or(if v.status & VMA_FILE_SHARED != 0 && v.prot & 2 != 0 {
                libc::O_RDWR
            } else {
                libc::O_RDONLY
            });
            let ours = files.open_with(cp, v.shmid as u32, flags)?;
            use std::os::fd::AsRawFd;
            let fd = courier.pull(s, ours.as_raw_fd())?;
            let mflags = if v.status & VMA_FILE_SHARED != 0 { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
            let r = s.call(
                "mmap file",
                libc::SYS_mmap,
                &[v.start, len, prot, (mflags | libc::MAP_FIXED) as u64 | extra, fd.0 as u64, v.pgoff],
            );
            s.call("close", libc::SYS_close, &[fd.0 as u64])?;
            r.map_err(|e| Error::Unsupported(format!("cannot map file {} at {:#x}: {}", v.shmid, v.start, crate::error::detail(&e))))?;
        } else {
            s.call(
                "mmap anonymous",
                libc::SYS_mmap,
                &[v.start, len, prot, (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED) as u64 | extra, u64::MAX, 0],
            )?;
        }
    }
    // 4. Fill in the saved pages.
    let skip: Vec<(u64, u64)> = mm.vmas.iter().filter(|v| is_special(v.status)).map(|v| (v.start, v.end)).collect();
    let restored = fill(s, scratch, courier, &cp.pages_path(pages_id), &entries, &skip, 0, progress)?;
    for (&shmid, &(tmp, size)) in &shm_objects {
        s.call("munmap", libc::SYS_munmap, &[tmp, size])?;
        // Later processes share the object through one of our mappings.
        if let Some(v) = mm.vmas.iter().find(|v| v.shmid == shmid && v.status & VMA_ANON_SHARED != 0) {
            shmem.map.insert(shmid, (puppet, v.start, v.end));
        }
    }
    // 5. Final protections and advice.
    for v in &mm.vmas {
        if is_special(v.status) {
            continue;
        }
        let wrote = if is_kept(v) { has_own_pages(v) } else { has_pages(v) };
        if wrote && v.prot & libc::PROT_WRITE as u32 == 0 && v.status & VMA_ANON_SHARED == 0 {
            s.call("mprotect", libc::SYS_mprotect, &[v.start, v.end - v.start, u64::from(v.prot)])?;
        }
        if let Some(madv) = v.madv {
            for bit in 0..64 {
                if madv & (1 << bit) != 0 {
                    s.call("madvise", libc::SYS_madvise, &[v.start, v.end - v.start, bit])?;
                }
            }
        }
    }
    Ok(restored)
}

/// A page that is the parent's (PE_PARENT): shared since fork, saved by the
/// parent process. (CRIU uses the flag for pages in a parent image of an
/// incremental dump; stasis writes no such dumps, and refuses them when a
/// page is not in a mapping inherited from the parent process.)
fn is_parent(e: &PagemapEntry) -> bool {
    e.flags.unwrap_or(PE_PRESENT) & PE_PARENT != 0 || e.in_parent == Some(true)
}

/// `r` minus the ranges in `holes`.
fn subtract(r: (u64, u64), holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = vec![r];
    for &h in holes {
        out = out
            .into_iter()
            .flat_map(|(a, b)| {
                if !overlaps((a, b), h) {
                    return vec![(a, b)];
                }
                let mut v = Vec::new();
                if a < h.0 {
                    v.push((a, h.0));
                }
                if h.1 < b {
                    v.push((h.1, b));
                }
                v
            })
            .collect();
    }
    out
}

fn nr_pages(e: &PagemapEntry) -> u64 {
    e.nr_pages.unwrap_or(u64::from(e.compat_nr_pages))
}

/// Create a shared anonymous object at a free address, filled from its
/// pagemap. Returns (address, size).
fn make_shmem(s: &mut Session<'_>, scratch: &Scratch, cp: &Checkpoint, shmid: u64, mm: &MmEntry, busy: &[(u64, u64)]) -> Result<(u64, u64)> {
    let size = mm
        .vmas
        .iter()
        .filter(|v| v.shmid == shmid && v.status & VMA_ANON_SHARED != 0)
        .map(|v| v.pgoff + (v.end - v.start))
        .max()
        .unwrap_or(0);
    let at = find_hole(busy, size).ok_or_else(|| Error::Unsupported("no free address space for shared memory".into()))?;
    s.call(
        "mmap shared anonymous",
        libc::SYS_mmap,
        &[at, size, (libc::PROT_READ | libc::PROT_WRITE) as u64, (libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64, u64::MAX, 0],
    )?;
    let p = cp.dir.join(format!("pagemap-shmem-{shmid}.img"));
    if p.exists() {
        let mut r = stasis_image::file::ImageReader::open_kind(&p, kind("PAGEMAP"))?;
        let head: PagemapHead = r.expect()?;
        let entries: Vec<PagemapEntry> = r.all()?;
        for e in &entries {
            if e.vaddr + nr_pages(e) * PAGE_SIZE > size {
                return Err(Error::BadImage(format!("{}: pages past the end of the object ({size} bytes)", p.display())));
            }
        }
        let courier_less = DirectFill { pages: cp.pages_path(head.pages_id) };
        courier_less.fill(s, scratch, &entries, at)?;
    }
    Ok((at, size))
}

/// The content of a shared memory object (or memfd) from its
/// `pagemap-shmem-ID.img`: (offset, bytes) runs.
pub fn shmem_contents(cp: &Checkpoint, shmid: u64) -> Result<Vec<(u64, Vec<u8>)>> {
    let p = cp.dir.join(format!("pagemap-shmem-{shmid}.img"));
    if !p.exists() {
        return Ok(Vec::new());
    }
    let mut r = stasis_image::file::ImageReader::open_kind(&p, kind("PAGEMAP"))?;
    let head: PagemapHead = r.expect()?;
    let entries: Vec<PagemapEntry> = r.all()?;
    let pages = cp.pages_path(head.pages_id);
    let f = File::open(&pages).ctx(|| format!("open {}", pages.display()))?;
    let mut out = Vec::new();
    let mut off = 0u64;
    for e in &entries {
        let len = nr_pages(e) * PAGE_SIZE;
        if len > 1 << 32 {
            return Err(Error::BadImage(format!("{}: absurd entry of {len} bytes", p.display())));
        }
        let mut b = vec![0u8; len as usize];
        f.read_exact_at(&mut b, off).ctx(|| format!("read {}", pages.display()))?;
        out.push((e.vaddr, b));
        off += len;
    }
    Ok(out)
}

/// Fill shared memory from a pages file opened inside the task by path.
struct DirectFill {
    pages: PathBuf,
}

impl DirectFill {
    fn fill(&self, s: &mut Session<'_>, scratch: &Scratch, entries: &[PagemapEntry], base: u64) -> Result<()> {
        let path = self.pages.to_string_lossy().into_owned();
        let at = crate::state::files::write_cstr(s, scratch, 0, &path)?;
        let fd = s.call("open pages", libc::SYS_openat, &[libc::AT_FDCWD as u64, at.0, libc::O_RDONLY as u64, 0])?;
        let r = preadv_all(s, scratch, fd, entries, &[], base, None, &mut |_| {});
        s.call("close", libc::SYS_close, &[fd])?;
        r.map(drop)
    }
}

/// Read the pages of `entries` (in file order) from the pages file into
/// the task. Entries inside `skip` ranges are stepped over in the file.
#[allow(clippy::too_many_arguments)]
fn fill(
    s: &mut Session<'_>,
    scratch: &Scratch,
    courier: &Courier,
    pages: &Path,
    entries: &[PagemapEntry],
    skip: &[(u64, u64)],
    base: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    if entries.iter().all(is_parent) {
        return Ok(0);
    }
    let f = File::open(pages).ctx(|| format!("open {}", pages.display()))?;
    let need: u64 = entries.iter().filter(|e| !is_parent(e)).map(|e| nr_pages(e) * PAGE_SIZE).sum();
    let have = f.metadata().ctx(|| format!("stat {}", pages.display()))?.len();
    if have < need {
        return Err(Error::BadImage(format!("{}: holds {have} bytes, the pagemap needs {need}", pages.display())));
    }
    // An image in the page cache is copied from there; one on disk is read
    // with O_DIRECT straight into the task's pages, which skips filling the
    // page cache (a fresh page of memory per page, the slow part here).
    let cached = match std::env::var("STASIS_PAGES_READ").as_deref() {
        Ok("direct") => false,
        Ok("buffered") => true,
        _ => stasis_sys::fd::cached_pages(f.as_fd(), have).is_some_and(|(c, n)| c * 10 >= n * 9),
    };
    let f = if cached || have < (16 << 20) {
        f
    } else {
        match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(pages) {
            Ok(d) => d,
            Err(_) => f,
        }
    };
    tracing::debug!(path = %pages.display(), cached, "reading pages");
    use std::os::fd::AsRawFd;
    let fd = courier.pull(s, f.as_raw_fd())?;
    // Reading from the cache, drop what was read as we go: the memory it
    // frees is what the task's next pages are made of, and reused memory
    // is much cheaper to hand out than memory the machine never touched.
    let evict = cached.then(|| f.as_fd());
    let r = preadv_all(s, scratch, fd.0 as u64, entries, skip, base, evict, progress);
    s.call("close", libc::SYS_close, &[fd.0 as u64])?;
    r
}

/// The largest single read: the kernel moves at most about 2 GiB per call.
const MAX_IOV: u64 = 1 << 30;
/// Read size between cache evictions.
const EVICT_STEP: u64 = 64 << 20;

#[allow(clippy::too_many_arguments)]
fn preadv_all(
    s: &mut Session<'_>,
    scratch: &Scratch,
    fd: u64,
    entries: &[PagemapEntry],
    skip: &[(u64, u64)],
    base: u64,
    evict: Option<std::os::fd::BorrowedFd<'_>>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    // Smaller calls when evicting, so freed cache is reused soon.
    let max_call = if evict.is_some() { EVICT_STEP } else { MAX_IOV };
    // (file offset, address, length) runs, split to bounded sizes.
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    let mut off = 0u64;
    for e in entries {
        let len = nr_pages(e) * PAGE_SIZE;
        if is_parent(e) {
            // Kept from the parent process: nothing in this pages file.
            continue;
        }
        let addr = base + e.vaddr;
        if !skip.iter().any(|&r| overlaps((addr, addr + len), r)) {
            let mut o = 0;
            while o < len {
                let n = (len - o).min(max_call);
                runs.push((off + o, addr + o, n));
                o += n;
            }
        }
        off += len;
    }
    let iov_cap = ((scratch.len / 2) / 16).min(1024) as usize;
    let iov_at = scratch.at(scratch.len / 2);
    let mut done = 0u64;
    let mut i = 0;
    while i < runs.len() {
        // A batch: consecutive in the file, bounded in count and bytes.
        let start_off = runs[i].0;
        let mut j = i;
        let mut bytes = 0u64;
        while j < runs.len() && j - i < iov_cap && runs[j].0 == start_off + bytes && bytes + runs[j].2 <= max_call {
            bytes += runs[j].2;
            j += 1;
        }
        let iov: Vec<u8> = runs[i..j].iter().flat_map(|r| r.1.to_le_bytes().into_iter().chain(r.2.to_le_bytes())).collect();
        s.write(iov_at, &iov)?;
        let n = s.call("preadv", libc::SYS_preadv, &[fd, iov_at.0, (j - i) as u64, start_off, 0])?;
        if n == 0 {
            return Err(Error::BadImage("pages image ends early".into()));
        }
        if n < bytes {
            // Short read: keep going from where it stopped.
            let mut left = n;
            while left >= runs[i].2 {
                left -= runs[i].2;
                i += 1;
            }
            runs[i].0 += left;
            runs[i].1 += left;
            runs[i].2 -= left;
        } else {
            i = j;
        }
        done += n;
        if let Some(f) = evict {
            stasis_sys::fd::drop_cache(f, start_off, n);
        }
        progress(n / PAGE_SIZE);
    }
    Ok(done / PAGE_SIZE)
}

/// Move the vDSO, vvar and vvar_vclock mappings to the image's addresses.
/// They must have the same layout as on the dumping kernel.
fn move_vdso(s: &mut Session<'_>, current: &[Mapping], mm: &MmEntry, keep: (u64, u64)) -> Result<()> {
    let ours: Vec<&Mapping> =
        current.iter().filter(|m| matches!(m.name.as_str(), "[vdso]" | "[vvar]" | "[vvar_vclock]")).collect();
    let theirs: Vec<&VmaEntry> = mm.vmas.iter().filter(|v| v.status & (VMA_AREA_VDSO | VMA_AREA_VVAR) != 0).collect();
    let our_vdso = ours.iter().find(|m| m.name == "[vdso]");
    let their_vdso = theirs.iter().find(|v| v.status & VMA_AREA_VDSO != 0);
    let (Some(ov), Some(tv)) = (our_vdso, their_vdso) else {
        if theirs.is_empty() {
            // The task had unmapped its vDSO: do the same.
            for m in &ours {
                s.call("munmap vdso", libc::SYS_munmap, &[m.start, m.len()])?;
            }
            return Ok(());
        }
        return Err(Error::Unsupported("this kernel provides no vDSO to restore".into()));
    };
    if ov.len() != tv.end - tv.start {
        return Err(Error::Unsupported(format!(
            "the vDSO here is {} bytes, the checkpoint's {}: restoring on a different kernel is not supported yet",
            ov.len(),
            tv.end - tv.start
        )));
    }
    let our_lo = ours.iter().map(|m| m.start).min().unwrap_or(ov.start);
    let our_hi = ours.iter().map(|m| m.end).max().unwrap_or(ov.end);
    let their_lo = theirs.iter().map(|v| v.start).min().unwrap_or(tv.start);
    let their_hi = theirs.iter().map(|v| v.end).max().unwrap_or(tv.end);
    if our_hi - our_lo != their_hi - their_lo || ov.start - our_lo != tv.start - their_lo {
        return Err(Error::Unsupported(
            "the vDSO and vvar layout differs from the checkpoint's: restoring on a different kernel is not supported yet".into(),
        ));
    }
    if our_lo == their_lo {
        return Ok(());
    }
    let size = our_hi - our_lo;
    // Via a free spot, in case the old and new places overlap.
    let mut busy: Vec<(u64, u64)> = mm.vmas.iter().map(|v| (v.start, v.end)).collect();
    busy.push(keep);
    busy.push((our_lo, our_hi));
    let tmp = find_hole(&busy, size).ok_or_else(|| Error::Unsupported("no free address space to move the vDSO".into()))?;
    for (from, to) in [(our_lo, tmp), (tmp, their_lo)] {
        for m in &ours {
            let old = from + (m.start - our_lo);
            let new = to + (m.start - our_lo);
            s.call(
                "mremap vdso",
                libc::SYS_mremap,
                &[old, m.len(), m.len(), (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) as u64, new],
            )?;
        }
    }
    Ok(())
}

/// `struct prctl_mm_map` for PR_SET_MM_MAP.
pub fn mm_map_bytes(mm: &MmEntry, auxv_addr: u64, auxv_len: u32, exe_fd: i32) -> Vec<u8> {
    let mut b = Vec::with_capacity(104);
    for w in [
        mm.mm_start_code,
        mm.mm_end_code,
        mm.mm_start_data,
        mm.mm_end_data,
        mm.mm_start_brk,
        mm.mm_brk,
        mm.mm_start_stack,
        mm.mm_arg_start,
        mm.mm_arg_end,
        mm.mm_env_start,
        mm.mm_env_end,
        auxv_addr,
    ] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    b.extend_from_slice(&auxv_len.to_le_bytes());
    b.extend_from_slice(&(exe_fd as u32).to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_avoid_busy_ranges() {
        let busy = [(0x7e00_0000_0000, 0x7e00_1000_0000), (0x5000, 0x6000)];
        let h = find_hole(&busy, 0x10_0000).unwrap();
        assert!(!busy.iter().any(|&b| overlaps((h, h + 0x10_0000), b)));
    }

    #[test]
    fn subtracting_ranges() {
        assert_eq!(subtract((0, 100), &[(10, 20), (50, 60)]), vec![(0, 10), (20, 50), (60, 100)]);
        assert_eq!(subtract((0, 100), &[(0, 100)]), vec![]);
        assert_eq!(subtract((10, 20), &[(0, 5)]), vec![(10, 20)]);
    }

    #[test]
    fn overlap_is_half_open() {
        assert!(overlaps((0, 10), (9, 20)));
        assert!(!overlaps((0, 10), (10, 20)));
    }
}
