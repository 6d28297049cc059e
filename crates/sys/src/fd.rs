//! Small descriptor operations std does not offer.
//!
//! Kernel interfaces: pipe2(2), fcntl(2) `F_GETPIPE_SZ`/`F_SETPIPE_SZ`/
//! `F_GETFL`/`F_SETFL`, tee(2).

use crate::{Error, Result};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A new pipe: (read end, write end), close-on-exec.
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a live two-int array for the kernel to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(Error::os("pipe2", 0));
    }
    // SAFETY: the kernel just returned these two new descriptors; we own them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn fcntl(fd: BorrowedFd<'_>, cmd: i32, arg: i64) -> Result<i64> {
    // SAFETY: integer-argument fcntl commands only; `fd` is borrowed.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, arg) };
    if r < 0 {
        return Err(Error::os("fcntl", 0));
    }
    Ok(i64::from(r))
}

pub fn pipe_size(fd: BorrowedFd<'_>) -> Result<u32> {
    fcntl(fd, libc::F_GETPIPE_SZ, 0).map(|v| v as u32)
}

pub fn set_pipe_size(fd: BorrowedFd<'_>, size: u32) -> Result<()> {
    fcntl(fd, libc::F_SETPIPE_SZ, i64::from(size)).map(drop)
}

pub fn status_flags(fd: BorrowedFd<'_>) -> Result<i32> {
    fcntl(fd, libc::F_GETFL, 0).map(|v| v as i32)
}

pub fn set_status_flags(fd: BorrowedFd<'_>, flags: i32) -> Result<()> {
    fcntl(fd, libc::F_SETFL, i64::from(flags)).map(drop)
}

/// Copy what is buffered in a pipe without consuming it (tee(2) into a
/// pipe of our own, then read that).
pub fn pipe_peek(read_end: BorrowedFd<'_>) -> Result<Vec<u8>> {
    let cap = pipe_size(read_end)?;
    let (r, w) = pipe()?;
    set_pipe_size(std::os::fd::AsFd::as_fd(&w), cap)?;
    // SAFETY: integer arguments only; both fds are live for the call.
    let n = unsafe { libc::tee(read_end.as_raw_fd(), w.as_raw_fd(), cap as usize, libc::SPLICE_F_NONBLOCK) };
    if n < 0 {
        if crate::errno() == libc::EAGAIN {
            return Ok(Vec::new());
        }
        return Err(Error::os("tee", 0));
    }
    drop(w);
    let mut data = Vec::with_capacity(n as usize);
    use std::io::Read;
    std::fs::File::from(r).read_to_end(&mut data).map_err(|e| Error::Os { op: "read pipe copy", pid: 0, source: e })?;
    Ok(data)
}

/// How much of a file is in the page cache (cachestat(2), Linux 6.5):
/// (cached pages, total pages), or `None` if the kernel lacks the call.
pub fn cached_pages(fd: BorrowedFd<'_>, len: u64) -> Option<(u64, u64)> {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451;
    let range = Range { off: 0, len };
    let mut st = Stat::default();
    // SAFETY: both structs are live and sized as the kernel expects; the
    // kernel only writes `st`.
    let r = unsafe { libc::syscall(SYS_CACHESTAT, fd.as_raw_fd(), &range as *const Range, &mut st as *mut Stat, 0) };
    (r == 0).then_some((st.nr_cache, len.div_ceil(4096)))
}

/// Drop a range of a file's clean pages from the page cache
/// (posix_fadvise POSIX_FADV_DONTNEED).
pub fn drop_cache(fd: BorrowedFd<'_>, off: u64, len: u64) {
    // SAFETY: integer arguments only; advice never fails in a way that
    // matters here (it is a hint).
    unsafe { libc::posix_fadvise(fd.as_raw_fd(), off as i64, len as i64, libc::POSIX_FADV_DONTNEED) };
}

/// A new pseudo-terminal pair: (master, slave).
pub fn openpty() -> Result<(OwnedFd, OwnedFd)> {
    let (mut m, mut s) = (0i32, 0i32);
    // SAFETY: `m` and `s` are live ints for the kernel to fill; the name,
    // termios and winsize pointers are null (optional).
    let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    if r < 0 {
        return Err(Error::os("openpty", 0));
    }
    // SAFETY: both descriptors were just created for us.
    Ok(unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) })
}


/// The magic number of the filesystem a descriptor's file lives on
/// (`statfs.f_type`).
pub fn fs_type(fd: BorrowedFd<'_>) -> Result<i64> {
    // SAFETY: an all-zero statfs is valid; the kernel fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, correctly sized buffer.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(Error::os("fstatfs", 0));
    }
    Ok(st.f_type as i64)
}
