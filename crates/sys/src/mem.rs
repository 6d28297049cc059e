//! Copying memory between our address space and a target's.
//!
//! Kernel interfaces: process_vm_readv(2), process_vm_writev(2). They need
//! read (or write) permission on the remote pages; for PROT_NONE or
//! write-only memory the engine reads `/proc/PID/mem` instead, which
//! forces access.

use crate::{Error, Pid, RemoteAddr, Result};

/// Read `buf.len()` bytes at `addr` of `pid`. Returns how many bytes were
/// read, which is short only when the range runs into memory that cannot
/// be read.
pub fn read(pid: Pid, addr: RemoteAddr, buf: &mut [u8]) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let local = libc::iovec { iov_base: buf[done..].as_mut_ptr().cast(), iov_len: buf.len() - done };
        let remote = libc::iovec { iov_base: (addr.0 + done as u64) as *mut libc::c_void, iov_len: buf.len() - done };
        // SAFETY: `local` describes the writable tail of `buf`, which we
        // borrow mutably for the call; `remote` is only an address in the
        // other process and is never dereferenced here.
        let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
        if n < 0 {
            if done > 0 && crate::errno() == libc::EFAULT {
                break;
            }
            return Err(Error::os("process_vm_readv", pid));
        }
        if n == 0 {
            break;
        }
        done += n as usize;
    }
    Ok(done)
}

/// Read many remote ranges into consecutive parts of `buf` with one call
/// (up to `IOV_MAX` ranges). The ranges' lengths must add up to at most
/// `buf.len()`. Returns the number of bytes read.
pub fn read_ranges(pid: Pid, ranges: &[(RemoteAddr, usize)], buf: &mut [u8]) -> Result<usize> {
    let total: usize = ranges.iter().map(|r| r.1).sum();
    assert!(total <= buf.len(), "read_ranges: buffer too small");
    let mut done_total = 0;
    for chunk in ranges.chunks(1024) {
        let remote: Vec<libc::iovec> =
            chunk.iter().map(|(a, l)| libc::iovec { iov_base: a.0 as *mut libc::c_void, iov_len: *l }).collect();
        let len: usize = chunk.iter().map(|r| r.1).sum();
        let dst = &mut buf[done_total..done_total + len];
        let local = libc::iovec { iov_base: dst.as_mut_ptr().cast(), iov_len: len };
        // SAFETY: `local` covers `dst`, a mutable borrow of our buffer for
        // the call; the remote iovecs hold addresses in the other process
        // only.
        let n = unsafe { libc::process_vm_readv(pid, &local, 1, remote.as_ptr(), remote.len() as libc::c_ulong, 0) };
        if n < 0 {
            return Err(Error::os("process_vm_readv", pid));
        }
        done_total += n as usize;
        if (n as usize) < len {
            break;
        }
    }
    Ok(done_total)
}

/// Write `data` at `addr` of `pid`; all of it or an error.
pub fn write(pid: Pid, addr: RemoteAddr, data: &[u8]) -> Result<()> {
    let mut done = 0;
    while done < data.len() {
        let local = libc::iovec { iov_base: data[done..].as_ptr() as *mut libc::c_void, iov_len: data.len() - done };
        let remote = libc::iovec { iov_base: (addr.0 + done as u64) as *mut libc::c_void, iov_len: data.len() - done };
        // SAFETY: the kernel only reads through `local`, which covers the
        // borrowed `data`; `remote` is an address in the other process.
        let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
        if n <= 0 {
            return Err(Error::os("process_vm_writev", pid));
        }
        done += n as usize;
    }
    Ok(())
}
