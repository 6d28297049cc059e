//! Interval timers (setitimer) and POSIX timers (timer_create).
//!
//! Kernel interfaces: getitimer(2)/setitimer(2), `/proc/PID/timers` (ids,
//! clocks, signals, notification targets), timer_gettime(2),
//! timer_create(2)/timer_settime(2) inside the task, and
//! `PR_TIMER_CREATE_RESTORE_IDS` (Linux 6.15), which makes timer_create take
//! the id to use from its result argument.

use crate::error::{Error, Result};
use crate::inject::{Scratch, Session};
use crate::procfs;
use stasis_image::messages::{ItimerEntry, PosixTimerEntry, TaskTimersEntry};

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]))
}

fn words(ws: &[u64]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

pub fn dump(s: &mut Session<'_>, scratch: &Scratch, pid: i32) -> Result<TaskTimersEntry> {
    let at = scratch.at(0);
    let mut it = |which: i32| -> Result<ItimerEntry> {
        s.call("getitimer", libc::SYS_getitimer, &[which as u64, at.0])?;
        let b = s.read(at, 32)?;
        Ok(ItimerEntry { isec: u64_at(&b, 0), iusec: u64_at(&b, 1), vsec: u64_at(&b, 2), vusec: u64_at(&b, 3) })
    };
    let real = it(libc::ITIMER_REAL)?;
    let virt = it(libc::ITIMER_VIRTUAL)?;
    let prof = it(libc::ITIMER_PROF)?;
    let mut posix = Vec::new();
    for t in procfs::timers(pid)? {
        s.call("timer_gettime", libc::SYS_timer_gettime, &[t.id as u64, at.0])?;
        let b = s.read(at, 32)?;
        let overrun = s.call("timer_getoverrun", libc::SYS_timer_getoverrun, &[t.id as u64])?;
        posix.push(PosixTimerEntry {
            it_id: t.id as u32,
            clock_id: t.clock as u32,
            si_signo: t.signal as u32,
            it_sigev_notify: t.notify as u32,
            sival_ptr: t.sival_ptr,
            overrun: overrun as u32,
            isec: u64_at(&b, 0),
            insec: u64_at(&b, 1),
            vsec: u64_at(&b, 2),
            vnsec: u64_at(&b, 3),
            notify_thread_id: (t.notify & libc::SIGEV_THREAD_ID != 0).then_some(t.notify_tid),
        });
    }
    Ok(TaskTimersEntry { real, virt, prof, posix })
}

const PR_TIMER_CREATE_RESTORE_IDS: u64 = 77;

pub fn restore(s: &mut Session<'_>, scratch: &Scratch, t: &TaskTimersEntry) -> Result<()> {
    let at = scratch.at(0);
    for (which, e) in [(libc::ITIMER_REAL, &t.real), (libc::ITIMER_VIRTUAL, &t.virt), (libc::ITIMER_PROF, &t.prof)] {
        if e.vsec == 0 && e.vusec == 0 {
            continue; // disarmed
        }
        s.write(at, &words(&[e.isec, e.iusec, e.vsec, e.vusec]))?;
        s.call("setitimer", libc::SYS_setitimer, &[which as u64, at.0, 0])?;
    }
    if t.posix.is_empty() {
        return Ok(());
    }
    let by_id = s.raw(libc::SYS_prctl, &[PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0])? == 0;
    let mut timers: Vec<&PosixTimerEntry> = t.posix.iter().collect();
    timers.sort_by_key(|p| p.it_id);
    let id_at = scratch.at(64);
    let spec_at = scratch.at(128);
    for p in timers {
        // struct sigevent: value, signo, notify, tid, padding to 64 bytes.
        let mut ev = vec![0u8; 64];
        ev[0..8].copy_from_slice(&p.sival_ptr.to_le_bytes());
        ev[8..12].copy_from_slice(&p.si_signo.to_le_bytes());
        ev[12..16].copy_from_slice(&p.it_sigev_notify.to_le_bytes());
        ev[16..20].copy_from_slice(&p.notify_thread_id.unwrap_or(0).to_le_bytes());
        s.write(at, &ev)?;
        let created = loop {
            s.write(id_at, &(p.it_id as i32).to_le_bytes())?;
            s.call("timer_create", libc::SYS_timer_create, &[u64::from(p.clock_id), at.0, id_at.0])?;
            let got = i32::from_le_bytes(s.read(id_at, 4)?.try_into().unwrap_or([0; 4]));
            if by_id || got as u32 >= p.it_id {
                break got;
            }
            // Without id restore, ids are handed out in order: burn the
            // ones below the wanted id (they are deleted again below).
            s.call("timer_delete", libc::SYS_timer_delete, &[got as u64])?;
        };
        if created as u32 != p.it_id {
            return Err(Error::Unsupported(format!(
                "cannot recreate POSIX timer {} (the kernel gave id {created})",
                p.it_id
            )));
        }
        if p.vsec != 0 || p.vnsec != 0 {
            s.write(spec_at, &words(&[p.isec, p.insec, p.vsec, p.vnsec]))?;
            s.call("timer_settime", libc::SYS_timer_settime, &[u64::from(p.it_id), 0, spec_at.0, 0])?;
        }
    }
    if by_id {
        s.call("prctl(PR_TIMER_CREATE_RESTORE_IDS)", libc::SYS_prctl, &[PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0])?;
    }
    Ok(())
}
