//! Sockets and the other descriptor kinds the kernel only offers as raw
//! calls: socket(2), socketpair(2), bind(2), connect(2), listen(2),
//! accept4(2), getsockname(2), getpeername(2), getsockopt(2),
//! setsockopt(2), sendmsg(2), recvmsg(2) (with SCM_RIGHTS), shutdown(2),
//! eventfd(2), epoll_create1(2), signalfd(2), timerfd_create(2),
//! timerfd_settime(2), memfd_create(2), inotify_init1(2),
//! inotify_add_watch(2), inotify_rm_watch(2), open_by_handle_at(2), ioctl(2).
//!
//! Socket addresses cross this API as raw `struct sockaddr` bytes, so no
//! libc type leaks into safe code.

use crate::{Error, Result};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn owned(r: libc::c_int, op: &'static str) -> Result<OwnedFd> {
    if r < 0 {
        return Err(Error::os(op, 0));
    }
    // SAFETY: the kernel just returned this new descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

fn ok(r: libc::c_int, op: &'static str) -> Result<()> {
    if r < 0 {
        Err(Error::os(op, 0))
    } else {
        Ok(())
    }
}

pub fn socket(domain: i32, ty: i32, proto: i32) -> Result<OwnedFd> {
    // SAFETY: integer arguments only.
    owned(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) }, "socket")
}

pub fn socketpair(domain: i32, ty: i32) -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a live two-int array for the kernel to fill.
    ok(unsafe { libc::socketpair(domain, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) }, "socketpair")?;
    // SAFETY: both descriptors were just created for us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn bind(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<()> {
    // SAFETY: `addr` is a live byte buffer of the given length holding a
    // sockaddr; the kernel only reads it.
    ok(unsafe { libc::bind(fd.as_raw_fd(), addr.as_ptr().cast(), addr.len() as libc::socklen_t) }, "bind")
}

pub fn connect(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<()> {
    // SAFETY: as for bind.
    ok(unsafe { libc::connect(fd.as_raw_fd(), addr.as_ptr().cast(), addr.len() as libc::socklen_t) }, "connect")
}

pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    ok(unsafe { libc::listen(fd.as_raw_fd(), backlog) }, "listen")
}

pub fn accept(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    // SAFETY: null address pointers: the peer address is not wanted.
    owned(unsafe { libc::accept4(fd.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) }, "accept4")
}

pub fn shutdown(fd: BorrowedFd<'_>, how: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    ok(unsafe { libc::shutdown(fd.as_raw_fd(), how) }, "shutdown")
}

fn name(fd: BorrowedFd<'_>, peer: bool) -> Result<Vec<u8>> {
    let mut buf = [0u8; 128];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` and `len` are live and describe each other.
    let r = unsafe {
        if peer {
            libc::getpeername(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len)
        } else {
            libc::getsockname(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len)
        }
    };
    ok(r, if peer { "getpeername" } else { "getsockname" })?;
    Ok(buf[..(len as usize).min(buf.len())].to_vec())
}

pub fn sockname(fd: BorrowedFd<'_>) -> Result<Vec<u8>> {
    name(fd, false)
}

pub fn peername(fd: BorrowedFd<'_>) -> Result<Vec<u8>> {
    name(fd, true)
}

/// getsockopt into `buf`; returns the length the kernel wrote.
pub fn getsockopt(fd: BorrowedFd<'_>, level: i32, opt: i32, buf: &mut [u8]) -> Result<usize> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` and `len` are live and describe each other.
    ok(unsafe { libc::getsockopt(fd.as_raw_fd(), level, opt, buf.as_mut_ptr().cast(), &mut len) }, "getsockopt")?;
    Ok(len as usize)
}

pub fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, opt: i32) -> Result<i32> {
    let mut b = [0u8; 4];
    getsockopt(fd, level, opt, &mut b)?;
    Ok(i32::from_ne_bytes(b))
}

