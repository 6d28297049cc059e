//! Pseudo-terminals whose master is held inside the dumped tree.
//!
//! Dump: the masters are found first (their fdinfo names the pty index),
//! so that a slave fd can tell an inner pty from the terminal of the shell
//! the tree runs in (`--shell-job`, handled as an outside file). Every
//! query goes through a master: on a master, the terminal ioctls act on
//! its slave (termios, window size, session, foreground group), and they
//! work for a process outside the slave's session, as stasis is. Each end
//! gets a TtyInfoEntry in tty-info.img, each open description a TTY entry
//! in files.img that names it. Data waiting in a pty cannot be read back
//! without consuming it: a pty with data in flight is refused.
//!
//! Restore: one new pair per index, created in stasis. The same index is
//! taken if it is free (ptmx hands out the lowest free index, so opening
//! until it comes up finds it); otherwise another, with a warning. The
//! slave's settings are set through the master, every slave description
//! is opened from the master (TIOCGPTPEER) before the pty is locked again
//! if it was. A session leader gets its controlling terminal right after
//! setsid, before its children are forked (they inherit it); the
//! foreground group is set once all groups exist.
//!
//! Kernel interfaces: tty_ioctl(4) (TCGETS2, TIOCGWINSZ, TIOCGSID,
//! TIOCGPGRP, TIOCSCTTY, TIOCSPGRP, TIOCPKT, TIOCEXCL), pts(4) (TIOCGPTN,
//! TIOCSPTLCK, TIOCGPTPEER), /proc/PID/fdinfo ("tty-index").

use crate::error::{Error, IoContext, Result};
use stasis_image::messages::*;
use stasis_sys::{net, Pid, RemoteFd};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

const TCGETS2: u64 = 0x802c_542a;
const TCSETS2: u64 = 0x402c_542b;
const TIOCGLCKTRMIOS: u64 = 0x5456;
const TIOCSLCKTRMIOS: u64 = 0x5457;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCGPTLCK: u64 = 0x8004_5439;
const TIOCGPKT: u64 = 0x8004_5438;
const TIOCPKT: u64 = 0x5420;
const TIOCGEXCL: u64 = 0x8004_5440;
const TIOCEXCL: u64 = 0x540c;
const TIOCGSID: u64 = 0x5429;
const TIOCGPGRP: u64 = 0x540f;
pub const TIOCSPGRP: u64 = 0x5410;
pub const TIOCSCTTY: u64 = 0x540e;
const FIONREAD: u64 = 0x541b;
const TIOCOUTQ: u64 = 0x5411;

/// The pty multiplexer's device (5, 2): its descriptors are masters.
const PTMX_RDEV: u32 = (5 << 8) | 2;
const NCCS: usize = 19;

fn get_int(fd: BorrowedFd<'_>, req: u64) -> Option<i32> {
    let mut b = [0u8; 4];
    net::ioctl_buf(fd, req, &mut b).ok()?;
    Some(i32::from_ne_bytes(b))
}

fn set_int(fd: BorrowedFd<'_>, req: u64, v: i32) -> Result<()> {
    let mut b = v.to_ne_bytes();
    net::ioctl_buf(fd, req, &mut b)?;
    Ok(())
}

/// Which end of which pty a terminal descriptor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    Master(u32),
    Slave(u32),
}

impl End {
    pub fn index(self) -> u32 {
        match self {
            End::Master(i) | End::Slave(i) => i,
        }
    }
}

/// The pty end behind a character device, if it is one (`fdinfo`: the
/// descriptor's fdinfo, which names a master's index).
pub fn end_of(rdev: u64, fdinfo: &str) -> Option<End> {
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    if major == 5 && minor == 2 {
        let idx = fdinfo.lines().find_map(|l| l.strip_prefix("tty-index:"))?.trim().parse().ok()?;
        return Some(End::Master(idx));
    }
    (136..=143).contains(&major).then(|| End::Slave((major - 136) * 256 + minor))
}

