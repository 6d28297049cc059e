//! Readers for the /proc files a dump needs.
//!
//! Kernel interfaces: `/proc/PID/{smaps,stat,status,fdinfo/N,timers,auxv,
//! task/TID/children,task,personality,oom_score_adj,loginuid}`. The formats
//! are those of Linux 6.x; parsers are tested on captured text below.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ProcError {
    pub path: PathBuf,
    pub problem: String,
}

pub type Result<T> = std::result::Result<T, ProcError>;

fn proc_path(pid: i32, rest: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{rest}"))
}

pub fn read_string(path: PathBuf) -> Result<String> {
    std::fs::read_to_string(&path).map_err(|e| ProcError { path, problem: e.to_string() })
}

pub fn read_bytes(path: PathBuf) -> Result<Vec<u8>> {
    std::fs::read(&path).map_err(|e| ProcError { path, problem: e.to_string() })
}

pub fn read(pid: i32, rest: &str) -> Result<String> {
    read_string(proc_path(pid, rest))
}

fn bad(path: PathBuf, problem: impl Into<String>) -> ProcError {
    ProcError { path, problem: problem.into() }
}

/// One line of `/proc/PID/maps` plus the `VmFlags` of smaps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// The path or pseudo-name (`[heap]`, `[vdso]`, ...), possibly empty.
    pub name: String,
    /// The two-letter VmFlags (`rd`, `wr`, `gd`, `dd`, ...).
    pub vm_flags: Vec<String>,
}

impl Mapping {
    pub fn has_flag(&self, f: &str) -> bool {
        self.vm_flags.iter().any(|x| x == f)
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

fn parse_maps_line(line: &str) -> Option<Mapping> {
    // 7f00-7f01 r-xp 00001000 08:01 1234     /usr/lib/x.so
    let mut it = line.splitn(6, ' ');
    let range = it.next()?;
    let perms = it.next()?.as_bytes();
    let offset = u64::from_str_radix(it.next()?, 16).ok()?;
    let dev = it.next()?;
    let inode: u64 = it.next()?.parse().ok()?;
    let name = it.next().unwrap_or("").trim_start().to_string();
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    if perms.len() < 4 {
        return None;
    }
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        shared: perms[3] == b's',
        offset,
        dev_major: u32::from_str_radix(maj, 16).ok()?,
        dev_minor: u32::from_str_radix(min, 16).ok()?,
        inode,
        name,
        vm_flags: Vec::new(),
    })
}

/// Parse smaps text: mapping lines followed by `Key: value` lines.
pub fn parse_smaps(text: &str) -> Option<Vec<Mapping>> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmFlags:") {
            out.last_mut()?.vm_flags = rest.split_whitespace().map(str::to_string).collect();
            continue;
        }
        let first = line.split(' ').next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            out.push(parse_maps_line(line)?);
        }
    }
    Some(out)
}

pub fn smaps(pid: i32) -> Result<Vec<Mapping>> {
    let p = proc_path(pid, "smaps");
    let t = read_string(p.clone())?;
    parse_smaps(&t).ok_or_else(|| bad(p, "unexpected format"))
}

/// Fields of `/proc/PID/stat` after the command name, numbered as in
/// proc(5) (field 3 is the state).
#[derive(Clone, Debug)]
pub struct Stat {
    pub comm: String,
    fields: Vec<String>,
}

impl Stat {
    /// Field `n` (1-based, as in proc(5)); fields 1 and 2 are pid and comm.
    pub fn field(&self, n: usize) -> u64 {
        self.fields.get(n - 3).and_then(|f| f.parse::<i64>().ok()).map(|v| v as u64).unwrap_or(0)
    }

    pub fn state(&self) -> char {
        self.fields.first().and_then(|s| s.chars().next()).unwrap_or('?')
    }

    pub fn ppid(&self) -> i32 {
        self.field(4) as i32
    }
    pub fn pgid(&self) -> i32 {
        self.field(5) as i32
    }
    pub fn sid(&self) -> i32 {
        self.field(6) as i32
    }
    pub fn flags(&self) -> u32 {
        self.field(9) as u32
    }
    pub fn exit_code(&self) -> u32 {
        self.field(52) as u32
    }
}

pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let fields = text[close + 1..].split_whitespace().map(str::to_string).collect();
    Some(Stat { comm, fields })
}

pub fn stat(pid: i32, tid: i32) -> Result<Stat> {
    let p = if pid == tid { proc_path(pid, "stat") } else { proc_path(pid, &format!("task/{tid}/stat")) };
    let t = read_string(p.clone())?;
    parse_stat(&t).ok_or_else(|| bad(p, "unexpected format"))
}