pub fn setsockopt(fd: BorrowedFd<'_>, level: i32, opt: i32, val: &[u8]) -> Result<()> {
    // SAFETY: the kernel only reads `val`, a live buffer of that length.
    ok(unsafe { libc::setsockopt(fd.as_raw_fd(), level, opt, val.as_ptr().cast(), val.len() as libc::socklen_t) }, "setsockopt")
}

pub fn setsockopt_int(fd: BorrowedFd<'_>, level: i32, opt: i32, v: i32) -> Result<()> {
    setsockopt(fd, level, opt, &v.to_ne_bytes())
}

/// One message read with recvmsg(2).
#[derive(Debug, Default)]
pub struct Received {
    pub len: usize,
    /// Sender address (datagram sockets), raw sockaddr.
    pub addr: Vec<u8>,
    /// Descriptors that came with it (SCM_RIGHTS), now ours.
    pub fds: Vec<OwnedFd>,
    /// MSG_TRUNC: the message was longer than the buffer.
    pub truncated: bool,
    /// MSG_CTRUNC: ancillary data (descriptors) did not fit or could not
    /// be received.
    pub ctrunc: bool,
}

pub fn recvmsg(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> Result<Received> {
    let mut addr = [0u8; 128];
    let mut cbuf = [0u64; 64]; // 512 bytes, aligned for cmsghdr
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is valid; every pointer set below points
    // at a live local buffer of the stated size.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_mut_ptr().cast();
    msg.msg_namelen = addr.len() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: `msg` describes live buffers; the kernel writes within them.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(Error::os("recvmsg", 0));
    }
    let mut out = Received {
        len: n as usize,
        addr: addr[..(msg.msg_namelen as usize).min(addr.len())].to_vec(),
        fds: Vec::new(),
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        ctrunc: msg.msg_flags & libc::MSG_CTRUNC != 0,
    };
    // SAFETY: CMSG_* walk the control buffer the kernel just filled, within
    // msg_controllen; SCM_RIGHTS data is an array of ints.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    out.fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(out)
}

/// sendmsg(2) of one buffer, to `addr` if given.
pub fn sendmsg(fd: BorrowedFd<'_>, data: &[u8], addr: Option<&[u8]>, flags: i32) -> Result<usize> {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: an all-zero msghdr is valid; pointers set below are to live
    // buffers the kernel only reads.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    if let Some(a) = addr {
        msg.msg_name = a.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = a.len() as libc::socklen_t;
    }
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: `msg` describes live buffers.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags | libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(Error::os("sendmsg", 0));
    }
    Ok(n as usize)
}

pub fn eventfd(count: u32, flags: i32) -> Result<OwnedFd> {
    // SAFETY: integer arguments only.
    owned(unsafe { libc::eventfd(count, flags | libc::EFD_CLOEXEC) }, "eventfd")
}

pub fn epoll_create() -> Result<OwnedFd> {
    // SAFETY: integer arguments only.
    owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }, "epoll_create1")
}

pub fn signalfd(mask: u64, flags: i32) -> Result<OwnedFd> {
    // SAFETY: the kernel reads 8 bytes of mask from a live u64.
    let r = unsafe { libc::syscall(libc::SYS_signalfd4, -1, &mask as *const u64, 8usize, flags | libc::SFD_CLOEXEC) };
    owned(r as i32, "signalfd4")
}

pub fn timerfd_create(clock: i32, flags: i32) -> Result<OwnedFd> {
    // SAFETY: integer arguments only.
    owned(unsafe { libc::timerfd_create(clock, flags | libc::TFD_CLOEXEC) }, "timerfd_create")
}

