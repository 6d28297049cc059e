//! Registers: general purpose (with fs/gs base) and the XSAVE area (x87,
//! SSE, AVX, AVX-512 opmask and upper halves, MPX, PKRU).
//!
//! Kernel interfaces: `PTRACE_GETREGS`/`SETREGS`, `PTRACE_GETREGSET`/
//! `SETREGSET` with `NT_X86_XSTATE` (the standard, non-compacted XSAVE
//! layout), CPUID leaf 0xD for the component offsets.
//!
//! The image keeps registers exactly as they were, including a system call
//! the task was stopped in (`orig_ax` and the kernel's restart code in
//! `ax`); [`restart_syscall`] turns that into the registers a restored task
//! must resume with.

use crate::error::{Error, Result};
use stasis_image::messages::{March, UserX86FpregsEntry, UserX86RegsEntry, UserX86RegsMode, UserX86XsaveEntry};
use stasis_sys::{Regs, Tracee};

pub fn gp_to_image(r: &Regs) -> UserX86RegsEntry {
    UserX86RegsEntry {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        bp: r.rbp,
        bx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        ax: r.rax,
        cx: r.rcx,
        dx: r.rdx,
        si: r.rsi,
        di: r.rdi,
        orig_ax: r.orig_rax,
        ip: r.rip,
        cs: r.cs,
        flags: r.eflags,
        sp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
        mode: Some(UserX86RegsMode::NATIVE),
    }
}

pub fn gp_from_image(e: &UserX86RegsEntry) -> Result<Regs> {
    if e.mode.is_some_and(|m| m != UserX86RegsMode::NATIVE) || e.cs != 0x33 {
        return Err(Error::Unsupported(format!("32-bit (compat mode) tasks are not supported (cs {:#x})", e.cs)));
    }
    let mut r = stasis_sys::ptrace::zero_regs();
    r.r15 = e.r15;
    r.r14 = e.r14;
    r.r13 = e.r13;
    r.r12 = e.r12;
    r.rbp = e.bp;
    r.rbx = e.bx;
    r.r11 = e.r11;
    r.r10 = e.r10;
    r.r9 = e.r9;
    r.r8 = e.r8;
    r.rax = e.ax;
    r.rcx = e.cx;
    r.rdx = e.dx;
    r.rsi = e.si;
    r.rdi = e.di;
    r.orig_rax = e.orig_ax;
    r.rip = e.ip;
    r.cs = e.cs;
    // Never resume with the trap or resume flag set.
    r.eflags = e.flags & !(0x100 | 0x10000);
    r.rsp = e.sp;
    r.ss = e.ss;
    r.fs_base = e.fs_base;
    r.gs_base = e.gs_base;
    r.ds = e.ds;
    r.es = e.es;
    r.fs = e.fs;
    r.gs = e.gs;
    Ok(r)
}

const ERESTARTSYS: i64 = 512;
const ERESTARTNOINTR: i64 = 513;
const ERESTARTNOHAND: i64 = 514;
const ERESTART_RESTARTBLOCK: i64 = 516;
const TIMER_ABSTIME: u64 = 1;

/// The registers a restored task resumes with, given those it was stopped
/// with. A task interrupted in a system call must redo it; the kernel's
/// own restart state (restart blocks) does not survive a checkpoint, so
/// sleeps are redone from the remaining time the kernel wrote back, poll
/// and futex waits are redone from their arguments (a timeout starts
/// again: the wait may be longer, but never fails with an EINTR the
/// program could not have seen without a signal handler; programs such as
/// script(1) end on one), and other restart-block calls return EINTR.
/// Returns whether the call will be redone.
pub fn restart_syscall(r: &mut Regs) -> bool {
    let nr = r.orig_rax as i64;
    if nr < 0 {
        return false;
    }
    let err = -(r.rax as i64);
    let redo = match err {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => true,
        ERESTART_RESTARTBLOCK => match nr {
            libc::SYS_nanosleep if r.rsi != 0 => {
                // nanosleep(req, rem): rem holds what was left.
                r.rdi = r.rsi;
                true
            }
            libc::SYS_clock_nanosleep if r.rsi & TIMER_ABSTIME != 0 => true,
            libc::SYS_clock_nanosleep if r.r10 != 0 => {
                // clock_nanosleep(clock, flags, req, rem)
                r.rdx = r.r10;
                true
            }
            // Their arguments are still in the registers.
            libc::SYS_poll | libc::SYS_futex => true,
            _ => {
                r.rax = (-(libc::EINTR as i64)) as u64;
                false
            }
        },
        _ => false,
    };
    if redo {
        r.rax = r.orig_rax;
        r.rip -= 2;
    }
    // Keep the kernel from applying its own restart logic on top.
    r.orig_rax = u64::MAX;
    redo
}

