//! File locks: flock(2) locks, POSIX record locks and open file
//! description (OFD) locks.
//!
//! Dump: the fdinfo of a descriptor lists the locks it holds ("lock:"
//! lines: for flock and OFD locks those of its open file description, for
//! POSIX locks those its process owns through it). Saved in filelocks.img
//! as CRIU does (kind bits in `flag`, F_RDLCK/F_WRLCK in `type`, `len` 0
//! for "to the end of the file"), only with `--file-locks`: without it a
//! process holding locks is refused, as with CRIU, rather than restored
//! without them.
//!
//! Restore: each lock is taken again by its process, through the same
//! descriptor, once the process's descriptors are all in place (closing
//! any descriptor of a file drops the process's POSIX locks on it). Never
//! waiting: a lock someone else took meanwhile fails the restore.
//!
//! Kernel interfaces: /proc/PID/fdinfo, flock(2), fcntl(2) F_SETLK and
//! F_OFD_SETLK.

use crate::error::{Error, Result};
use crate::inject::{Scratch, Session};
use stasis_image::messages::FileLockEntry;
use stasis_sys::Pid;

pub const FL_POSIX: u32 = 1;
pub const FL_FLOCK: u32 = 2;
pub const FL_OFDLCK: u32 = 1024;
const F_RDLCK: u32 = 0;
const F_WRLCK: u32 = 1;
const F_OFD_SETLK: u64 = 37;

/// The locks descriptor `fd` of `pid` holds, from its fdinfo text.
pub fn from_fdinfo(pid: Pid, fd: i32, text: &str) -> Result<Vec<FileLockEntry>> {
    let mut out = Vec::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("lock:")) {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        let w: Vec<&str> = line.split_whitespace().collect();
        let bad = || Error::Unsupported(format!("fd {fd} of {pid}: cannot read its lock \"{}\"", line.trim()));
        if w.len() < 8 {
            return Err(bad());
        }
        let flag = match w[1] {
            "POSIX" => FL_POSIX,
            "FLOCK" => FL_FLOCK,
            "OFDLCK" => FL_OFDLCK,
            other => {
                return Err(Error::Unsupported(format!("fd {fd} of {pid} holds a {other} lock, which stasis cannot save")));
            }
        };
        let r#type = match w[3] {
            "READ" => F_RDLCK,
            "WRITE" => F_WRLCK,
            other => return Err(Error::Unsupported(format!("fd {fd} of {pid} holds a lock of type {other}, which stasis cannot save"))),
        };
        let start: i64 = w[6].parse().map_err(|_| bad())?;
        let len = match w[7] {
            "EOF" => 0,
            end => end.parse::<i64>().map_err(|_| bad())? + 1 - start,
        };
        out.push(FileLockEntry { flag, r#type, pid, fd, start, len });
    }
    Ok(out)
}

/// Take lock `l` again, inside its process, on its descriptor.
pub fn restore(s: &mut Session<'_>, scratch: &Scratch, l: &FileLockEntry) -> Result<()> {
    let what = || {
        let kind = match l.flag {
            FL_FLOCK => "flock",
            FL_OFDLCK => "OFD lock",
            _ => "POSIX lock",
        };
        format!("{kind} on fd {} of {}", l.fd, l.pid)
    };
    let r = if l.flag & FL_FLOCK != 0 {
        let op = match l.r#type {
            F_RDLCK => libc::LOCK_SH,
            F_WRLCK => libc::LOCK_EX,
            t => return Err(Error::BadImage(format!("{}: unknown lock type {t}", what()))),
        };
        s.raw(libc::SYS_flock, &[l.fd as u64, (op | libc::LOCK_NB) as u64])?
    } else if l.flag & (FL_POSIX | FL_OFDLCK) != 0 {
        if l.r#type > F_WRLCK {
            return Err(Error::BadImage(format!("{}: unknown lock type {}", what(), l.r#type)));
        }
        // struct flock: l_type, l_whence (i16), l_start, l_len (i64), l_pid
        let mut fl = [0u8; 32];
        fl[0..2].copy_from_slice(&(l.r#type as i16).to_ne_bytes());
        fl[2..4].copy_from_slice(&(libc::SEEK_SET as i16).to_ne_bytes());
        fl[8..16].copy_from_slice(&l.start.to_ne_bytes());
        fl[16..24].copy_from_slice(&l.len.to_ne_bytes());
        let at = scratch.at(0);
        s.write(at, &fl)?;
        let cmd = if l.flag & FL_OFDLCK != 0 { F_OFD_SETLK } else { libc::F_SETLK as u64 };
        s.raw(libc::SYS_fcntl, &[l.fd as u64, cmd, at.0])?
    } else {
        return Err(Error::BadImage(format!("{}: unknown lock kind {:#x}", what(), l.flag)));
    };
    match r {
        0 => Ok(()),
        e if e == -i64::from(libc::EAGAIN) || e == -i64::from(libc::EWOULDBLOCK) || e == -i64::from(libc::EACCES) => {
            Err(Error::Refused(format!("{}: another process holds a conflicting lock on the file now", what())))
        }
        e => Err(Error::Unsupported(format!("{}: {}", what(), std::io::Error::from_raw_os_error(-e as i32)))),
    }
}
