//! Syscall sessions in stopped tasks: the only way to read or change state
//! that the kernel exposes to the task itself alone (signal actions,
//! timers, the alternate stack, most prctls), and the way restore builds a
//! new process from the inside.
//!
//! A session blocks every signal but SIGTRAP while it runs (so no handler
//! can run between our calls; SIGTRAP stays open because the single-step
//! trap is forced and would otherwise rewrite the task's signal state),
//! and puts the task's mask and registers back when it ends.

use crate::error::{Error, Result};
use crate::procfs::Mapping;
use stasis_sys::{mem, Pid, Remote, RemoteAddr, Tracee, PAGE_SIZE};

/// Signal mask bit of signal `sig`.
pub fn sigbit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Find a `syscall` instruction (`0f 05`) in an executable mapping of
/// `pid`, preferring the vDSO, whose contents the kernel provides.
pub fn find_gadget(pid: Pid, maps: &[Mapping]) -> Result<RemoteAddr> {
    let mut order: Vec<&Mapping> = maps.iter().filter(|m| m.exec && m.read).collect();
    order.sort_by_key(|m| m.name != "[vdso]");
    for m in order {
        let len = m.len().min(1 << 20) as usize;
        let mut buf = vec![0u8; len];
        let Ok(n) = mem::read(pid, RemoteAddr(m.start), &mut buf) else { continue };
        if let Some(i) = buf[..n].windows(2).position(|w| w == [0x0f, 0x05]) {
            return Ok(RemoteAddr(m.start + i as u64));
        }
    }
    Err(Error::Unsupported(format!("no syscall instruction found in the executable memory of {pid}")))
}

/// A region of memory we mapped into a task for call arguments.
#[derive(Clone, Copy, Debug)]
pub struct Scratch {
    pub addr: RemoteAddr,
    pub len: u64,
}

impl Scratch {
    pub fn at(&self, off: u64) -> RemoteAddr {
        assert!(off < self.len, "scratch offset {off} out of range");
        self.addr.add(off)
    }
}

/// One syscall session in one thread.
pub struct Session<'a> {
    pub r: Remote<'a>,
    /// Thread group id: whose memory `read`/`write` access.
    pub pid: Pid,
    saved_mask: u64,
}

impl<'a> Session<'a> {
    pub fn begin(t: &'a Tracee, pid: Pid, gadget: RemoteAddr) -> Result<Session<'a>> {
        let saved_mask = t.sigmask()?;
        t.set_sigmask(!sigbit(libc::SIGTRAP))?;
        let r = match Remote::new(t, gadget) {
            Ok(r) => r,
            Err(e) => {
                let _ = t.set_sigmask(saved_mask);
                return Err(e.into());
            }
        };
        Ok(Session { r, pid, saved_mask })
    }

    pub fn tid(&self) -> Pid {
        self.r.tracee().tid()
    }

    /// Run a call; failure is an error naming `op`.
    pub fn call(&mut self, op: &'static str, nr: i64, args: &[u64]) -> Result<u64> {
        Ok(self.r.call(op, nr, args)?)
    }

    /// Run a call and return its raw result (negative errno on failure).
    pub fn raw(&mut self, nr: i64, args: &[u64]) -> Result<i64> {
        Ok(self.r.raw(nr, args)?)
    }

    pub fn write(&self, addr: RemoteAddr, data: &[u8]) -> Result<()> {
        Ok(mem::write(self.pid, addr, data)?)
    }

    pub fn read(&self, addr: RemoteAddr, len: usize) -> Result<Vec<u8>> {
        let mut b = vec![0u8; len];
        let n = mem::read(self.pid, addr, &mut b)?;
        if n != len {
            return Err(Error::Unsupported(format!("short read of {len} bytes at {addr} in {}", self.pid)));
        }
        Ok(b)
    }

    pub fn read_u64(&self, addr: RemoteAddr) -> Result<u64> {
        let b = self.read(addr, 8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    /// Map `len` bytes of private anonymous read-write memory anywhere.
    pub fn map_scratch(&mut self, len: u64) -> Result<Scratch> {
        let len = len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let a = self.call(
            "mmap scratch",
            libc::SYS_mmap,
            &[0, len, (libc::PROT_READ | libc::PROT_WRITE) as u64, (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64, u64::MAX, 0],
        )?;
        Ok(Scratch { addr: RemoteAddr(a), len })
    }

    pub fn unmap(&mut self, s: Scratch) -> Result<()> {
        self.call("munmap scratch", libc::SYS_munmap, &[s.addr.0, s.len]).map(drop)
    }

    /// Put back the task's registers and signal mask.
    pub fn end(self) -> Result<()> {
        self.r.restore_regs()?;
        self.r.tracee().set_sigmask(self.saved_mask)?;
        Ok(())
    }

    /// The mask the task had when the session began.
    pub fn saved_mask(&self) -> u64 {
        self.saved_mask
    }

    /// Change the mask that [`Session::end`] puts back.
    pub fn set_saved_mask(&mut self, m: u64) {
        self.saved_mask = m;
    }
}