/// Offsets and sizes of XSAVE components in the standard layout.
#[derive(Clone, Copy, Debug)]
struct Component {
    offset: usize,
    size: usize,
}

fn component(i: u32) -> Option<Component> {
    let r = core::arch::x86_64::__cpuid_count(0xd, i);
    (r.eax != 0).then_some(Component { offset: r.ebx as usize, size: r.eax as usize })
}

/// The XSAVE features this machine restores: those the CPU supports
/// (CPUID 0xD.0) whose state fits in the area the kernel hands out.
fn supported_features(area_len: usize) -> u64 {
    let r = core::arch::x86_64::__cpuid_count(0xd, 0);
    let cpu = u64::from(r.eax) | (u64::from(r.edx) << 32);
    let mut mask = 3u64;
    for i in 2..64u32 {
        if cpu & (1 << i) != 0 && component(i).is_some_and(|c| c.offset + c.size <= area_len) {
            mask |= 1 << i;
        }
    }
    mask
}

/// XSAVE feature bits and the image fields that carry them.
const YMM: u32 = 2;
const BNDREGS: u32 = 3;
const BNDCSR: u32 = 4;
const OPMASK: u32 = 5;
const ZMM_HI256: u32 = 6;
const HI16_ZMM: u32 = 7;
const PKRU: u32 = 9;

fn le_u16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le_u32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]))
}
fn le_u64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

fn words32(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4]))).collect()
}
fn words64(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
}

/// The image form of an XSAVE area read with `PTRACE_GETREGSET`.
pub fn xstate_to_image(x: &[u8]) -> Result<UserX86FpregsEntry> {
    if x.len() < 512 {
        return Err(Error::Unsupported(format!("XSAVE area of {} bytes is too small", x.len())));
    }
    let mut fp = UserX86FpregsEntry {
        cwd: u32::from(le_u16(x, 0)),
        swd: u32::from(le_u16(x, 2)),
        twd: u32::from(x[4]),
        fop: u32::from(le_u16(x, 6)),
        rip: le_u64(x, 8),
        rdp: le_u64(x, 16),
        mxcsr: le_u32(x, 24),
        mxcsr_mask: le_u32(x, 28),
        st_space: words32(&x[32..160]),
        xmm_space: words32(&x[160..416]),
        padding: Vec::new(),
        xsave: None,
    };
    if x.len() >= 576 {
        let bv = le_u64(x, 512);
        let part = |i: u32| -> Option<&[u8]> {
            let c = component(i)?;
            x.get(c.offset..c.offset + c.size)
        };
        let mut xs = UserX86XsaveEntry { xstate_bv: bv, ..UserX86XsaveEntry::default() };
        if let Some(b) = part(YMM) {
            xs.ymmh_space = words32(b);
        }
        if let Some(b) = part(BNDREGS) {
            xs.bndreg_state = words64(b);
        }
        if let Some(b) = part(BNDCSR) {
            xs.bndcsr_state = words64(b);
        }
        if let Some(b) = part(OPMASK) {
            xs.opmask_reg = words64(b);
        }
        if let Some(b) = part(ZMM_HI256) {
            xs.zmm_upper = words64(b);
        }
        if let Some(b) = part(HI16_ZMM) {
            xs.hi16_zmm = words64(b);
        }
        if let Some(b) = part(PKRU) {
            xs.pkru = words32(&b[..4.min(b.len())]);
        }
        fp.xsave = Some(xs);
    }
    Ok(fp)
}