/// `/proc/PID/status` as key/value pairs.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pairs: Vec<(String, String)>,
}

impl Status {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whitespace-separated decimal numbers (Uid, Gid, Groups).
    pub fn numbers(&self, key: &str) -> Vec<u32> {
        self.get(key).map(|v| v.split_whitespace().filter_map(|x| x.parse().ok()).collect()).unwrap_or_default()
    }

    /// A hex mask (SigBlk, CapEff, ...).
    pub fn hex(&self, key: &str) -> u64 {
        self.get(key).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()).unwrap_or(0)
    }

    pub fn octal(&self, key: &str) -> Option<u32> {
        self.get(key).and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
    }

    pub fn number(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.split_whitespace().next()?.parse().ok())
    }
}

pub fn parse_status(text: &str) -> Status {
    Status {
        pairs: text
            .lines()
            .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect(),
    }
}

pub fn status(pid: i32, tid: i32) -> Result<Status> {
    let p = if pid == tid { proc_path(pid, "status") } else { proc_path(pid, &format!("task/{tid}/status")) };
    Ok(parse_status(&read_string(p)?))
}

/// Thread ids of a process, sorted, the main thread first.
pub fn threads(pid: i32) -> Result<Vec<i32>> {
    let p = proc_path(pid, "task");
    let rd = std::fs::read_dir(&p).map_err(|e| bad(p.clone(), e.to_string()))?;
    let mut v: Vec<i32> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    v.sort_by_key(|&t| (t != pid, t));
    Ok(v)
}

/// Children of every thread of a process.
pub fn children(pid: i32, tids: &[i32]) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    for &t in tids {
        let p = proc_path(pid, &format!("task/{t}/children"));
        match std::fs::read_to_string(&p) {
            Ok(s) => out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok())),
            // A thread that exited since we listed it has no children.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(bad(p, e.to_string())),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `/proc/PID/fdinfo/N` as key/value pairs, plus the raw text for kinds
/// with multi-line records (epoll `tfd:`, inotify, signalfd).
#[derive(Clone, Debug, Default)]
pub struct FdInfo {
    pub pos: u64,
    pub flags: u32,
    pub mnt_id: i32,
    pub ino: u64,
    pub text: String,
}

