//! Descriptors backed by anonymous inodes and memfds: eventfd, epoll,
//! signalfd, timerfd, inotify, memfd.
//!
//! Dump reads each one's state from `/proc/PID/fdinfo/N` (counters, masks,
//! watched fds, timer values, inotify watches with their file handles) and,
//! for memfds, the content through the duplicated fd. Restore recreates the
//! object in stasis (eventfd(2), signalfd(2), timerfd_create(2) with
//! TFD_IOC_SET_TICKS, inotify_init1(2) with watches found again through
//! open_by_handle_at(2), memfd_create(2) with content and seals); epoll
//! registrations are made inside the task, with its own fd numbers, once
//! its fd table is in place.

use crate::error::{Error, IoContext, Result};
use crate::inject::{Scratch, Session};
use stasis_image::messages::*;
use stasis_sys::net;
use std::os::fd::{AsFd, OwnedFd};

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key).map(str::trim))
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim(), 16).ok()
}

pub fn dump_eventfd(id: u32, flags: u32, fdinfo: &str) -> Result<EventfdFileEntry> {
    let count = field(fdinfo, "eventfd-count:").and_then(hex).ok_or_else(|| Error::Unsupported("eventfd without a count".into()))?;
    let sem = field(fdinfo, "eventfd-semaphore:").is_some_and(|v| v == "1");
    // EFD_SEMAPHORE (1) never collides with file flags of an eventfd (O_RDWR).
    Ok(EventfdFileEntry { id, flags: flags | u32::from(sem), fown: FownEntry::default(), counter: count })
}

pub fn restore_eventfd(e: &EventfdFileEntry) -> Result<OwnedFd> {
    let flags = (e.flags as i32) & (libc::EFD_NONBLOCK | libc::EFD_SEMAPHORE);
    let fd = net::eventfd(0, flags)?;
    if e.counter > 0 {
        let f = std::fs::File::from(fd.try_clone().ctx(|| "dup eventfd".into())?);
        use std::io::Write;
        (&f).write_all(&e.counter.to_ne_bytes()).ctx(|| "set the eventfd counter".into())?;
    }
    Ok(fd)
}

/// An epoll set: the watched fds as the task numbers them.
pub fn dump_epoll(id: u32, flags: u32, fdinfo: &str) -> Result<EventpollFileEntry> {
    let mut tfd = Vec::new();
    for l in fdinfo.lines().filter(|l| l.starts_with("tfd:")) {
        // tfd:        5 events: 80000019 data:                5  pos:0 ino:30c13 sdev:f
        let w: Vec<&str> = l.split_whitespace().collect();
        let get = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1)).copied();
        let kv = |k: &str| w.iter().find_map(|x| x.strip_prefix(k));
        tfd.push(EventpollTfdEntry {
            id: 0,
            tfd: get("tfd:").and_then(|v| v.parse().ok()).unwrap_or(0),
            events: get("events:").and_then(hex).unwrap_or(0) as u32,
            data: get("data:").and_then(hex).unwrap_or(0),
            dev: kv("sdev:").and_then(hex).map(|v| v as u32),
            inode: kv("ino:").and_then(hex),
            pos: kv("pos:").and_then(|v| v.parse().ok()),
        });
    }
    Ok(EventpollFileEntry { id, flags, fown: FownEntry::default(), tfd })
}

/// Register the watched fds of epoll set `epfd` inside the task.
pub fn restore_epoll_targets(s: &mut Session<'_>, scratch: &Scratch, epfd: i32, e: &EventpollFileEntry) -> Result<()> {
    let at = scratch.at(0);
    for t in &e.tfd {
        let mut ev = t.events.to_ne_bytes().to_vec();
        ev.extend_from_slice(&t.data.to_ne_bytes());
        s.write(at, &ev)?;
        s.call("epoll_ctl", libc::SYS_epoll_ctl, &[epfd as u64, libc::EPOLL_CTL_ADD as u64, u64::from(t.tfd), at.0])
            .map_err(|err| Error::Unsupported(format!("cannot watch fd {} in epoll fd {epfd}: {err}", t.tfd)))?;
    }
    Ok(())
}

pub fn dump_signalfd(id: u32, flags: u32, fdinfo: &str) -> Result<SignalfdEntry> {
    let mask = field(fdinfo, "sigmask:").and_then(hex).ok_or_else(|| Error::Unsupported("signalfd without a mask".into()))?;
    Ok(SignalfdEntry { id, flags, fown: FownEntry::default(), sigmask: mask })
}

