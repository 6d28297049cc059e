//! A checkpoint directory: which image holds what, read on demand.
//!
//! ```text
//! inventory.img           image version, root task's namespace ids
//! pstree.img              one entry per process: pid, ppid, pgid, sid, threads
//! core-TID.img            per thread: registers, signals, task attributes
//! ids-PID.img             per process: ids of mm, files, fs, ... (shared objects)
//! mm-PID.img              per process: mm fields and VMAs
//! pagemap-PID.img         per process: which pages were saved, in order
//! pages-ID.img            raw page contents, in pagemap order
//! fs-PID.img              cwd and root (file ids)
//! fdinfo-FILESID.img      one fd table: fd number, flags, file id
//! files.img               every open file description, by id
//! ...                     pipes-data, sk-queues, tcp-stream-*, ghost files
//! stats-dump, stats-restore
//! ```

use crate::file::{ImageError, ImageReader};
use crate::kinds::{kind, ImageKind};
use crate::messages::*;
use std::path::{Path, PathBuf};

/// The images of one checkpoint.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub inventory: InventoryEntry,
    pub pstree: Vec<PstreeEntry>,
}

impl Checkpoint {
    /// Open a checkpoint directory: it must hold a readable inventory and
    /// process tree.
    pub fn open(dir: &Path) -> Result<Self, ImageError> {
        let meta = std::fs::metadata(dir).map_err(|e| ImageError::io(dir, &e))?;
        if !meta.is_dir() {
            return Err(ImageError::new(dir, None, "not a directory"));
        }
        let inv_path = dir.join("inventory.img");
        if !inv_path.exists() {
            return Err(ImageError::new(dir, None, "not a checkpoint directory (it has no inventory.img)"));
        }
        let mut r = ImageReader::open_kind(&inv_path, kind("INVENTORY"))?;
        let inventory: InventoryEntry = r.expect()?;
        if inventory.img_version != 2 {
            return Err(ImageError::new(
                &inv_path,
                None,
                format!("image version {} is not supported (only version 2, CRIU 1.x to 4.x)", inventory.img_version),
            ));
        }
        let pstree_path = dir.join("pstree.img");
        let pstree: Vec<PstreeEntry> = ImageReader::open_kind(&pstree_path, kind("PSTREE"))?.all()?;
        if pstree.is_empty() {
            return Err(ImageError::new(&pstree_path, None, "the process tree is empty"));
        }
        Ok(Checkpoint { dir: dir.to_path_buf(), inventory, pstree })
    }

    /// Path of an image whose name carries a number (`core-N.img`).
    pub fn path_n(&self, k: &ImageKind, n: u64) -> PathBuf {
        self.dir.join(k.file.replace('N', &n.to_string()))
    }

    /// Path of an image with a fixed name (`files.img`).
    pub fn path(&self, k: &ImageKind) -> PathBuf {
        self.dir.join(k.file)
    }

    pub fn open_n(&self, name: &str, n: u64) -> Result<ImageReader, ImageError> {
        let k = kind(name);
        ImageReader::open_kind(&self.path_n(k, n), k)
    }

    pub fn open_fixed(&self, name: &str) -> Result<ImageReader, ImageError> {
        let k = kind(name);
        ImageReader::open_kind(&self.path(k), k)
    }

    /// Like [`Self::open_fixed`], but a missing file means no entries.
    pub fn open_optional(&self, name: &str) -> Result<Option<ImageReader>, ImageError> {
        let k = kind(name);
        let p = self.path(k);
        if !p.exists() {
            return Ok(None);
        }
        ImageReader::open_kind(&p, k).map(Some)
    }

    pub fn root(&self) -> &PstreeEntry {
        &self.pstree[0]
    }

    pub fn core(&self, tid: u32) -> Result<CoreEntry, ImageError> {
        self.open_n("CORE", u64::from(tid))?.expect()
    }

    pub fn ids(&self, pid: u32) -> Result<TaskKobjIdsEntry, ImageError> {
        let k = kind("IDS");
        let p = self.path_n(k, u64::from(pid));
        if p.exists() {
            return ImageReader::open_kind(&p, k)?.expect();
        }
        // Old images kept the ids inside the core image.
        let core = self.core(pid)?;
        core.ids.ok_or_else(|| ImageError::new(&p, None, "image file is missing and the core image has no ids"))
    }