pub fn parse_fdinfo(text: &str) -> FdInfo {
    let mut fi = FdInfo { text: text.to_string(), ..FdInfo::default() };
    for l in text.lines() {
        let Some((k, v)) = l.split_once(':') else { continue };
        let v = v.trim();
        match k {
            "pos" => fi.pos = v.parse().unwrap_or(0),
            "flags" => fi.flags = u32::from_str_radix(v, 8).unwrap_or(0),
            "mnt_id" => fi.mnt_id = v.parse().unwrap_or(0),
            "ino" => fi.ino = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    fi
}

pub fn fdinfo(pid: i32, fd: i32) -> Result<FdInfo> {
    Ok(parse_fdinfo(&read(pid, &format!("fdinfo/{fd}"))?))
}

/// Open descriptor numbers of a process, sorted.
pub fn fds(pid: i32) -> Result<Vec<i32>> {
    let p = proc_path(pid, "fd");
    let rd = std::fs::read_dir(&p).map_err(|e| bad(p.clone(), e.to_string()))?;
    let mut v: Vec<i32> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    v.sort_unstable();
    Ok(v)
}

pub fn readlink(pid: i32, rest: &str) -> Result<String> {
    let p = proc_path(pid, rest);
    std::fs::read_link(&p)
        .map(|t| t.to_string_lossy().into_owned())
        .map_err(|e| bad(p, e.to_string()))
}

/// One POSIX timer from `/proc/PID/timers`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcTimer {
    pub id: i32,
    pub signal: i32,
    pub sival_ptr: u64,
    /// SIGEV_* notify mode (with SIGEV_THREAD_ID folded in).
    pub notify: i32,
    pub notify_tid: i32,
    pub clock: i32,
}

pub fn parse_timers(text: &str) -> Option<Vec<ProcTimer>> {
    let mut out: Vec<ProcTimer> = Vec::new();
    for l in text.lines() {
        let Some((k, v)) = l.split_once(':') else { continue };
        let v = v.trim();
        match k {
            "ID" => out.push(ProcTimer { id: v.parse().ok()?, ..ProcTimer::default() }),
            "signal" => {
                // "14/0000000000000000"
                let t = out.last_mut()?;
                let (s, p) = v.split_once('/')?;
                t.signal = s.parse().ok()?;
                t.sival_ptr = u64::from_str_radix(p, 16).ok()?;
            }
            "notify" => {
                // "signal/pid.1234" or "thread/tid.1234" or "none/..."
                let t = out.last_mut()?;
                let (how, who) = v.split_once('/')?;
                let (_, id) = who.split_once('.')?;
                t.notify_tid = id.parse().ok()?;
                let base = match how {
                    "signal" => libc::SIGEV_SIGNAL,
                    "none" => libc::SIGEV_NONE,
                    "thread" => libc::SIGEV_THREAD,
                    _ => return None,
                };
                t.notify = if who.starts_with("tid") { base | libc::SIGEV_THREAD_ID } else { base };
            }
            "ClockID" => out.last_mut()?.clock = v.parse().ok()?,
            _ => {}
        }
    }
    Some(out)
}

pub fn timers(pid: i32) -> Result<Vec<ProcTimer>> {
    let p = proc_path(pid, "timers");
    let t = read_string(p.clone())?;
    parse_timers(&t).ok_or_else(|| bad(p, "unexpected format"))
}

/// `/proc/PID/auxv` as 64-bit words, without the trailing AT_NULL pair.
pub fn auxv(pid: i32) -> Result<Vec<u64>> {
    let b = read_bytes(proc_path(pid, "auxv"))?;
    let mut words: Vec<u64> = b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
    while words.len() >= 2 && words[words.len() - 2] == 0 {
        words.truncate(words.len() - 2);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c8a2e000-55d0c8a30000 r--p 00000000 fd:01 1835032                    /usr/bin/cat
Size:                  8 kB
VmFlags: rd mr mw me dw sd
7ffd3f9a6000-7ffd3f9c7000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
VmFlags: rd wr mr mw me gd ac
7f1c2b1fe000-7f1c2b200000 rw-s 00000000 00:01 2049                       /dev/zero (deleted)
VmFlags: rd wr sh mr mw me ms sd
";

    #[test]
    fn smaps_lines_and_flags() {
        let m = parse_smaps(SMAPS).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].start, 0x55d0c8a2e000);
        assert_eq!(m[0].name, "/usr/bin/cat");
        assert_eq!((m[0].dev_major, m[0].dev_minor, m[0].inode), (0xfd, 1, 1835032));
        assert!(m[0].read && !m[0].write && !m[0].shared);
        assert!(m[1].has_flag("gd"));
        assert_eq!(m[1].name, "[stack]");
        assert!(m[2].shared);
        assert_eq!(m[2].name, "/dev/zero (deleted)");
    }

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let s = parse_stat("1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0").unwrap();
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(s.state(), 'S');
        assert_eq!(s.ppid(), 1);
        assert_eq!(s.pgid(), 1234);
        assert_eq!(s.flags(), 4194560);
    }

    #[test]
    fn status_fields() {
        let s = parse_status("Name:\tcat\nUmask:\t0022\nUid:\t0\t1\t2\t3\nSigBlk:\t0000000000010000\nNoNewPrivs:\t1\n");
        assert_eq!(s.octal("Umask"), Some(0o22));
        assert_eq!(s.numbers("Uid"), vec![0, 1, 2, 3]);
        assert_eq!(s.hex("SigBlk"), 0x10000);
        assert_eq!(s.number("NoNewPrivs"), Some(1));
    }

    #[test]
    fn fdinfo_fields() {
        let f = parse_fdinfo("pos:\t42\nflags:\t02100002\nmnt_id:\t27\nino:\t99\n");
        assert_eq!((f.pos, f.flags, f.mnt_id, f.ino), (42, 0o2100002, 27, 99));
    }

    #[test]
    fn timers_file() {
        let t = parse_timers(
            "ID: 0\nsignal: 14/0000000000000000\nnotify: signal/pid.77\nClockID: 1\n\
             ID: 1\nsignal: 10/00000000deadbeef\nnotify: signal/tid.78\nClockID: 0\n",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].id, t[0].signal, t[0].notify, t[0].clock), (0, 14, libc::SIGEV_SIGNAL, 1));
        assert_eq!(t[1].sival_ptr, 0xdeadbeef);
        assert_eq!(t[1].notify_tid, 78);
        assert_eq!(t[1].notify, libc::SIGEV_SIGNAL | libc::SIGEV_THREAD_ID);
    }
}
