//! Open files: the fd table, and files reached by path (regular files,
//! directories, device nodes), including files deleted while open.
//!
//! Dump: each fd is duplicated into stasis with pidfd_getfd(2), which gives
//! fstat and contents without touching the task; fds sharing one open file
//! description are found with kcmp(2) and get one file id, as in CRIU.
//! Restore: stasis opens each description once, and every task that has it
//! pulls it into the fd number it had with pidfd_getfd(2) and dup3(2) run
//! inside it, so sharing and offsets come back as they were.
//!
//! Kernel interfaces: `/proc/PID/fd`, `/proc/PID/fdinfo/N`,
//! `/proc/PID/map_files`, pidfd_getfd(2), kcmp(2), fstat(2).

use crate::error::{Error, IoContext, Result};
use crate::inject::{Scratch, Session};
use crate::procfs;
use crate::state::{anon, sockets};
use stasis_image::checkpoint::Checkpoint;
use stasis_image::file::{ImageReader, ImageWriter};
use stasis_image::kinds::kind;
use stasis_image::messages::*;
use stasis_sys::{task, Pid, RemoteFd};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const DELETED: &str = " (deleted)";
const O_CLOEXEC: u32 = libc::O_CLOEXEC as u32;

/// Largest deleted-file content a dump saves by default (CRIU's default).
pub const DEFAULT_GHOST_LIMIT: u64 = 1 << 20;

fn fown() -> FownEntry {
    FownEntry::default()
}

/// Files of a dump, by id, plus the remaps for deleted files.
#[derive(Default)]
pub struct FileTable {
    /// `--shell-job`: terminals are the shell's, reconnected at restore.
    pub shell_job: bool,
    pub entries: Vec<FileEntry>,
    pub remaps: Vec<RemapFilePathEntry>,
    next_id: u32,
    /// (dev, ino, flags) of files recorded for memory mappings and
    /// directories, which need no identity of their own.
    by_inode: HashMap<(u64, u64, u32), u32>,
    pub ghost_limit: u64,
    /// Buffered contents of each pipe, by pipe inode.
    pipes: BTreeMap<u32, (PipeDataEntry, Vec<u8>)>,
    /// Same for FIFOs (named pipes), saved in fifo-data.img.
    fifos: BTreeMap<u32, (PipeDataEntry, Vec<u8>)>,
    /// Open descriptions seen so far, across all processes, to find shared
    /// ones: (pid, fd, dev, ino, id).
    descriptions: Vec<(Pid, i32, u64, u64, u32)>,
    /// `--tcp-established`, `--ext-unix-sk`.
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub unix: sockets::UnixDump,
    pub inet: sockets::InetDump,
    /// Socket queues for sk-queues.img: (entry, data).
    pub sk_queues: Vec<(SkPacketEntry, Vec<u8>)>,
    /// memfd inodes by inode number: (entry, a path that opens it).
    pub memfds: BTreeMap<u64, (MemfdInodeEntry, PathBuf)>,
    /// Ptys whose master is in the tree.
    pub ptys: super::tty::PtyDump,
    /// `--file-locks`, and the locks found: (description id, lock).
    pub file_locks: bool,
    pub locks: Vec<(u32, FileLockEntry)>,
}

impl FileTable {
    pub fn new(ghost_limit: u64) -> Self {
        FileTable { next_id: 1, ghost_limit, ..Default::default() }
    }