pub fn restore_signalfd(e: &SignalfdEntry) -> Result<OwnedFd> {
    Ok(net::signalfd(e.sigmask, e.flags as i32 & libc::O_NONBLOCK)?)
}

fn pair(s: &str) -> Option<(u64, u64)> {
    // "(4, 999954522)"
    let s = s.trim().trim_start_matches('(').trim_end_matches(')');
    let (a, b) = s.split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

pub fn dump_timerfd(id: u32, flags: u32, fdinfo: &str) -> Result<TimerfdEntry> {
    let bad = || Error::Unsupported("timerfd fdinfo without timer values".into());
    let (vsec, vnsec) = field(fdinfo, "it_value:").and_then(pair).ok_or_else(bad)?;
    let (isec, insec) = field(fdinfo, "it_interval:").and_then(pair).ok_or_else(bad)?;
    let clockid: u32 = field(fdinfo, "clockid:").and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let settime_flags = field(fdinfo, "settime flags:").and_then(|v| u32::from_str_radix(v, 8).ok()).unwrap_or(0);
    let armed = vsec != 0 || vnsec != 0;
    // An absolute wall-clock timer keeps its date, however long the
    // process is away; the others keep what was left (as CRIU does).
    let due_realtime_ns = (armed && clockid == libc::CLOCK_REALTIME as u32 && settime_flags & TFD_TIMER_ABSTIME != 0)
        .then(|| realtime_ns() + vsec * 1_000_000_000 + vnsec);
    Ok(TimerfdEntry {
        id,
        flags,
        fown: FownEntry::default(),
        clockid,
        ticks: field(fdinfo, "ticks:").and_then(|v| v.parse().ok()).unwrap_or(0),
        settime_flags,
        vsec,
        vnsec,
        isec,
        insec,
        due_realtime_ns,
    })
}

const TFD_TIMER_ABSTIME: u32 = 1;

fn realtime_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// `_IOW('T', 0, u64)`
const TFD_IOC_SET_TICKS: u64 = 0x4008_5400;

pub fn restore_timerfd(e: &TimerfdEntry) -> Result<OwnedFd> {
    let fd = net::timerfd_create(e.clockid as i32, e.flags as i32 & libc::O_NONBLOCK)?;
    let interval = (e.isec as i64, e.insec as i64);
    if let Some(due) = e.due_realtime_ns.filter(|_| e.clockid == libc::CLOCK_REALTIME as u32) {
        // Past due: it fires at once, as it would have.
        let due = due.max(1);
        let value = ((due / 1_000_000_000) as i64, (due % 1_000_000_000) as i64);
        net::timerfd_settime(fd.as_fd(), TFD_TIMER_ABSTIME as i32, interval, value)?;
    } else if e.vsec != 0 || e.vnsec != 0 {
        // fdinfo shows what is left: arm relative to now.
        net::timerfd_settime(fd.as_fd(), 0, interval, (e.vsec as i64, e.vnsec as i64))?;
    }
    if e.ticks != 0 {
        let mut t = e.ticks;
        net::ioctl_u64(fd.as_fd(), TFD_IOC_SET_TICKS, &mut t)?;
    }
    Ok(fd)
}

pub fn dump_inotify(id: u32, flags: u32, fdinfo: &str) -> Result<InotifyFileEntry> {
    let mut wd = Vec::new();
    for l in fdinfo.lines().filter(|l| l.starts_with("inotify ")) {
        // inotify wd:1 ino:2 sdev:800001 mask:100 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:4d30...
        let kv = |k: &str| l.split_whitespace().find_map(|x| x.strip_prefix(k));
        let bytes = kv("fhandle-bytes:").and_then(hex).unwrap_or(0) as u32;
        let handle_hex = kv("f_handle:").unwrap_or("");
        let raw: Vec<u8> = (0..handle_hex.len() / 2).filter_map(|i| u8::from_str_radix(&handle_hex[i * 2..i * 2 + 2], 16).ok()).collect();
        let mut words: Vec<u64> = raw.chunks(8).map(|c| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            u64::from_ne_bytes(b)
        }).collect();
        // CRIU keeps at least two words of handle.
        while words.len() < 2 {
            words.push(0);
        }
        wd.push(InotifyWdEntry {
            id,
            i_ino: kv("ino:").and_then(hex).unwrap_or(0),
            mask: kv("mask:").and_then(hex).unwrap_or(0) as u32,
            ignored_mask: kv("ignored_mask:").and_then(hex).unwrap_or(0) as u32,
            s_dev: kv("sdev:").and_then(hex).unwrap_or(0) as u32,
            wd: kv("wd:").and_then(hex).unwrap_or(0) as u32,
            f_handle: FhEntry { bytes, r#type: kv("fhandle-type:").and_then(hex).unwrap_or(0) as u32, handle: words, path: None, mnt_id: None },
        });
    }
    Ok(InotifyFileEntry { id, flags, fown: FownEntry::default(), wd })
}

/// The mount point of the filesystem with kernel device number `dev`
/// (20 minor bits), from our mountinfo.
fn mount_of(dev: u32) -> Option<String> {
    let (major, minor) = (dev >> 20, dev & 0xfffff);
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (ma, mi) = w.get(2)?.split_once(':')?;
        (ma.parse::<u32>().ok()? == major && mi.parse::<u32>().ok()? == minor).then(|| w.get(4).map(|s| s.to_string()))?
    })
}