/// pty state gathered during a dump.
#[derive(Default)]
pub struct PtyDump {
    /// A descriptor of each master held in the tree, by index.
    pub masters: BTreeMap<u32, File>,
    /// One entry per end seen.
    pub infos: BTreeMap<End, TtyInfoEntry>,
}

impl PtyDump {
    /// Find the masters held by these processes (through their pidfds).
    pub fn scan(procs: &[(Pid, BorrowedFd<'_>)]) -> Result<PtyDump> {
        let mut d = PtyDump::default();
        for &(pid, pidfd) in procs {
            for fd in crate::procfs::fds(pid)? {
                let Ok(link) = crate::procfs::readlink(pid, &format!("fd/{fd}")) else { continue };
                if link != "/dev/ptmx" && link != "/dev/pts/ptmx" {
                    continue;
                }
                let Ok(dup) = stasis_sys::task::pidfd_getfd(pidfd, pid, RemoteFd(fd)) else { continue };
                if let Some(idx) = get_int(dup.as_fd(), TIOCGPTN) {
                    d.masters.entry(idx as u32).or_insert_with(|| File::from(dup));
                }
            }
        }
        Ok(d)
    }

    /// Whether the pty of this end has its master in the tree.
    pub fn inside(&self, end: End) -> bool {
        self.masters.contains_key(&end.index())
    }

    /// The info entry of an end (made on first sight); its id.
    pub fn info(&mut self, end: End, f: &File, what: &str) -> Result<u32> {
        if let Some(i) = self.infos.get(&end) {
            return Ok(i.id);
        }
        let idx = end.index();
        let master = self.masters.get(&idx).ok_or_else(|| Error::Unsupported(format!("{what}: pty {idx} has no master in the tree")))?;
        let m = master.as_fd();
        // Data in flight: what the slave wrote and the master has not read,
        // and what the master wrote and the slave has not read.
        let mut pending = Vec::new();
        if let Some(n) = get_int(m, FIONREAD).filter(|&n| n > 0) {
            pending.push(format!("{n} bytes written by the slave side and not yet read"));
        }
        if let End::Slave(_) = end {
            if let Some(n) = get_int(f.as_fd(), FIONREAD).filter(|&n| n > 0) {
                pending.push(format!("{n} bytes of input not yet read"));
            }
        }
        if let Some(n) = get_int(m, TIOCOUTQ).filter(|&n| n > 0) {
            pending.push(format!("{n} bytes of output queued"));
        }
        if !pending.is_empty() {
            return Err(Error::Unsupported(format!(
                "{what}: pty {idx} has data in flight ({}); stasis cannot save it, try again when it is drained",
                pending.join(", ")
            )));
        }
        let md = f.metadata().ctx(|| format!("fstat {what}"))?;
        let mut t2 = [0u8; 44];
        let termios = net::ioctl_buf(m, TCGETS2, &mut t2).ok().map(|_| termios_entry(&t2));
        let mut lk = [0u8; 36];
        let termios_locked = net::ioctl_buf(m, TIOCGLCKTRMIOS, &mut lk).ok().map(|_| termios_entry(&lk));
        let mut ws = [0u8; 8];
        let winsize = net::ioctl_buf(m, TIOCGWINSZ, &mut ws).ok().map(|_| {
            let h = |i: usize| u32::from(u16::from_ne_bytes([ws[i], ws[i + 1]]));
            WinsizeEntry { ws_row: h(0), ws_col: h(2), ws_xpixel: h(4), ws_ypixel: h(6) }
        });
        let (sid, pgrp) = match end {
            // Asked through the master: allowed from outside the session.
            End::Slave(_) => (get_int(m, TIOCGSID).unwrap_or(0), get_int(m, TIOCGPGRP).unwrap_or(0)),
            End::Master(_) => (0, 0),
        };
        let id = self.infos.len() as u32 + 1;
        let e = TtyInfoEntry {
            id,
            r#type: TtyType::PTY,
            locked: matches!(end, End::Master(_)) && get_int(m, TIOCGPTLCK).unwrap_or(0) != 0,
            exclusive: get_int(f.as_fd(), TIOCGEXCL).unwrap_or(0) != 0,
            packet_mode: matches!(end, End::Master(_)) && get_int(m, TIOCGPKT).unwrap_or(0) != 0,
            sid: sid.max(0) as u32,
            pgrp: pgrp.max(0) as u32,
            rdev: md.rdev() as u32,
            termios,
            termios_locked,
            winsize,
            pty: Some(TtyPtyEntry { index: idx }),
            dev: Some(md.dev() as u32),
            uid: Some(md.uid()),
            gid: Some(md.gid()),
        };
        self.infos.insert(end, e);
        Ok(id)
    }
}

/// A kernel termios (TCGETS2: four flag words, line, 19 control chars,
/// then the speeds; the locked-termios form stops before the speeds).
fn termios_entry(b: &[u8]) -> TermiosEntry {
    let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let speeds = b.len() >= 44;
    TermiosEntry {
        c_iflag: w(0),
        c_oflag: w(4),
        c_cflag: w(8),
        c_lflag: w(12),
        c_line: u32::from(b[16]),
        c_ispeed: if speeds { w(36) } else { 0 },
        c_ospeed: if speeds { w(40) } else { 0 },
        c_cc: b[17..17 + NCCS].iter().map(|&c| u32::from(c)).collect(),
    }
}

fn termios_bytes(t: &TermiosEntry, with_speeds: bool) -> Vec<u8> {
    let mut b = Vec::with_capacity(44);
    for v in [t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag] {
        b.extend_from_slice(&v.to_ne_bytes());
    }
    b.push(t.c_line as u8);
    for i in 0..NCCS {
        b.push(t.c_cc.get(i).copied().unwrap_or(0) as u8);
    }
    if with_speeds {
        b.extend_from_slice(&t.c_ispeed.to_ne_bytes());
        b.extend_from_slice(&t.c_ospeed.to_ne_bytes());
    }
    b
}

// --- restore ----------------------------------------------------------

/// A pty made for the restore: its master, and the slave descriptions
/// opened for the image's files.
struct Pair {
    master: OwnedFd,
    index: u32,
    slaves: HashMap<u32, OwnedFd>,
    locked: bool,
}

/// The ptys of a checkpoint, made on first use.
#[derive(Default)]
pub struct Ptys {
    pub infos: HashMap<u32, TtyInfoEntry>,
    pairs: HashMap<u32, Pair>,
}

fn is_master(i: &TtyInfoEntry) -> bool {
    i.rdev == PTMX_RDEV
}

impl Ptys {
    pub fn load(infos: Vec<TtyInfoEntry>) -> Ptys {
        Ptys { infos: infos.into_iter().map(|i| (i.id, i)).collect(), pairs: HashMap::new() }
    }

    fn index_of(&self, info_id: u32) -> Result<(u32, bool)> {
        let i = self.infos.get(&info_id).ok_or_else(|| Error::BadImage(format!("tty-info.img has no entry {info_id}")))?;
        if i.r#type != TtyType::PTY {
            return Err(Error::Unsupported(format!("terminal {info_id} is of type {:?}; only ptys can be restored", i.r#type)));
        }
        let idx = i.pty.as_ref().map(|p| p.index).ok_or_else(|| Error::BadImage(format!("pty entry {info_id} has no index")))?;
        Ok((idx, is_master(i)))
    }

    /// The descriptor for TTY file entry `file_id` (master or a slave
    /// description).
    pub fn open(&mut self, files: &HashMap<u32, FileEntry>, file_id: u32, t: &TtyFileEntry) -> Result<OwnedFd> {
        let (idx, master) = self.index_of(t.tty_info_id)?;
        self.make(files, idx)?;
        let pair = self.pairs.get_mut(&idx).expect("just made");
        if master {
            let fd = pair.master.try_clone().ctx(|| "dup pty master".into())?;
            stasis_sys::fd::set_status_flags(fd.as_fd(), t.flags as i32 & (libc::O_NONBLOCK | libc::O_ASYNC))?;
            return Ok(fd);
        }
        pair.slaves.remove(&file_id).ok_or_else(|| Error::BadImage(format!("pty slave file {file_id} opened twice")))
    }

    /// Create the pair of pty `idx` if not yet made.
    fn make(&mut self, files: &HashMap<u32, FileEntry>, idx: u32) -> Result<()> {
        if self.pairs.contains_key(&idx) {
            return Ok(());
        }
        let (master, got) = open_master(idx)?;
        if got != idx {
            tracing::warn!("pty {idx} is taken here; restored as pty {got} (/dev/pts/{got})");
        }
        let m = master.as_fd();
        set_int(m, TIOCSPTLCK, 0)?;
        let of_pty = |want_master: bool| self.infos.values().find(|i| i.pty.as_ref().map(|p| p.index) == Some(idx) && is_master(i) == want_master);
        let (minfo, sinfo) = (of_pty(true).cloned(), of_pty(false).cloned());
        if let Some(t) = sinfo.as_ref().or(minfo.as_ref()).and_then(|i| i.termios.as_ref()) {
            let mut b = termios_bytes(t, true);
            net::ioctl_buf(m, TCSETS2, &mut b)?;
        }
        if let Some(t) = sinfo.as_ref().or(minfo.as_ref()).and_then(|i| i.termios_locked.as_ref()) {
            let mut b = termios_bytes(t, false);
            if let Err(e) = net::ioctl_buf(m, TIOCSLCKTRMIOS, &mut b) {
                tracing::warn!("pty {idx}: cannot lock its termios settings: {e}");
            }
        }
        if let Some(w) = sinfo.as_ref().or(minfo.as_ref()).and_then(|i| i.winsize.as_ref()) {
            let mut b = Vec::new();
            for v in [w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel] {
                b.extend_from_slice(&(v as u16).to_ne_bytes());
            }
            net::ioctl_buf(m, TIOCSWINSZ, &mut b)?;
        }
        if minfo.as_ref().is_some_and(|i| i.packet_mode) {
            set_int(m, TIOCPKT, 1)?;
        }
        if minfo.as_ref().is_some_and(|i| i.exclusive) {
            net::ioctl_int(m, TIOCEXCL, 0)?;
        }
        // Every slave description the image has, opened now (the pty may
        // be locked again below).
        let mut slaves = HashMap::new();
        if let Some(si) = &sinfo {
            for e in files.values() {
                let Some(t) = e.tty.as_ref().filter(|t| t.tty_info_id == si.id) else { continue };
                let flags = t.flags as i32 & (libc::O_ACCMODE | libc::O_NONBLOCK | libc::O_APPEND | libc::O_ASYNC);
                slaves.insert(e.id, peer(got, flags)?);
            }
            if let Some(s) = slaves.values().next() {
                if let (Some(uid), Some(gid)) = (si.uid, si.gid) {
                    if let Err(e) = std::os::unix::fs::fchown(s, Some(uid), Some(gid)) {
                        tracing::warn!("pty {idx}: cannot give its slave to {uid}:{gid}: {e}");
                    }
                }
                if si.exclusive {
                    net::ioctl_int(s.as_fd(), TIOCEXCL, 0)?;
                }
            }
        }
        let locked = minfo.as_ref().is_some_and(|i| i.locked);
        if locked {
            set_int(m, TIOCSPTLCK, 1)?;
        }
        self.pairs.insert(idx, Pair { master, index: got, slaves, locked });
        Ok(())
    }

    /// A slave descriptor to make `sid`'s controlling terminal, if the
    /// leader of session `sid` had one of our ptys as its terminal.
    pub fn ctty_of(&mut self, files: &HashMap<u32, FileEntry>, sid: u32) -> Result<Option<OwnedFd>> {
        let Some(idx) = self
            .infos
            .values()
            .find(|i| !is_master(i) && i.sid == sid && sid != 0)
            .and_then(|i| i.pty.as_ref().map(|p| p.index))
        else {
            return Ok(None);
        };
        self.make(files, idx)?;
        let pair = &self.pairs[&idx];
        let m = pair.master.as_fd();
        if pair.locked {
            set_int(m, TIOCSPTLCK, 0)?;
        }
        let r = peer(pair.index, libc::O_RDWR);
        if pair.locked {
            set_int(m, TIOCSPTLCK, 1)?;
        }
        tracing::debug!(sid, pty = pair.index, "controlling terminal");
        Ok(Some(r?))
    }

    /// (session, foreground group) of each of our ptys that is a session's
    /// controlling terminal.
    pub fn foregrounds(&self) -> Vec<(u32, u32)> {
        self.infos.values().filter(|i| !is_master(i) && i.sid != 0 && i.pgrp != 0).map(|i| (i.sid, i.pgrp)).collect()
    }
}

/// A slave description of pty `index`, opened by its name (an open from
/// the master with TIOCGPTPEER would leave O_LARGEFILE out of its flags).
fn peer(index: u32, flags: i32) -> Result<OwnedFd> {
    let path = format!("/dev/pts/{index}");
    let f = std::fs::OpenOptions::new()
        .read(flags & libc::O_ACCMODE != libc::O_WRONLY)
        .write(flags & libc::O_ACCMODE != libc::O_RDONLY)
        .custom_flags((flags & !libc::O_ACCMODE) | libc::O_NOCTTY)
        .open(&path)
        .ctx(|| format!("open {path}"))?;
    Ok(f.into())
}

/// Open /dev/ptmx until pty `want` comes up (the kernel hands out the
/// lowest free index), or it is clear that it is taken.
fn open_master(want: u32) -> Result<(OwnedFd, u32)> {
    let open = || -> Result<(OwnedFd, u32)> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/ptmx")
            .ctx(|| "open /dev/ptmx".into())?;
        let idx = get_int(f.as_fd(), TIOCGPTN).ok_or_else(|| Error::Unsupported("/dev/ptmx gives no pty index".into()))?;
        Ok((OwnedFd::from(f), idx as u32))
    };
    // A pty that exists is taken: no use looking for it.
    if std::path::Path::new(&format!("/dev/pts/{want}")).exists() {
        return open();
    }
    let mut spare: Vec<(OwnedFd, u32)> = Vec::new();
    loop {
        let (fd, idx) = match open() {
            Ok(x) => x,
            // Out of descriptors or ptys on the way: settle for the lowest.
            Err(e) if !spare.is_empty() => {
                tracing::debug!("looking for pty {want}: {e}");
                break;
            }
            Err(e) => return Err(e),
        };
        if idx == want {
            return Ok((fd, idx));
        }
        spare.push((fd, idx));
        if idx > want || spare.len() >= 4096 {
            break;
        }
    }
    spare.sort_by_key(|s| s.1);
    Ok(spare.swap_remove(0))
}

/// Make `tty` the controlling terminal of the session leader in `s`
/// (right after its setsid), through a descriptor pulled in by `courier`.
pub fn set_ctty(s: &mut crate::inject::Session<'_>, courier: &super::files::Courier, tty: &OwnedFd) -> Result<()> {
    let fd = courier.pull(s, tty.as_raw_fd())?;
    let r = s.call("ioctl(TIOCSCTTY)", libc::SYS_ioctl, &[fd.0 as u64, TIOCSCTTY, 0]);
    s.call("close", libc::SYS_close, &[fd.0 as u64])?;
    r.map(drop)
}