fn put32(x: &mut [u8], o: usize, v: u32) {
    x[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(x: &mut [u8], o: usize, v: u64) {
    x[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_words32(x: &mut [u8], o: usize, max: usize, w: &[u32]) -> Result<()> {
    if w.len() * 4 > max {
        return Err(Error::BadImage(format!("register area of {} words does not fit in {max} bytes", w.len())));
    }
    for (i, v) in w.iter().enumerate() {
        put32(x, o + i * 4, *v);
    }
    Ok(())
}

fn put_words64(x: &mut [u8], o: usize, max: usize, w: &[u64]) -> Result<()> {
    if w.len() * 8 > max {
        return Err(Error::BadImage(format!("register area of {} words does not fit in {max} bytes", w.len())));
    }
    for (i, v) in w.iter().enumerate() {
        put64(x, o + i * 8, *v);
    }
    Ok(())
}

/// Fill an XSAVE area (`template`, as read from the task being restored,
/// gives the size this kernel expects) from the image.
pub fn xstate_from_image(fp: &UserX86FpregsEntry, template: &[u8]) -> Result<Vec<u8>> {
    let mut x = vec![0u8; template.len().max(576)];
    x[0..2].copy_from_slice(&(fp.cwd as u16).to_le_bytes());
    x[2..4].copy_from_slice(&(fp.swd as u16).to_le_bytes());
    x[4] = fp.twd as u8;
    x[6..8].copy_from_slice(&(fp.fop as u16).to_le_bytes());
    put64(&mut x, 8, fp.rip);
    put64(&mut x, 16, fp.rdp);
    put32(&mut x, 24, fp.mxcsr);
    put32(&mut x, 28, fp.mxcsr_mask);
    put_words32(&mut x, 32, 128, &fp.st_space)?;
    put_words32(&mut x, 160, 256, &fp.xmm_space)?;
    let supported = supported_features(template.len());
    let mut bv = 3u64; // x87 and SSE are always restored from the legacy area
    if let Some(xs) = &fp.xsave {
        bv = xs.xstate_bv;
        let missing = bv & !supported;
        if missing != 0 {
            return Err(Error::Unsupported(format!(
                "the image uses CPU register state {missing:#x} that this machine does not have (it supports {supported:#x})"
            )));
        }
        let mut fill32 = |i: u32, w: &[u32]| -> Result<()> {
            if w.is_empty() {
                return Ok(());
            }
            let c = component(i).ok_or_else(|| Error::Unsupported(format!("this CPU lacks XSAVE component {i}")))?;
            put_words32(&mut x, c.offset, c.size, w)
        };
        fill32(YMM, &xs.ymmh_space)?;
        fill32(PKRU, &xs.pkru)?;
        let mut fill64 = |i: u32, w: &[u64]| -> Result<()> {
            if w.is_empty() {
                return Ok(());
            }
            let c = component(i).ok_or_else(|| Error::Unsupported(format!("this CPU lacks XSAVE component {i}")))?;
            put_words64(&mut x, c.offset, c.size, w)
        };
        fill64(BNDREGS, &xs.bndreg_state)?;
        fill64(BNDCSR, &xs.bndcsr_state)?;
        fill64(OPMASK, &xs.opmask_reg)?;
        fill64(ZMM_HI256, &xs.zmm_upper)?;
        fill64(HI16_ZMM, &xs.hi16_zmm)?;
    }
    put64(&mut x, 512, bv);
    x.truncate(template.len().max(576));
    Ok(x)
}

/// Registers of one thread for the image.
pub fn dump(t: &Tracee) -> Result<(Regs, UserX86FpregsEntry)> {
    let gp = t.regs()?;
    if gp.cs != 0x33 {
        return Err(Error::Unsupported(format!("task {} runs in 32-bit mode (cs {:#x})", t.tid(), gp.cs)));
    }
    let x = t.xstate()?;
    Ok((gp, xstate_to_image(&x)?))
}

/// Load a thread's registers from the image; the syscall restart is
/// applied here. Returns the final general-purpose registers.
pub fn restore(t: &Tracee, gp: &UserX86RegsEntry, fp: &UserX86FpregsEntry) -> Result<Regs> {
    let template = t.xstate()?;
    let x = xstate_from_image(fp, &template)?;
    t.set_xstate(&x)?;
    let mut r = gp_from_image(gp)?;
    restart_syscall(&mut r);
    t.set_regs(&r)?;
    Ok(r)
}

pub const MTYPE: i32 = March::X86_64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_calls_are_redone() {
        let mut r = stasis_sys::ptrace::zero_regs();
        r.orig_rax = libc::SYS_read as u64;
        r.rax = (-ERESTARTSYS) as u64;
        r.rip = 0x1002;
        assert!(restart_syscall(&mut r));
        assert_eq!((r.rax, r.rip, r.orig_rax), (libc::SYS_read as u64, 0x1000, u64::MAX));
    }

    #[test]
    fn sleeps_resume_with_the_remaining_time() {
        let mut r = stasis_sys::ptrace::zero_regs();
        r.orig_rax = libc::SYS_clock_nanosleep as u64;
        r.rax = (-ERESTART_RESTARTBLOCK) as u64;
        r.rdx = 0x7000; // req
        r.r10 = 0x7010; // rem
        r.rip = 0x2002;
        assert!(restart_syscall(&mut r));
        assert_eq!((r.rdx, r.rip), (0x7010, 0x2000));

        let mut r = stasis_sys::ptrace::zero_regs();
        r.orig_rax = libc::SYS_poll as u64;
        r.rax = (-ERESTART_RESTARTBLOCK) as u64;
        r.rip = 0x3002;
        assert!(restart_syscall(&mut r));
        assert_eq!((r.rax, r.rip), (libc::SYS_poll as u64, 0x3000));

        // A restart-block call we cannot redo fails with EINTR.
        let mut r = stasis_sys::ptrace::zero_regs();
        r.orig_rax = libc::SYS_nanosleep as u64;
        r.rax = (-ERESTART_RESTARTBLOCK) as u64;
        r.rsi = 0; // no rem to resume from
        r.rip = 0x4002;
        assert!(!restart_syscall(&mut r));
        assert_eq!((r.rax as i64, r.rip), (-(libc::EINTR as i64), 0x4002));
    }

    #[test]
    fn completed_calls_are_left_alone() {
        let mut r = stasis_sys::ptrace::zero_regs();
        r.orig_rax = libc::SYS_getpid as u64;
        r.rax = 42;
        r.rip = 0x1002;
        assert!(!restart_syscall(&mut r));
        assert_eq!((r.rax, r.rip), (42, 0x1002));
    }

    #[test]
    fn xstate_round_trip() {
        let mut x = vec![0u8; 4096];
        for (i, b) in x.iter_mut().enumerate().take(512) {
            *b = (i * 7) as u8;
        }
        x[4] = 0xff;
        x[5] = 0; // reserved
        put64(&mut x, 512, 0x7);
        let ymm = component(YMM).unwrap();
        for i in 0..ymm.size {
            x[ymm.offset + i] = i as u8 ^ 0x5a;
        }
        let img = xstate_to_image(&x).unwrap();
        let back = xstate_from_image(&img, &x).unwrap();
        assert_eq!(&back[..416], &x[..416]);
        assert_eq!(le_u64(&back, 512), 0x7);
        assert_eq!(&back[ymm.offset..ymm.offset + ymm.size], &x[ymm.offset..ymm.offset + ymm.size]);
    }
}