    fn alloc(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn get(&self, id: u32) -> Option<&FileEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// A file reached by path (a mapped file, the exe, cwd, root). Files of
    /// the same inode opened the same way share an entry.
    pub fn path_file(&mut self, dir: &Path, link: &str, f: &File, flags: u32) -> Result<u32> {
        let md = f.metadata().ctx(|| format!("fstat {link}"))?;
        let key = (md.dev(), md.ino(), flags);
        if let Some(&id) = self.by_inode.get(&key) {
            return Ok(id);
        }
        let id = self.alloc();
        self.by_inode.insert(key, id);
        self.add_reg(dir, id, link, f, &md, flags, 0)?;
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_reg(&mut self, dir: &Path, id: u32, link: &str, f: &File, md: &std::fs::Metadata, flags: u32, pos: u64) -> Result<()> {
        let (name, deleted) = match link.strip_suffix(DELETED) {
            Some(n) if md.nlink() == 0 => (n.to_string(), true),
            _ => (link.to_string(), false),
        };
        let is_reg = md.file_type().is_file();
        let reg = RegFileEntry {
            id,
            flags,
            pos,
            fown: fown(),
            name,
            size: is_reg.then_some(md.size()),
            mode: Some(md.mode()),
            ..RegFileEntry::default()
        };
        self.entries.push(FileEntry { r#type: FdTypes::REG, id, reg: Some(reg), ..FileEntry::default() });
        if deleted {
            self.save_ghost(dir, id, f, md)?;
        }
        Ok(())
    }

    /// Save the contents of a deleted file: `ghost-file-N.img`, and a
    /// remap telling restore to recreate it.
    fn save_ghost(&mut self, dir: &Path, id: u32, f: &File, md: &std::fs::Metadata) -> Result<()> {
        let name = &self.get(id).and_then(|e| e.reg.as_ref()).map(|r| r.name.clone()).unwrap_or_default();
        if !md.file_type().is_file() {
            return Err(Error::Unsupported(format!("{name} was deleted while open and is not a regular file")));
        }
        if md.size() > self.ghost_limit {
            return Err(Error::Unsupported(format!(
                "{name} was deleted while open and holds {} bytes, more than the ghost file limit of {} (raise it with --ghost-limit)",
                md.size(),
                self.ghost_limit
            )));
        }
        let remap_id = self.alloc();
        let g = GhostFileEntry {
            uid: md.uid(),
            gid: md.gid(),
            mode: md.mode(),
            dev: None,
            ino: None,
            size: Some(md.size()),
            atim: Some(Timeval { tv_sec: md.atime() as u64, tv_usec: (md.atime_nsec() / 1000) as u64 }),
            mtim: Some(Timeval { tv_sec: md.mtime() as u64, tv_usec: (md.mtime_nsec() / 1000) as u64 }),
            ..GhostFileEntry::default()
        };
        let path = dir.join(format!("ghost-file-{remap_id}.img"));
        let mut w = ImageWriter::create(&path, kind("GHOST_FILE"))?;
        w.put(&g)?;
        let mut data = Vec::with_capacity(md.size() as usize);
        let mut dup = f.try_clone().ctx(|| format!("dup of {name}"))?;
        dup.seek(SeekFrom::Start(0)).ctx(|| format!("seek in {name}"))?;
        dup.take(md.size()).read_to_end(&mut data).ctx(|| format!("read deleted file {name}"))?;
        w.raw(&data)?;
        w.finish()?;
        self.remaps.push(RemapFilePathEntry { orig_id: id, remap_id, remap_type: Some(RemapType::GHOST) });
        Ok(())
    }

    /// The memfd inode behind a file, registered once: its id.
    pub fn memfd_inode(&mut self, link: &str, md: &std::fs::Metadata, f: &File, opener: &str) -> Result<u32> {
        if let Some((e, _)) = self.memfds.get(&md.ino()) {
            return Ok(e.inode_id as u32);
        }
        let name = link.trim_start_matches('/').trim_end_matches(DELETED).to_string();
        let inode_id = self.memfds.len() as u64 + 1;
        let e = MemfdInodeEntry {
            name,
            uid: md.uid(),
            gid: md.gid(),
            size: md.size(),
            shmid: md.ino() as u32,
            seals: anon::memfd_seals(f),
            inode_id,
            hugetlb_flag: None,
            mode: Some(md.mode()),
        };
        self.memfds.insert(md.ino(), (e, PathBuf::from(opener)));
        Ok(inode_id as u32)
    }

    /// A mapped memfd: a MEMFD file entry for the mapping.
    pub fn memfd_mapping(&mut self, link: &str, f: &File, opener: &str, flags: u32) -> Result<u32> {
        let md = f.metadata().ctx(|| format!("fstat {link}"))?;
        let inode_id = self.memfd_inode(link, &md, f, opener)?;
        let id = self.alloc();
        self.entries.push(FileEntry {
            r#type: FdTypes::MEMFD,
            id,
            memfd: Some(MemfdFileEntry { id, flags, pos: 0, fown: fown(), inode_id }),
            ..FileEntry::default()
        });
        Ok(id)
    }

    /// shmid -> (path, size) of memfd contents, to save like shared memory.
    pub fn memfd_contents(&self) -> BTreeMap<u64, (PathBuf, u64)> {
        self.memfds.iter().map(|(ino, (e, p))| (*ino, (p.clone(), e.size))).collect()
    }

    /// A pipe end. Its buffered data is read once per pipe, without
    /// consuming it, through a read end of our own.
    #[allow(clippy::too_many_arguments)]
    fn add_pipe(&mut self, pid: Pid, fd: i32, id: u32, f: &File, ino: u64, flags: u32, fifo: bool) -> Result<()> {
        let pipe_id = ino as u32;
        self.entries.push(FileEntry {
            r#type: FdTypes::PIPE,
            id,
            pipe: Some(PipeEntry { id, pipe_id, flags, fown: fown() }),
            ..FileEntry::default()
        });
        if self.pipes.contains_key(&pipe_id) || self.fifos.contains_key(&pipe_id) {
            return Ok(());
        }
        let size = stasis_sys::fd::pipe_size(f.as_fd())?;
        let data = if flags & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 {
            stasis_sys::fd::pipe_peek(f.as_fd())?
        } else {
            // Only the write end is ours: open the pipe's read side anew.
            let p = format!("/proc/{pid}/fd/{fd}");
            let r = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&p)
                .ctx(|| format!("open the read side of pipe {ino} through {p}"))?;
            stasis_sys::fd::pipe_peek(r.as_fd())?
        };
        let e = PipeDataEntry { pipe_id, bytes: data.len() as u32, size: Some(size) };
        if fifo {
            self.fifos.insert(pipe_id, (e, data));
        } else {
            self.pipes.insert(pipe_id, (e, data));
        }
        Ok(())
    }

    /// Write `files.img` and `remap-fpath.img`.
    pub fn write(&mut self, dir: &Path) -> Result<()> {
        let mut next = self.next_id;
        let ext = sockets::external_peers(&mut self.unix, self.ext_unix_sk, &mut || {
            next += 1;
            next - 1
        })?;
        self.next_id = next;
        for e in ext {
            let id = e.id;
            self.entries.push(FileEntry { r#type: FdTypes::UNIXSK, id, usk: Some(e), ..FileEntry::default() });
        }
        if !self.sk_queues.is_empty() {
            let mut w = ImageWriter::create(&dir.join("sk-queues.img"), kind("SK_QUEUES"))?;
            for (e, data) in &self.sk_queues {
                w.put(e)?;
                w.raw(data)?;
            }
            w.finish()?;
        }
        for st in &self.inet.streams {
            let mut w = ImageWriter::create(&dir.join(format!("tcp-stream-{:x}.img", st.ino)), kind("TCP_STREAM"))?;
            w.put(&st.entry)?;
            w.raw(&st.inq)?;
            w.raw(&st.outq)?;
            w.finish()?;
        }
        if !self.memfds.is_empty() {
            let mut w = ImageWriter::create(&dir.join("memfd.img"), kind("MEMFD_INODE"))?;
            for (e, _) in self.memfds.values() {
                w.put(e)?;
            }
            w.finish()?;
        }
        let mut w = ImageWriter::create(&dir.join("files.img"), kind("FILES"))?;
        for e in &self.entries {
            w.put(e)?;
        }
        w.finish()?;
        for (name, k, map) in [("pipes-data.img", "PIPES_DATA", &self.pipes), ("fifo-data.img", "FIFO_DATA", &self.fifos)] {
            if map.is_empty() {
                continue;
            }
            let mut w = ImageWriter::create(&dir.join(name), kind(k))?;
            for (e, data) in map.values() {
                w.put(e)?;
                w.raw(data)?;
            }
            w.finish()?;
        }
        if !self.locks.is_empty() {
            let mut w = ImageWriter::create(&dir.join("filelocks.img"), kind("FILE_LOCKS"))?;
            for (_, l) in &self.locks {
                w.put(l)?;
            }
            w.finish()?;
        }
        if !self.ptys.infos.is_empty() {
            let mut w = ImageWriter::create(&dir.join("tty-info.img"), kind("TTY_INFO"))?;
            for e in self.ptys.infos.values() {
                w.put(e)?;
            }
            w.finish()?;
        }
        if !self.remaps.is_empty() {
            let mut w = ImageWriter::create(&dir.join("remap-fpath.img"), kind("REMAP_FPATH"))?;
            for r in &self.remaps {
                w.put(r)?;
            }
            w.finish()?;
        }
        Ok(())
    }
}

/// Dump the fd table of `pid`: the fdinfo entries, with files added to
/// `table`.
pub fn dump_fds(pid: Pid, pidfd: &OwnedFd, table: &mut FileTable, dir: &Path) -> Result<Vec<FdinfoEntry>> {
    let mut out = Vec::new();
    for fd in procfs::fds(pid)? {
        let link = procfs::readlink(pid, &format!("fd/{fd}"))?;
        let info = procfs::fdinfo(pid, fd)?;
        let dup = match task::pidfd_getfd(pidfd.as_fd(), pid, RemoteFd(fd)) {
            Ok(d) => d,
            // Closed between listing and now.
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => continue,
            Err(e) => return Err(e.into()),
        };
        let f = File::from(dup);
        let md = f.metadata().ctx(|| format!("fstat of fd {fd} of {pid} ({link})"))?;
        let fd_flags = if info.flags & O_CLOEXEC != 0 { libc::FD_CLOEXEC as u32 } else { 0 };
        let mut shared = None;
        for &(opid, ofd, dev, ino, id) in &table.descriptions {
            if dev == md.dev() && ino == md.ino() && task::kcmp_same(pid, opid, task::KCMP_FILE, fd as u64, ofd as u64)? {
                shared = Some(id);
                break;
            }
        }
        let id = match shared {
            Some(id) => id,
            None => {
                let id = table.alloc();
                dump_file(pid, fd, &link, &f, &md, &info, id, table, dir)?;
                table.descriptions.push((pid, fd, md.dev(), md.ino(), id));
                id
            }
        };
        for l in super::locks::from_fdinfo(pid, fd, &info.text)? {
            if !table.file_locks {
                return Err(Error::Unsupported(format!(
                    "fd {fd} of {pid} ({link}) holds a file lock; dump with --file-locks to save it"
                )));
            }
            // A description shared by several fds shows its locks on each.
            let same = |(d, o): &(u32, FileLockEntry)| {
                *d == id && o.flag == l.flag && o.r#type == l.r#type && o.start == l.start && o.len == l.len && (l.flag != super::locks::FL_POSIX || o.pid == l.pid)
            };
            if !table.locks.iter().any(same) {
                table.locks.push((id, l));
            }
        }
        let ftype = table.get(id).map(|e| e.r#type).unwrap_or(FdTypes::UND);
        out.push(FdinfoEntry { id, flags: fd_flags, r#type: ftype, fd: fd as u32, xattr_security_selinux: None });
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn dump_file(
    pid: Pid,
    fd: i32,
    link: &str,
    f: &File,
    md: &std::fs::Metadata,
    info: &procfs::FdInfo,
    id: u32,
    table: &mut FileTable,
    dir: &Path,
) -> Result<()> {
    let ft = md.file_type();
    use std::os::unix::fs::FileTypeExt;
    let flags = info.flags & !O_CLOEXEC;
    if link.starts_with("/memfd:") && ft.is_file() {
        let inode_id = table.memfd_inode(link, md, f, &format!("/proc/{pid}/fd/{fd}"))?;
        table.entries.push(FileEntry {
            r#type: FdTypes::MEMFD,
            id,
            memfd: Some(MemfdFileEntry { id, flags, pos: info.pos, fown: fown(), inode_id }),
            ..FileEntry::default()
        });
        return Ok(());
    }
    if link.starts_with("socket:[") {
        let family = stasis_sys::net::getsockopt_int(f.as_fd(), libc::SOL_SOCKET, libc::SO_DOMAIN)?;
        let ino = md.ino() as u32;
        let (entry, queue) = match family {
            libc::AF_UNIX => {
                let (u, q) = sockets::dump_unix(pid, fd, id, f, ino, flags, &mut table.unix)?;
                (FileEntry { r#type: FdTypes::UNIXSK, id, usk: Some(u), ..FileEntry::default() }, q)
            }
            libc::AF_INET | libc::AF_INET6 => {
                let (i, q) = sockets::dump_inet(pid, fd, id, f, ino, flags, table.tcp_established, &mut table.inet)?;
                (FileEntry { r#type: FdTypes::INETSK, id, isk: Some(i), ..FileEntry::default() }, q)
            }
            _ => {
                let kind = match family {
                    libc::AF_NETLINK => "a netlink socket",
                    libc::AF_PACKET => "a packet socket",
                    _ => "a socket of an unsupported family",
                };
                return Err(Error::Unsupported(format!("fd {fd} of {pid} is {kind} ({link}), which stasis cannot save yet")));
            }
        };
        for m in queue {
            // A sender address is worth keeping when it is a name.
            let addr = (m.addr.len() > 2).then_some(m.addr);
            table.sk_queues.push((SkPacketEntry { id_for: id, length: m.data.len() as u32, addr, scm: Vec::new() }, m.data));
        }
        table.entries.push(entry);
        return Ok(());
    }
    if let Some(kind) = link.strip_prefix("anon_inode:") {
        let text = &info.text;
        let e = match kind {
            "[eventfd]" => FileEntry { r#type: FdTypes::EVENTFD, id, efd: Some(anon::dump_eventfd(id, flags, text)?), ..FileEntry::default() },
            "[eventpoll]" => {
                let ep = anon::dump_epoll(id, flags, text)?;
                for t in &ep.tfd {
                    let target = std::fs::metadata(format!("/proc/{pid}/fd/{}", t.tfd));
                    if !target.as_ref().is_ok_and(|m| Some(m.ino()) == t.inode) {
                        return Err(Error::Unsupported(format!(
                            "epoll fd {fd} of {pid} watches fd {} after that fd was closed or reused; not supported",
                            t.tfd
                        )));
                    }
                }
                FileEntry { r#type: FdTypes::EVENTPOLL, id, epfd: Some(ep), ..FileEntry::default() }
            }
            "[signalfd]" => FileEntry { r#type: FdTypes::SIGNALFD, id, sgfd: Some(anon::dump_signalfd(id, flags, text)?), ..FileEntry::default() },
            "[timerfd]" => FileEntry { r#type: FdTypes::TIMERFD, id, tfd: Some(anon::dump_timerfd(id, flags, text)?), ..FileEntry::default() },
            "inotify" => {
                let mut pending = 0u64;
                if stasis_sys::net::ioctl_u64(f.as_fd(), libc::FIONREAD, &mut pending).is_ok() && pending as u32 != 0 {
                    tracing::warn!(pid, fd, bytes = pending as u32, "inotify events not yet read are not saved");
                }
                FileEntry { r#type: FdTypes::INOTIFY, id, ify: Some(anon::dump_inotify(id, flags, text)?), ..FileEntry::default() }
            }
            other => {
                let what = match other {
                    "[io_uring]" => "an io_uring instance",
                    "[perf_event]" => "a perf event",
                    "[userfaultfd]" => "a userfaultfd",
                    "[pidfd]" => "a pidfd",
                    "[fanotify]" => "a fanotify group",
                    k if k.starts_with("bpf") => "a BPF object",
                    _ => "an anonymous-inode file of an unsupported kind",
                };
                return Err(Error::Unsupported(format!("fd {fd} of {pid} is {what} ({link}), which stasis cannot save")));
            }
        };
        table.entries.push(e);
        return Ok(());
    }
    if link.starts_with('/') && (ft.is_file() || ft.is_dir() || ft.is_char_device() || ft.is_block_device()) {
        // Files whose path does not reopen them.
        const MQUEUE_MAGIC: i64 = 0x1980_0202;
        if ft.is_file() && stasis_sys::fd::fs_type(f.as_fd()).ok() == Some(MQUEUE_MAGIC) {
            return Err(Error::Unsupported(format!("fd {fd} of {pid} is the POSIX message queue {link}, which stasis cannot save yet")));
        }
        if let Some(end) = super::tty::end_of(md.rdev(), &info.text).filter(|&e| table.ptys.inside(e)) {
            // A pty of the tree's own: the path as a file entry beside it.
            let what = format!("fd {fd} of {pid} ({link})");
            let tty_info_id = table.ptys.info(end, f, &what)?;
            let regf = table.alloc();
            table.add_reg(dir, regf, link, f, md, info.flags & !O_CLOEXEC, 0)?;
            table.entries.push(FileEntry {
                r#type: FdTypes::TTY,
                id,
                tty: Some(TtyFileEntry { id, tty_info_id, flags: info.flags & !O_CLOEXEC, fown: fown(), regf_id: Some(regf) }),
                ..FileEntry::default()
            });
            return Ok(());
        }
        if ft.is_char_device() && is_tty(md.rdev()) {
            if !table.shell_job {
                return Err(Error::Unsupported(format!(
                    "fd {fd} of {pid} is the terminal {link}; dump a shell job with --shell-job, its terminal is then reconnected to the one restore runs in"
                )));
            }
            // The shell's terminal: recorded as external, reopened at
            // restore as the terminal of the restoring shell.
            table.add_reg(dir, id, link, f, md, info.flags & !O_CLOEXEC, 0)?;
            if let Some(r) = table.entries.iter_mut().find(|e| e.id == id).and_then(|e| e.reg.as_mut()) {
                r.ext = Some(true);
            }
            return Ok(());
        }
        return table.add_reg(dir, id, link, f, md, flags, info.pos);
    }
    if link.starts_with("pipe:[") && ft.is_fifo() {
        return table.add_pipe(pid, fd, id, f, md.ino(), info.flags & !O_CLOEXEC, false);
    }
    if link.starts_with('/') && ft.is_fifo() {
        // A named pipe: the path as a regular-file entry, the pipe beside it.
        let regf = table.alloc();
        table.add_reg(dir, regf, link, f, md, info.flags & !O_CLOEXEC, 0)?;
        table.add_pipe(pid, fd, id, f, md.ino(), info.flags & !O_CLOEXEC, true)?;
        if let Some(e) = table.entries.iter_mut().find(|e| e.id == id) {
            e.r#type = FdTypes::FIFO;
            let p = e.pipe.take();
            e.fifo = Some(FifoEntry { id, pipe_id: p.map(|p| p.pipe_id).unwrap_or(0), regf_id: Some(regf) });
        }
        return Ok(());
    }
    Err(Error::Unsupported(format!("fd {fd} of {pid} is {link}, a kind of file stasis cannot save yet")))
}

/// Character devices that are terminals: ttys, consoles, ptys.
fn is_tty(rdev: u64) -> bool {
    let major = libc::major(rdev);
    matches!(major, 4 | 5 | 136..=143)
}

// --- restore ------------------------------------------------------------

/// The files of a checkpoint, opened in stasis, ready to be handed out.
pub struct OpenFiles {
    /// `--shell-job`: terminals of the image become ours.
    pub shell_job: bool,
    /// `--tcp-established`: established connections may be restored.
    pub tcp_established: bool,
    sockets: Option<sockets::Sockets>,
    sk_queues: Vec<(SkPacketEntry, Vec<u8>)>,
    tcp_streams: HashMap<u32, (TcpStreamEntry, Vec<u8>, Vec<u8>)>,
    memfd_inodes: HashMap<u64, MemfdInodeEntry>,
    memfd_fds: HashMap<u64, OwnedFd>,
    memfd_contents: HashMap<u64, Vec<(u64, Vec<u8>)>>,
    /// Epoll sets whose watches are registered already.
    pub epolls_done: std::collections::BTreeSet<u32>,
    pub entries: HashMap<u32, FileEntry>,
    pub remaps: HashMap<u32, u32>,
    /// Buffered pipe contents by pipe id.
    pipe_data: HashMap<u32, (PipeDataEntry, Vec<u8>)>,
    /// Pipes created so far: (read end, write end, ends handed out).
    pipes: HashMap<u32, (OwnedFd, OwnedFd, [bool; 2])>,
    /// FIFO contents by pipe id, and a read-write descriptor we hold on
    /// each FIFO while the tasks open theirs, so no open blocks.
    fifo_data: HashMap<u32, (PipeDataEntry, Vec<u8>)>,
    fifos: HashMap<u32, OwnedFd>,
    opened: HashMap<u32, OwnedFd>,
    /// Deleted files we recreated to open them: unlinked once opened.
    ghosts_made: Vec<PathBuf>,
    /// Ptys of the tree, made on first use.
    pub ptys: super::tty::Ptys,
    /// File locks to take again, from filelocks.img.
    pub locks: Vec<FileLockEntry>,
}

impl OpenFiles {
    pub fn load(cp: &Checkpoint) -> Result<Self> {
        let entries = cp.files()?.into_iter().map(|e| (e.id, e)).collect();
        let mut remaps = HashMap::new();
        if let Some(mut r) = cp.open_optional("REMAP_FPATH")? {
            for e in r.all::<RemapFilePathEntry>()? {
                if e.remap_type.unwrap_or(RemapType::LINKED) != RemapType::GHOST {
                    return Err(Error::Unsupported(format!(
                        "file {} is remapped in a way stasis does not support (type {:?})",
                        e.orig_id, e.remap_type
                    )));
                }
                remaps.insert(e.orig_id, e.remap_id);
            }
        }
        let pipe_data = load_pipe_data(cp, "PIPES_DATA")?;
        let fifo_data = load_pipe_data(cp, "FIFO_DATA")?;
        let mut sk_queues = Vec::new();
        if let Some(mut r) = cp.open_optional("SK_QUEUES")? {
            while let Some(e) = r.next::<SkPacketEntry>()? {
                let data = r.payload(u64::from(e.length))?.to_vec();
                sk_queues.push((e, data));
            }
        }
        let mut tcp_streams = HashMap::new();
        for e in cp.files()? {
            let Some(i) = &e.isk else { continue };
            if i.proto == libc::IPPROTO_TCP as u32 && i.state == 1 {
                let p = cp.dir.join(format!("tcp-stream-{:x}.img", i.ino));
                let mut r = ImageReader::open_kind(&p, kind("TCP_STREAM"))?;
                let st: TcpStreamEntry = r.expect()?;
                let inq = r.payload(u64::from(st.inq_len))?.to_vec();
                let outq = r.payload(u64::from(st.outq_len))?.to_vec();
                tcp_streams.insert(i.ino, (st, inq, outq));
            }
        }
        let mut memfd_inodes = HashMap::new();
        let mut memfd_contents = HashMap::new();
        if let Some(mut r) = cp.open_optional("MEMFD_INODE")? {
            for m in r.all::<MemfdInodeEntry>()? {
                memfd_contents.insert(m.inode_id, crate::state::mm::shmem_contents(cp, u64::from(m.shmid))?);
                memfd_inodes.insert(m.inode_id, m);
            }
        }
        Ok(OpenFiles {
            shell_job: false,
            tcp_established: false,
            sockets: None,
            sk_queues,
            tcp_streams,
            memfd_inodes,
            memfd_fds: HashMap::new(),
            memfd_contents,
            epolls_done: Default::default(),
            entries,
            remaps,
            pipe_data,
            pipes: HashMap::new(),
            fifo_data,
            fifos: HashMap::new(),
            opened: HashMap::new(),
            ghosts_made: Vec::new(),
            ptys: super::tty::Ptys::load(match cp.open_optional("TTY_INFO")? {
                Some(mut r) => r.all::<TtyInfoEntry>()?,
                None => Vec::new(),
            }),
            locks: match cp.open_optional("FILE_LOCKS")? {
                Some(mut r) => r.all::<FileLockEntry>()?,
                None => Vec::new(),
            },
        })
    }

    pub fn entry(&self, id: u32) -> Result<&FileEntry> {
        self.entries.get(&id).ok_or_else(|| Error::BadImage(format!("files.img has no file with id {id}")))
    }

    /// Open (once) the description of file `id` with its own flags.
    pub fn open(&mut self, cp: &Checkpoint, id: u32) -> Result<&OwnedFd> {
        if !self.opened.contains_key(&id) {
            let fd = self.open_new(cp, id, None)?;
            self.opened.insert(id, fd);
        }
        Ok(&self.opened[&id])
    }

    /// Open file `id` afresh with the given flags (for memory mappings).
    pub fn open_with(&mut self, cp: &Checkpoint, id: u32, flags: i32) -> Result<OwnedFd> {
        self.open_new(cp, id, Some(flags))
    }

    fn open_new(&mut self, cp: &Checkpoint, id: u32, flags_override: Option<i32>) -> Result<OwnedFd> {
        let e = self.entry(id)?.clone();
        if let Some(p) = &e.pipe {
            return self.open_pipe(p);
        }
        if let Some(f) = &e.fifo {
            return self.open_fifo(f);
        }
        if e.usk.is_some() || e.isk.is_some() {
            if self.sockets.is_none() {
                self.sockets = Some(sockets::build(&self.entries, &self.sk_queues, &self.tcp_streams, self.tcp_established)?);
            }
            let fd = self.sockets.as_ref().and_then(|s| s.get(id)).ok_or_else(|| Error::BadImage(format!("socket {id} was not built")))?;
            return fd.try_clone().ctx(|| "dup socket".into());
        }
        if let Some(x) = &e.efd {
            return anon::restore_eventfd(x);
        }
        if e.epfd.is_some() {
            return Ok(stasis_sys::net::epoll_create()?);
        }
        if let Some(x) = &e.sgfd {
            return anon::restore_signalfd(x);
        }
        if let Some(x) = &e.tfd {
            return anon::restore_timerfd(x);
        }
        if let Some(x) = &e.ify {
            return anon::restore_inotify(x);
        }
        if let Some(m) = &e.memfd {
            return self.open_memfd(m, flags_override);
        }
        if let Some(t) = &e.tty {
            return self.ptys.open(&self.entries, id, t);
        }
        let Some(reg) = &e.reg else {
            return Err(Error::Unsupported(format!(
                "file {id} is of type {}, which stasis cannot restore yet",
                stasis_image::checkpoint::fd_type_name(e.r#type)
            )));
        };
        let flags = flags_override.unwrap_or(reg.flags as i32)
            & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL | libc::O_CLOEXEC);
        let path = match self.remaps.get(&id) {
            Some(&ghost) => self.make_ghost(cp, reg, ghost)?,
            None if reg.ext == Some(true) => self.shell_terminal(reg)?,
            None => PathBuf::from(&reg.name),
        };
        let mut opts = std::fs::OpenOptions::new();
        match flags & libc::O_ACCMODE {
            libc::O_WRONLY => opts.write(true),
            libc::O_RDWR => opts.read(true).write(true),
            _ => opts.read(true),
        };
        let file = opts.custom_flags((flags & !libc::O_ACCMODE) | libc::O_NOCTTY).open(&path).ctx(|| format!("open {}", reg.name))?;
        if let (Some(want), Ok(md)) = (reg.size, file.metadata()) {
            if md.file_type().is_file() && md.size() != want && !self.remaps.contains_key(&id) {
                tracing::warn!(path = %reg.name, want, now = md.size(), "file size differs from the checkpoint");
            }
        }
        if self.remaps.contains_key(&id) {
            std::fs::remove_file(&path).ctx(|| format!("unlink recreated deleted file {}", path.display()))?;
            self.ghosts_made.retain(|p| p != &path);
        }
        if flags_override.is_none() && reg.pos != 0 {
            let mut fref = &file;
            fref.seek(SeekFrom::Start(reg.pos)).ctx(|| format!("seek in {}", reg.name))?;
        }
        Ok(file.into())
    }

    /// A new description of a memfd (the memfd made once, with content).
    fn open_memfd(&mut self, m: &MemfdFileEntry, flags_override: Option<i32>) -> Result<OwnedFd> {
        let key = u64::from(m.inode_id);
        if !self.memfd_fds.contains_key(&key) {
            let inode = self.memfd_inodes.get(&key).ok_or_else(|| Error::BadImage(format!("memfd.img has no inode {}", m.inode_id)))?;
            let content = self.memfd_contents.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            self.memfd_fds.insert(key, anon::restore_memfd(inode, content)?);
        }
        let base = &self.memfd_fds[&key];
        let flags = flags_override.unwrap_or(m.flags as i32) & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL | libc::O_CLOEXEC);
        let mut o = std::fs::OpenOptions::new();
        match flags & libc::O_ACCMODE {
            libc::O_WRONLY => o.write(true),
            libc::O_RDWR => o.read(true).write(true),
            _ => o.read(true),
        };
        let f = o
            .custom_flags(flags & !libc::O_ACCMODE)
            .open(format!("/proc/self/fd/{}", base.as_raw_fd()))
            .ctx(|| format!("reopen memfd {}", m.inode_id))?;
        if flags_override.is_none() && m.pos != 0 {
            (&f).seek(SeekFrom::Start(m.pos)).ctx(|| "seek in memfd".into())?;
        }
        Ok(f.into())
    }

    /// A FIFO by path, refilled with its buffered data on first use.
    fn open_fifo(&mut self, f: &FifoEntry) -> Result<OwnedFd> {
        let regf = f.regf_id.ok_or_else(|| Error::BadImage(format!("FIFO {} has no path entry", f.id)))?;
        let reg = self.entry(regf)?.reg.clone().ok_or_else(|| Error::BadImage(format!("FIFO {} path entry is not a file", f.id)))?;
        if !self.fifos.contains_key(&f.pipe_id) {
            let keep: OwnedFd = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&reg.name)
                .ctx(|| format!("open FIFO {}", reg.name))?
                .into();
            if let Some((e, data)) = self.fifo_data.get(&f.pipe_id) {
                if let Some(size) = e.size {
                    let _ = stasis_sys::fd::set_pipe_size(keep.as_fd(), size);
                }
                let mut w = File::from(keep.try_clone().ctx(|| "dup FIFO".into())?);
                w.write_all(data).ctx(|| format!("refill FIFO {}", reg.name))?;
            }
            self.fifos.insert(f.pipe_id, keep);
        }
        let flags = reg.flags as i32;
        let mut o = std::fs::OpenOptions::new();
        match flags & libc::O_ACCMODE {
            libc::O_WRONLY => o.write(true),
            libc::O_RDWR => o.read(true).write(true),
            _ => o.read(true),
        };
        let fd: OwnedFd = o.custom_flags(libc::O_NONBLOCK).open(&reg.name).ctx(|| format!("open FIFO {}", reg.name))?.into();
        stasis_sys::fd::set_status_flags(fd.as_fd(), flags & !libc::O_ACCMODE & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY))?;
        Ok(fd)
    }

    /// The terminal standing in for a shell job's terminal: the one stasis
    /// itself runs in (its standard input, output or error).
    fn shell_terminal(&self, reg: &RegFileEntry) -> Result<PathBuf> {
        if !self.shell_job {
            return Err(Error::Refused(format!(
                "the checkpoint uses the terminal {} of the shell it ran in; restore it with --shell-job",
                reg.name
            )));
        }
        for fd in 0..3 {
            let p = PathBuf::from(format!("/proc/self/fd/{fd}"));
            if let Ok(md) = std::fs::metadata(&p) {
                use std::os::unix::fs::FileTypeExt;
                if md.file_type().is_char_device() && is_tty(md.rdev()) {
                    return std::fs::read_link(&p).ctx(|| format!("read {}", p.display()));
                }
            }
        }
        Err(Error::Refused(format!(
            "the checkpoint uses the terminal {} of its shell, but stasis is not running in a terminal to give it",
            reg.name
        )))
    }

    /// One end of a pipe, with the pipe created (and filled) on first use.
    fn open_pipe(&mut self, p: &PipeEntry) -> Result<OwnedFd> {
        if !self.pipes.contains_key(&p.pipe_id) {
            let (r, w) = stasis_sys::fd::pipe()?;
            if let Some((e, data)) = self.pipe_data.get(&p.pipe_id) {
                if let Some(size) = e.size {
                    if let Err(err) = stasis_sys::fd::set_pipe_size(w.as_fd(), size) {
                        tracing::warn!(pipe = p.pipe_id, size, "cannot set the pipe size: {err}");
                    }
                }
                let mut wf = File::from(w.try_clone().ctx(|| "dup pipe".into())?);
                wf.write_all(data).ctx(|| format!("refill pipe {}", p.pipe_id))?;
            }
            self.pipes.insert(p.pipe_id, (r, w, [false; 2]));
        }
        let (r, w, used) = self.pipes.get_mut(&p.pipe_id).expect("pipe just created");
        let write = p.flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32;
        let end = if write { &*w } else { &*r };
        let fd = if used[write as usize] {
            // Another description of the same end: open the pipe anew.
            let path = format!("/proc/self/fd/{}", end.as_raw_fd());
            let mut o = std::fs::OpenOptions::new();
            if write { o.write(true) } else { o.read(true) };
            o.custom_flags(libc::O_NONBLOCK).open(&path).ctx(|| format!("reopen pipe {}", p.pipe_id))?.into()
        } else {
            used[write as usize] = true;
            end.try_clone().ctx(|| "dup pipe".into())?
        };
        let keep = libc::O_NONBLOCK | libc::O_DIRECT | libc::O_ASYNC;
        stasis_sys::fd::set_status_flags(fd.as_fd(), p.flags as i32 & keep)?;
        Ok(fd)
    }

    /// Recreate a deleted file from its ghost image, at its old path if
    /// that is free, beside it otherwise. Returns where it is.
    fn make_ghost(&mut self, cp: &Checkpoint, reg: &RegFileEntry, ghost: u32) -> Result<PathBuf> {
        let mut r = cp.open_n("GHOST_FILE", u64::from(ghost))?;
        let g: GhostFileEntry = r.expect()?;
        if g.chunks == Some(true) {
            return Err(Error::Unsupported(format!("ghost file {ghost} is stored in chunks, which stasis cannot read yet")));
        }
        let data = r.rest().to_vec();
        let orig = PathBuf::from(&reg.name);
        let mut path = orig.clone();
        let mut n = 0;
        let mut f = loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(g.mode & 0o7777).open(&path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                    n += 1;
                    path = PathBuf::from(format!("{}.stasis-ghost-{ghost}-{n}", reg.name));
                }
                Err(e) => return Err(Error::io(format!("recreate deleted file {}", reg.name), e)),
            }
        };
        self.ghosts_made.push(path.clone());
        f.write_all(&data).ctx(|| format!("write recreated deleted file {}", path.display()))?;
        let _ = std::os::unix::fs::chown(&path, Some(g.uid), Some(g.gid));
        let _ = std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(g.mode & 0o7777));
        Ok(path)
    }

    pub fn raw_fd(&self, id: u32) -> Option<i32> {
        self.opened.get(&id).map(|f| f.as_raw_fd())
    }
}

impl Drop for OpenFiles {
    fn drop(&mut self) {
        for p in &self.ghosts_made {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn load_pipe_data(cp: &Checkpoint, kind_name: &str) -> Result<HashMap<u32, (PipeDataEntry, Vec<u8>)>> {
    let mut m = HashMap::new();
    if let Some(mut r) = cp.open_optional(kind_name)? {
        while let Some(e) = r.next::<PipeDataEntry>()? {
            let data = r.payload(u64::from(e.bytes))?.to_vec();
            m.insert(e.pipe_id, (e, data));
        }
    }
    Ok(m)
}

/// Gives a restored task descriptors that stasis holds: the task pulls
/// them with pidfd_getfd(2) through a pidfd for stasis it keeps at a high
/// fd number while it is being restored.
pub struct Courier {
    pub pidfd: RemoteFd,
}

impl Courier {
    /// Open a pidfd for us inside the task, at `at` or above.
    pub fn new(s: &mut Session<'_>, at: i32) -> Result<Courier> {
        let me = std::process::id() as u64;
        let fd = s.call("pidfd_open", libc::SYS_pidfd_open, &[me, 0])?;
        let high = s.call("fcntl(F_DUPFD_CLOEXEC)", libc::SYS_fcntl, &[fd, libc::F_DUPFD_CLOEXEC as u64, at as u64])?;
        s.call("close", libc::SYS_close, &[fd])?;
        Ok(Courier { pidfd: RemoteFd(high as i32) })
    }

    /// Copy our descriptor `ours` into the task; returns its number there.
    pub fn pull(&self, s: &mut Session<'_>, ours: i32) -> Result<RemoteFd> {
        let fd = s.call("pidfd_getfd", libc::SYS_pidfd_getfd, &[self.pidfd.0 as u64, ours as u64, 0])?;
        Ok(RemoteFd(fd as i32))
    }

    /// Copy our descriptor into the task at number `target` with the given
    /// close-on-exec setting.
    pub fn place(&self, s: &mut Session<'_>, ours: i32, target: i32, cloexec: bool) -> Result<()> {
        let got = self.pull(s, ours)?;
        if got.0 == target {
            let fl = if cloexec { libc::FD_CLOEXEC } else { 0 } as u64;
            s.call("fcntl(F_SETFD)", libc::SYS_fcntl, &[target as u64, libc::F_SETFD as u64, fl])?;
        } else {
            let fl = if cloexec { libc::O_CLOEXEC as u64 } else { 0 };
            s.call("dup3", libc::SYS_dup3, &[got.0 as u64, target as u64, fl])?;
            s.call("close", libc::SYS_close, &[got.0 as u64])?;
        }
        Ok(())
    }

    pub fn close(self, s: &mut Session<'_>) -> Result<()> {
        s.call("close", libc::SYS_close, &[self.pidfd.0 as u64]).map(drop)
    }
}

/// Install the fd table of a task.
pub fn restore_fds(
    s: &mut Session<'_>,
    courier: &Courier,
    cp: &Checkpoint,
    files: &mut OpenFiles,
    fds: &[FdinfoEntry],
) -> Result<()> {
    let mut sorted: Vec<&FdinfoEntry> = fds.iter().collect();
    sorted.sort_by_key(|f| f.fd);
    for f in sorted {
        let ours = files.open(cp, f.id)?.as_raw_fd();
        courier.place(s, ours, f.fd as i32, f.flags & libc::FD_CLOEXEC as u32 != 0)?;
    }
    Ok(())
}

/// Register the watches of the epoll sets in a task's fd table (once per
/// set: a shared set is registered by its first holder).
pub fn restore_epolls(s: &mut Session<'_>, scratch: &Scratch, files: &mut OpenFiles, fds: &[FdinfoEntry]) -> Result<()> {
    for f in fds {
        let Some(ep) = files.entries.get(&f.id).and_then(|e| e.epfd.clone()) else { continue };
        if files.epolls_done.insert(f.id) {
            tracing::debug!(epfd = f.fd, watches = ep.tfd.len(), "epoll");
            anon::restore_epoll_targets(s, scratch, f.fd as i32, &ep)?;
        }
    }
    Ok(())
}

/// Read the fd table of a task from the checkpoint.
pub fn fd_table(cp: &Checkpoint, files_id: u32) -> Result<Vec<FdinfoEntry>> {
    let p = cp.path_n(kind("FDINFO"), u64::from(files_id));
    if !p.exists() {
        return Ok(Vec::new());
    }
    Ok(ImageReader::open_kind(&p, kind("FDINFO"))?.all()?)
}

/// Directory fds in a scratch area: a NUL-terminated path.
pub fn write_cstr(s: &Session<'_>, scratch: &Scratch, off: u64, text: &str) -> Result<stasis_sys::RemoteAddr> {
    let at = scratch.at(off);
    let mut b = text.as_bytes().to_vec();
    b.push(0);
    s.write(at, &b)?;
    Ok(at)
}