/// Arm a timerfd: (interval, value) as (seconds, nanoseconds).
pub fn timerfd_settime(fd: BorrowedFd<'_>, flags: i32, interval: (i64, i64), value: (i64, i64)) -> Result<()> {
    let spec = libc::itimerspec {
        it_interval: libc::timespec { tv_sec: interval.0, tv_nsec: interval.1 },
        it_value: libc::timespec { tv_sec: value.0, tv_nsec: value.1 },
    };
    // SAFETY: `spec` is live; no old value is requested.
    ok(unsafe { libc::timerfd_settime(fd.as_raw_fd(), flags, &spec, std::ptr::null_mut()) }, "timerfd_settime")
}

/// ioctl with an integer or pointer-to-u64 argument.
pub fn ioctl_u64(fd: BorrowedFd<'_>, req: u64, arg: &mut u64) -> Result<i32> {
    // SAFETY: the request takes a pointer to a u64, which is live.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut u64) };
    if r < 0 {
        return Err(Error::os("ioctl", 0));
    }
    Ok(r)
}

pub fn ioctl_int(fd: BorrowedFd<'_>, req: u64, arg: i32) -> Result<i32> {
    // SAFETY: the request takes a plain integer argument.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as libc::c_long) };
    if r < 0 {
        return Err(Error::os("ioctl", 0));
    }
    Ok(r)
}

/// ioctl whose argument is a buffer the kernel reads or fills.
pub fn ioctl_buf(fd: BorrowedFd<'_>, req: u64, buf: &mut [u8]) -> Result<i32> {
    // SAFETY: the request reads or writes at most `buf.len()` bytes, which
    // the callers size for it.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, buf.as_mut_ptr()) };
    if r < 0 {
        return Err(Error::os("ioctl", 0));
    }
    Ok(r)
}

pub fn memfd_create(name: &str, flags: u32) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(name).map_err(|_| Error::errno("memfd_create", 0, libc::EINVAL))?;
    // SAFETY: `c` is a live NUL-terminated string.
    owned(unsafe { libc::memfd_create(c.as_ptr(), flags | libc::MFD_CLOEXEC) }, "memfd_create")
}

pub fn fcntl_int(fd: BorrowedFd<'_>, cmd: i32, arg: i32) -> Result<i32> {
    // SAFETY: integer-argument fcntl commands only.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, arg) };
    if r < 0 {
        return Err(Error::os("fcntl", 0));
    }
    Ok(r)
}

pub fn inotify_init(flags: i32) -> Result<OwnedFd> {
    // SAFETY: integer arguments only.
    owned(unsafe { libc::inotify_init1(flags | libc::IN_CLOEXEC) }, "inotify_init1")
}

pub fn inotify_add_watch(fd: BorrowedFd<'_>, path: &std::path::Path, mask: u32) -> Result<i32> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::errno("inotify_add_watch", 0, libc::EINVAL))?;
    // SAFETY: `c` is a live NUL-terminated path.
    let r = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) };
    if r < 0 {
        return Err(Error::os("inotify_add_watch", 0));
    }
    Ok(r)
}

pub fn inotify_rm_watch(fd: BorrowedFd<'_>, wd: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    ok(unsafe { libc::inotify_rm_watch(fd.as_raw_fd(), wd) }, "inotify_rm_watch")
}

/// Open a file by handle (struct file_handle bytes: size, type, handle)
/// relative to the mount of `mount_fd`.
pub fn open_by_handle(mount_fd: BorrowedFd<'_>, handle_type: i32, handle: &[u8]) -> Result<OwnedFd> {
    let mut buf = Vec::with_capacity(8 + handle.len());
    buf.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
    buf.extend_from_slice(&handle_type.to_ne_bytes());
    buf.extend_from_slice(handle);
    // SAFETY: `buf` holds a complete struct file_handle the kernel reads.
    let r = unsafe {
        libc::syscall(libc::SYS_open_by_handle_at, mount_fd.as_raw_fd(), buf.as_ptr(), libc::O_PATH | libc::O_CLOEXEC)
    };
    owned(r as i32, "open_by_handle_at")
}