pub fn restore_inotify(e: &InotifyFileEntry) -> Result<OwnedFd> {
    let fd = net::inotify_init(e.flags as i32 & libc::O_NONBLOCK)?;
    let mut wds: Vec<&InotifyWdEntry> = e.wd.iter().collect();
    wds.sort_by_key(|w| w.wd);
    let mut dropped = false;
    for w in wds {
        if w.wd == 0 || w.wd > i32::MAX as u32 {
            return Err(Error::BadImage(format!("inotify watch number {} is out of range", w.wd)));
        }
        let mount = mount_of(w.s_dev).ok_or_else(|| Error::Unsupported(format!("inotify watch {}: no mount for device {:#x}", w.wd, w.s_dev)))?;
        let m = std::fs::File::open(&mount).ctx(|| format!("open mount {mount}"))?;
        let raw: Vec<u8> = w.f_handle.handle.iter().flat_map(|x| x.to_ne_bytes()).take(w.f_handle.bytes as usize).collect();
        let target = net::open_by_handle(m.as_fd(), w.f_handle.r#type as i32, &raw)
            .map_err(|er| Error::Unsupported(format!("inotify watch {}: the watched file is gone ({er})", w.wd)))?;
        let path = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&target)))
            .ctx(|| "read watched path".into())?;
        // Watch descriptors are handed out in increasing order: take (and
        // drop) the ones below the wanted number.
        for tries in 0.. {
            let got = net::inotify_add_watch(fd.as_fd(), &path, w.mask)?;
            if got as u32 == w.wd {
                break;
            }
            if got as u32 > w.wd || tries > 1_000_000 {
                return Err(Error::Unsupported(format!("inotify watch {} came back as {got}", w.wd)));
            }
            net::inotify_rm_watch(fd.as_fd(), got)?;
            dropped = true;
        }
    }
    if dropped {
        // Each dropped watch left an IN_IGNORED event the program never
        // had: read them away.
        let flags = stasis_sys::fd::status_flags(fd.as_fd())?;
        stasis_sys::fd::set_status_flags(fd.as_fd(), flags | libc::O_NONBLOCK)?;
        let f = std::fs::File::from(fd.try_clone().ctx(|| "dup inotify".into())?);
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(std::io::Read::read(&mut &f, &mut buf), Ok(n) if n > 0) {}
        stasis_sys::fd::set_status_flags(fd.as_fd(), flags)?;
    }
    Ok(fd)
}

/// F_GET_SEALS / F_ADD_SEALS
const F_ADD_SEALS: i32 = 1033;
const F_GET_SEALS: i32 = 1034;

pub fn memfd_seals(f: &std::fs::File) -> u32 {
    net::fcntl_int(f.as_fd(), F_GET_SEALS, 0).map(|v| v as u32).unwrap_or(0)
}

/// A new memfd with the image's name, size and content, sealed as it was.
pub fn restore_memfd(inode: &MemfdInodeEntry, content: &[(u64, Vec<u8>)]) -> Result<OwnedFd> {
    let name = inode.name.strip_prefix("memfd:").unwrap_or(&inode.name);
    let fd = net::memfd_create(name, libc::MFD_ALLOW_SEALING)?;
    let f = std::fs::File::from(fd.try_clone().ctx(|| "dup memfd".into())?);
    f.set_len(inode.size).ctx(|| format!("size memfd {}", inode.name))?;
    use std::os::unix::fs::FileExt;
    for (off, data) in content {
        f.write_all_at(data, *off).ctx(|| format!("fill memfd {}", inode.name))?;
    }
    if let Some(mode) = inode.mode {
        let _ = f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777));
    }
    let _ = std::os::unix::fs::fchown(&f, Some(inode.uid), Some(inode.gid));
    if inode.seals != 0 {
        net::fcntl_int(fd.as_fd(), F_ADD_SEALS, inode.seals as i32)?;
    }
    Ok(fd)
}