    pub fn mm(&self, pid: u32) -> Result<MmEntry, ImageError> {
        self.open_n("MM", u64::from(pid))?.expect()
    }

    /// The pagemap of a process: the id of its pages file and the entries.
    pub fn pagemap(&self, pid: u32) -> Result<(u32, Vec<PagemapEntry>), ImageError> {
        let mut r = self.open_n("PAGEMAP", u64::from(pid))?;
        let head: PagemapHead = r.expect()?;
        Ok((head.pages_id, r.all()?))
    }

    pub fn pages_path(&self, pages_id: u32) -> PathBuf {
        self.dir.join(format!("pages-{pages_id}.img"))
    }

    pub fn fs(&self, pid: u32) -> Result<FsEntry, ImageError> {
        self.open_n("FS", u64::from(pid))?.expect()
    }

    pub fn fdinfo(&self, files_id: u32) -> Result<Vec<FdinfoEntry>, ImageError> {
        self.open_n("FDINFO", u64::from(files_id))?.all()
    }

    /// Every open file description of the checkpoint.
    pub fn files(&self) -> Result<Vec<FileEntry>, ImageError> {
        match self.open_optional("FILES")? {
            Some(mut r) => r.all(),
            None => Ok(Vec::new()),
        }
    }

    pub fn stats(&self, which: &str) -> Result<Option<StatsEntry>, ImageError> {
        let p = self.dir.join(format!("stats-{which}"));
        if !p.exists() {
            return Ok(None);
        }
        ImageReader::open_kind(&p, kind("STATS"))?.next()
    }
}

/// A human name for an open file, as `crit x DIR fds` prints it.
pub fn describe_file(f: &FileEntry) -> String {
    if let Some(r) = &f.reg {
        return r.name.clone();
    }
    if let Some(p) = &f.pipe {
        return format!("pipe:[{}]", p.pipe_id);
    }
    if let Some(p) = &f.fifo {
        return format!("fifo:[{}]", p.pipe_id);
    }
    if let Some(s) = &f.usk {
        let name = String::from_utf8_lossy(&s.name).replace('\0', "@");
        let name = if name.is_empty() { String::new() } else { format!(" {name}") };
        return format!("socket:[{}] unix{name}", s.ino);
    }
    if let Some(s) = &f.isk {
        return format!("socket:[{}] inet {}", s.ino, inet_endpoints(s));
    }
    if let Some(m) = &f.memfd {
        return format!("memfd inode {}", m.inode_id);
    }
    if f.efd.is_some() {
        return "anon_inode:[eventfd]".into();
    }
    if f.epfd.is_some() {
        return "anon_inode:[eventpoll]".into();
    }
    if f.sgfd.is_some() {
        return "anon_inode:[signalfd]".into();
    }
    if f.tfd.is_some() {
        return "anon_inode:[timerfd]".into();
    }
    if f.ify.is_some() {
        return "anon_inode:inotify".into();
    }
    if let Some(t) = &f.tty {
        return format!("tty index {}", t.tty_info_id);
    }
    if f.pidfd.is_some() {
        return "anon_inode:[pidfd]".into();
    }
    String::from("?")
}

fn inet_endpoints(s: &InetSkEntry) -> String {
    let addr = |w: &[u32]| -> String {
        match w.len() {
            1 => std::net::Ipv4Addr::from(u32::from_be(w[0])).to_string(),
            4 => {
                let mut n: u128 = 0;
                for (i, x) in w.iter().enumerate() {
                    n |= u128::from(u32::from_be(*x)) << (32 * (3 - i));
                }
                format!("[{}]", std::net::Ipv6Addr::from(n))
            }
            _ => "?".into(),
        }
    };
    let proto = match s.proto {
        6 => "tcp",
        17 => "udp",
        _ => "ip",
    };
    format!("{proto} {}:{} -> {}:{}", addr(&s.src_addr), s.src_port, addr(&s.dst_addr), s.dst_port)
}

/// A file's type name as crit prints it.
pub fn fd_type_name(t: i32) -> &'static str {
    use crate::proto::ProtoEnum;
    FdTypes::name_of(t).unwrap_or("?")
}
