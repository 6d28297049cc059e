//! Image types: magic numbers, file names and how entries are laid out.
//!
//! Magic values and names are CRIU's (`criu/include/magic.h`); the JSON
//! layout of each type (an `extra` key for raw payloads, the pagemap head,
//! ghost file chunks) is what crit prints.

use crate::file::{put_entry, ImageError, ImageReader};
use crate::json::{base64_decode, base64_lines, Json};
use crate::messages::*;
use crate::proto::Message;
use std::marker::PhantomData;

pub const IMG_COMMON: u32 = 0x5456_4319;
pub const IMG_SERVICE: u32 = 0x5510_5940;
pub const INVENTORY_MAGIC: u32 = 0x5831_3116;

/// One image type.
pub struct ImageKind {
    /// crit's name for it (the `magic` key of the JSON form).
    pub name: &'static str,
    pub magic: u32,
    /// Service images (stats, irmap cache) use `IMG_SERVICE` as leading magic.
    pub service: bool,
    /// File name, with `N` standing for a pid or an id.
    pub file: &'static str,
    pub codec: &'static (dyn Codec + Sync),
}

impl std::fmt::Debug for ImageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)
    }
}

/// Conversion of a whole image body between binary and crit's JSON.
pub trait Codec {
    fn to_json(&self, r: &mut ImageReader, pretty: bool) -> Result<Vec<Json>, ImageError>;
    fn from_json(&self, entries: &[Json], out: &mut Vec<u8>) -> Result<(), String>;
}

fn entry_json<M: Message>(r: &mut ImageReader, pretty: bool) -> Result<Option<(M, Vec<(String, Json)>)>, ImageError> {
    let Some(m) = r.next::<M>()? else {
        return Ok(None);
    };
    let Json::Obj(kv) = m.to_json(pretty, false) else {
        unreachable!("messages print as objects")
    };
    Ok(Some((m, kv)))
}

fn parse_entry<M: Message>(j: &Json, i: usize) -> Result<M, String> {
    M::from_json(j).map_err(|e| format!("entry {i}: {e}"))
}

fn extra_bytes(j: &Json, i: usize) -> Result<Vec<u8>, String> {
    match j.get("extra") {
        Some(Json::Str(s)) => base64_decode(s).map_err(|e| format!("entry {i}: extra: {e}")),
        Some(other) => Err(format!("entry {i}: extra: expected a string, found {}", other.kind())),
        None => Ok(Vec::new()),
    }
}

/// Plain protobuf entries.
pub struct Plain<M>(PhantomData<M>);

impl<M> Plain<M> {
    pub const NEW: Self = Plain(PhantomData);
}

impl<M: Message + Sync> Codec for Plain<M> {
    fn to_json(&self, r: &mut ImageReader, pretty: bool) -> Result<Vec<Json>, ImageError> {
        let mut v = Vec::new();
        while let Some((_, kv)) = entry_json::<M>(r, pretty)? {
            v.push(Json::Obj(kv));
        }
        Ok(v)
    }

    fn from_json(&self, entries: &[Json], out: &mut Vec<u8>) -> Result<(), String> {
        for (i, j) in entries.iter().enumerate() {
            put_entry(out, &parse_entry::<M>(j, i)?);
        }
        Ok(())
    }
}

/// Entries each followed by a raw payload whose length the entry states.
pub struct WithPayload<M> {
    len: fn(&M) -> u64,
}

impl<M: Message + Sync> Codec for WithPayload<M> {
    fn to_json(&self, r: &mut ImageReader, pretty: bool) -> Result<Vec<Json>, ImageError> {
        let mut v = Vec::new();
        while let Some((m, mut kv)) = entry_json::<M>(r, pretty)? {
            let data = r.payload((self.len)(&m))?;
            kv.push(("extra".into(), Json::Str(base64_lines(data))));
            v.push(Json::Obj(kv));
        }
        Ok(v)
    }

    fn from_json(&self, entries: &[Json], out: &mut Vec<u8>) -> Result<(), String> {
        for (i, j) in entries.iter().enumerate() {
            let m: M = parse_entry(j, i)?;
            let data = extra_bytes(j, i)?;
            if data.len() as u64 != (self.len)(&m) {
                return Err(format!("entry {i}: extra holds {} bytes but the entry says {}", data.len(), (self.len)(&m)));
            }
            put_entry(out, &m);
            out.extend_from_slice(&data);
        }
        Ok(())
    }
}

/// TCP stream: the entry, then the receive and send queues.
struct TcpStream;

impl Codec for TcpStream {
    fn to_json(&self, r: &mut ImageReader, pretty: bool) -> Result<Vec<Json>, ImageError> {
        let mut v = Vec::new();
        while let Some((m, mut kv)) = entry_json::<TcpStreamEntry>(r, pretty)? {
            let inq = base64_lines(r.payload(u64::from(m.inq_len))?);
            let outq = base64_lines(r.payload(u64::from(m.outq_len))?);
            kv.push(("extra".into(), Json::Obj(vec![("inq".into(), Json::Str(inq)), ("outq".into(), Json::Str(outq))])));
            v.push(Json::Obj(kv));
        }
        Ok(v)
    }

    fn from_json(&self, entries: &[Json], out: &mut Vec<u8>) -> Result<(), String> {
        for (i, j) in entries.iter().enumerate() {
            let m: TcpStreamEntry = parse_entry(j, i)?;
            let q = |k: &str| -> Result<Vec<u8>, String> {
                match j.get("extra").and_then(|e| e.get(k)) {
                    Some(Json::Str(s)) => base64_decode(s).map_err(|e| format!("entry {i}: extra.{k}: {e}")),
                    _ => Ok(Vec::new()),
                }
            };
            let (inq, outq) = (q("inq")?, q("outq")?);
            if inq.len() != m.inq_len as usize || outq.len() != m.outq_len as usize {
                return Err(format!("entry {i}: queue sizes do not match inq_len/outq_len"));
            }
            put_entry(out, &m);
            out.extend_from_slice(&inq);
            out.extend_from_slice(&outq);
        }
        Ok(())
    }
}

/// Pagemap: a `PagemapHead`, then `PagemapEntry`s.
struct Pagemap;

impl Codec for Pagemap {
    fn to_json(&self, r: &mut ImageReader, pretty: bool) -> Result<Vec<Json>, ImageError> {
        let mut v = Vec::new();
        if let Some((_, kv)) = entry_json::<PagemapHead>(r, pretty)? {
            v.push(Json::Obj(kv));
        }
        while let Some((_, kv)) = entry_json::<PagemapEntry>(r, pretty)? {
            v.push(Json::Obj(kv));
        }
        Ok(v)
    }

    fn from_json(&self, entries: &[Json], out: &mut Vec<u8>) -> Result<(), String> {
        for (i, j) in entries.iter().enumerate() {
            if i == 0 {
                put_entry(out, &parse_entry::<PagemapHead>(j, i)?);
            } else {
                put_entry(out, &parse_entry::<PagemapEntry>(j, i)?);
            }
        }
        Ok(())
    }
}

/// Ghost file: the entry, then either the whole content or chunk entries
/// each followed by their bytes.
struct GhostFile;

impl Codec for GhostFile {
    fn to_json(&self, r: &mut ImageReader, pretty: bool) -> Result<Vec<Json>, ImageError> {
        let at = r.offset();
        let Some((g, mut kv)) = entry_json::<GhostFileEntry>(r, pretty)? else {
            return Err(ImageError::new(r.path(), Some(at), "missing GhostFileEntry"));
        };
        let mut v = Vec::new();
        if g.chunks == Some(true) {
            v.push(Json::Obj(kv));
            while let Some((c, mut ckv)) = entry_json::<GhostChunkEntry>(r, pretty)? {
                ckv.push(("extra".into(), Json::Str(base64_lines(r.payload(c.len)?))));
                v.push(Json::Obj(ckv));
            }
        } else {
            kv.push(("extra".into(), Json::Str(base64_lines(r.rest()))));
            v.push(Json::Obj(kv));
        }
        Ok(v)
    }

    fn from_json(&self, entries: &[Json], out: &mut Vec<u8>) -> Result<(), String> {
        let first = entries.first().ok_or("a ghost file image needs its GhostFileEntry")?;
        let g: GhostFileEntry = parse_entry(first, 0)?;
        put_entry(out, &g);
        if g.chunks == Some(true) {
            for (i, j) in entries.iter().enumerate().skip(1) {
                let c: GhostChunkEntry = parse_entry(j, i)?;
                put_entry(out, &c);
                out.extend_from_slice(&extra_bytes(j, i)?);
            }
        } else {
            out.extend_from_slice(&extra_bytes(first, 0)?);
        }
        Ok(())
    }
}

fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

/// SysV semaphores: each set is followed by its `u16` values, padded to 8.
struct IpcSem;

impl Codec for IpcSem {
    fn to_json(&self, r: &mut ImageReader, pretty: bool) -> Result<Vec<Json>, ImageError> {
        let mut v = Vec::new();
        while let Some((m, mut kv)) = entry_json::<IpcSemEntry>(r, pretty)? {
            let size = 2 * u64::from(m.nsems);
            let data = r.payload(round_up(size, 8))?;
            let vals = data[..size as usize]
                .chunks(2)
                .map(|c| Json::Int(i128::from(u16::from_le_bytes([c[0], c[1]]))))
                .collect();
            kv.push(("extra".into(), Json::Arr(vals)));
            v.push(Json::Obj(kv));
        }
        Ok(v)
    }

    fn from_json(&self, entries: &[Json], out: &mut Vec<u8>) -> Result<(), String> {
        for (i, j) in entries.iter().enumerate() {
            let m: IpcSemEntry = parse_entry(j, i)?;
            let vals = j.get("extra").and_then(Json::as_array).unwrap_or(&[]);
            if vals.len() != m.nsems as usize {
                return Err(format!("entry {i}: number of semaphores does not match nsems"));
            }
            put_entry(out, &m);
            let start = out.len();
            for x in vals {
                let Json::Int(n) = x else { return Err(format!("entry {i}: semaphore values must be numbers")) };
                let n = u16::try_from(*n).map_err(|_| format!("entry {i}: semaphore value {n} out of range"))?;
                out.extend_from_slice(&n.to_le_bytes());
            }
            let pad = round_up((out.len() - start) as u64, 8) as usize - (out.len() - start);
            out.resize(out.len() + pad, 0);
        }
        Ok(())
    }
}

/// SysV message queues: `qnum` messages, each an `IpcMsg` entry and its
/// text padded to 8.
struct IpcMsgQueue;

impl Codec for IpcMsgQueue {
    fn to_json(&self, r: &mut ImageReader, pretty: bool) -> Result<Vec<Json>, ImageError> {
        let mut v = Vec::new();
        while let Some((m, mut kv)) = entry_json::<IpcMsgEntry>(r, pretty)? {
            let mut msgs = Vec::new();
            for _ in 0..m.qnum {
                let at = r.offset();
                let msg: IpcMsg = r.next()?.ok_or_else(|| ImageError::new(r.path(), Some(at), "missing IpcMsg entry"))?;
                let data = r.payload(round_up(u64::from(msg.msize), 8))?;
                let text = base64_lines(&data[..msg.msize as usize]);
                msgs.push(msg.to_json(false, false));
                msgs.push(Json::Str(text));
            }
            kv.push(("extra".into(), Json::Arr(msgs)));
            v.push(Json::Obj(kv));
        }
        Ok(v)
    }

    fn from_json(&self, entries: &[Json], out: &mut Vec<u8>) -> Result<(), String> {
        for (i, j) in entries.iter().enumerate() {
            let m: IpcMsgEntry = parse_entry(j, i)?;
            put_entry(out, &m);
            let extra = j.get("extra").and_then(Json::as_array).unwrap_or(&[]);
            for pair in extra.chunks(2) {
                let msg: IpcMsg = parse_entry(&pair[0], i)?;
                let text = pair.get(1).and_then(Json::as_str).ok_or_else(|| format!("entry {i}: message text missing"))?;
                let mut data = base64_decode(text).map_err(|e| format!("entry {i}: {e}"))?;
                put_entry(out, &msg);
                data.resize(msg.msize as usize, 0);
                data.resize(round_up(u64::from(msg.msize), 8) as usize, 0);
                out.extend_from_slice(&data);
            }
        }
        Ok(())
    }
}

/// SysV shared memory: contents follow each entry (padded to 4) unless
/// they were saved in pagemaps.
struct IpcShm;

impl Codec for IpcShm {
    fn to_json(&self, r: &mut ImageReader, pretty: bool) -> Result<Vec<Json>, ImageError> {
        let mut v = Vec::new();
        while let Some((m, mut kv)) = entry_json::<IpcShmEntry>(r, pretty)? {
            if m.in_pagemaps != Some(true) {
                let data = r.payload(round_up(m.size, 4))?;
                kv.push(("extra".into(), Json::Str(base64_lines(&data[..m.size as usize]))));
            }
            v.push(Json::Obj(kv));
        }
        Ok(v)
    }

    fn from_json(&self, entries: &[Json], out: &mut Vec<u8>) -> Result<(), String> {
        for (i, j) in entries.iter().enumerate() {
            let m: IpcShmEntry = parse_entry(j, i)?;
            put_entry(out, &m);
            if m.in_pagemaps != Some(true) {
                let mut data = extra_bytes(j, i)?;
                data.resize(round_up(m.size, 4) as usize, 0);
                out.extend_from_slice(&data);
            }
        }
        Ok(())
    }
}

macro_rules! kinds {
    ($( $name:literal $magic:literal $file:literal $codec:expr $(, $service:ident)? ;)*) => {
        /// Every image type stasis can read.
        pub static KINDS: &[ImageKind] = &[$(
            ImageKind { name: $name, magic: $magic, service: kinds!(@svc $($service)?), file: $file, codec: &$codec },
        )*];
    };
    (@svc service) => { true };
    (@svc) => { false };
}

kinds! {
    "INVENTORY"      0x5831_3116 "inventory.img"        Plain::<InventoryEntry>::NEW;
    "PSTREE"         0x5027_3030 "pstree.img"           Plain::<PstreeEntry>::NEW;
    "FDINFO"         0x5621_3732 "fdinfo-N.img"         Plain::<FdinfoEntry>::NEW;
    "PAGEMAP"        0x5608_4025 "pagemap-N.img"        Pagemap;
    "CORE"           0x5505_3847 "core-N.img"           Plain::<CoreEntry>::NEW;
    "IDS"            0x5443_2030 "ids-N.img"            Plain::<TaskKobjIdsEntry>::NEW;
    "VMAS"           0x5412_3737 "vmas-N.img"           Plain::<VmaEntry>::NEW;
    "PIPES"          0x5651_3555 "pipes.img"            Plain::<PipeEntry>::NEW;
    "PIPES_DATA"     0x5645_3709 "pipes-data.img"       WithPayload::<PipeDataEntry> { len: |m| m.bytes as u64 };
    "FIFO"           0x5836_4939 "fifo.img"             Plain::<FifoEntry>::NEW;
    "FIFO_DATA"      0x5933_3054 "fifo-data.img"        WithPayload::<PipeDataEntry> { len: |m| m.bytes as u64 };
    "SIGACT"         0x5534_4201 "sigacts-N.img"        Plain::<SaEntry>::NEW;
    "UNIXSK"         0x5437_3943 "unixsk.img"           Plain::<UnixSkEntry>::NEW;
    "INETSK"         0x5644_3851 "inetsk.img"           Plain::<InetSkEntry>::NEW;
    "PACKETSK"       0x6045_4618 "packetsk.img"         Plain::<PacketSockEntry>::NEW;
    "ITIMERS"        0x5746_4056 "itimers-N.img"        Plain::<ItimerEntry>::NEW;
    "POSIX_TIMERS"   0x5260_3957 "posix-timers-N.img"   Plain::<PosixTimerEntry>::NEW;
    "SK_QUEUES"      0x5626_4026 "sk-queues.img"        WithPayload::<SkPacketEntry> { len: |m| m.length as u64 };
    "UTSNS"          0x5447_3203 "utsns-N.img"          Plain::<UtsnsEntry>::NEW;
    "CREDS"          0x5402_3547 "creds-N.img"          Plain::<CredsEntry>::NEW;
    "IPC_VAR"        0x5311_5007 "ipcns-var-N.img"      Plain::<IpcVarEntry>::NEW;
    "IPCNS_SHM"      0x4628_3044 "ipcns-shm-N.img"      IpcShm;
    "IPCNS_MSG"      0x5545_3737 "ipcns-msg-N.img"      IpcMsgQueue;
    "IPCNS_SEM"      0x5957_3019 "ipcns-sem-N.img"      IpcSem;
    "REG_FILES"      0x5036_3636 "reg-files.img"        Plain::<RegFileEntry>::NEW;
    "EXT_FILES"      0x5925_5641 "ext-files.img"        Plain::<ExtFileEntry>::NEW;
    "FS"             0x5140_3912 "fs-N.img"             Plain::<FsEntry>::NEW;
    "MM"             0x5749_2820 "mm-N.img"             Plain::<MmEntry>::NEW;
    "REMAP_FPATH"    0x5913_3954 "remap-fpath.img"      Plain::<RemapFilePathEntry>::NEW;
    "GHOST_FILE"     0x5258_3605 "ghost-file-N.img"     GhostFile;
    "TCP_STREAM"     0x5146_5506 "tcp-stream-N.img"     TcpStream;
    "EVENTFD_FILE"   0x4452_3722 "eventfd.img"          Plain::<EventfdFileEntry>::NEW;
    "EVENTPOLL_FILE" 0x4502_3858 "eventpoll.img"        Plain::<EventpollFileEntry>::NEW;
    "EVENTPOLL_TFD"  0x4443_3746 "eventpoll-tfd.img"    Plain::<EventpollTfdEntry>::NEW;
    "SIGNALFD"       0x5732_3820 "signalfd.img"         Plain::<SignalfdEntry>::NEW;
    "INOTIFY_FILE"   0x4842_4431 "inotify.img"          Plain::<InotifyFileEntry>::NEW;
    "INOTIFY_WD"     0x5456_2009 "inotify-wd.img"       Plain::<InotifyWdEntry>::NEW;
    "MNTS"           0x5556_3928 "mountpoints-N.img"    Plain::<MntEntry>::NEW;
    "NETDEV"         0x5737_3951 "netdev-N.img"         Plain::<NetDeviceEntry>::NEW;
    "NETNS"          0x5593_3752 "netns-N.img"          Plain::<NetnsEntry>::NEW;
    "TTY_FILES"      0x5943_3025 "tty.img"              Plain::<TtyFileEntry>::NEW;
    "TTY_INFO"       0x5945_3036 "tty-info.img"         Plain::<TtyInfoEntry>::NEW;
    "TTY_DATA"       0x5941_3026 "tty-data.img"         Plain::<TtyDataEntry>::NEW;
    "FILE_LOCKS"     0x5432_3616 "filelocks.img"        Plain::<FileLockEntry>::NEW;
    "RLIMIT"         0x5711_3925 "rlimit-N.img"         Plain::<RlimitEntry>::NEW;
    "FANOTIFY_FILE"  0x5509_6122 "fanotify.img"         Plain::<FanotifyFileEntry>::NEW;
    "FANOTIFY_MARK"  0x5650_6035 "fanotify-mark.img"    Plain::<FanotifyMarkEntry>::NEW;
    "SIGNAL"         0x5925_5647 "signal-N.img"         Plain::<SiginfoEntry>::NEW;
    "NETLINK_SK"     0x5800_5614 "netlinksk.img"        Plain::<NetlinkSkEntry>::NEW;
    "NS_FILES"       0x6139_4011 "ns-files.img"         Plain::<NsFileEntry>::NEW;
    "TUNFILE"        0x5714_3751 "tunfile.img"          Plain::<TunfileEntry>::NEW;
    "CGROUP"         0x5938_3330 "cgroup.img"           Plain::<CgroupEntry>::NEW;
    "TIMERFD"        0x5049_3712 "timerfd.img"          Plain::<TimerfdEntry>::NEW;
    "CPUINFO"        0x6140_4013 "cpuinfo.img"          Plain::<CpuinfoEntry>::NEW;
    "USERNS"         0x5547_4906 "userns-N.img"         Plain::<UsernsEntry>::NEW;
    "SECCOMP"        0x6441_3049 "seccomp.img"          Plain::<SeccompEntry>::NEW;
    "BINFMT_MISC"    0x6734_3323 "binfmt-misc-N.img"    Plain::<BinfmtMiscEntry>::NEW;
    "AUTOFS"         0x4935_3943 "autofs-N.img"         Plain::<AutofsEntry>::NEW;
    "FILES"          0x5630_3138 "files.img"            Plain::<FileEntry>::NEW;
    "MEMFD_INODE"    0x4845_3499 "memfd.img"            Plain::<MemfdInodeEntry>::NEW;
    "TIMENS"         0x4311_4433 "timens-N.img"         Plain::<TimensEntry>::NEW;
    "PIDNS"          0x6115_7326 "pidns-N.img"          Plain::<PidnsEntry>::NEW;
    "BPFMAP_FILE"    0x5750_6142 "bpfmap-file.img"      Plain::<BpfmapFileEntry>::NEW;
    "BPFMAP_DATA"    0x6432_4033 "bpfmap-data.img"      WithPayload::<BpfmapDataEntry> { len: |m| u64::from(m.keys_bytes) + u64::from(m.values_bytes) };
    "APPARMOR"       0x5942_3047 "apparmor.img"         Plain::<ApparmorEntry>::NEW;
    "STATS"          0x5709_3306 "stats-N"              Plain::<StatsEntry>::NEW, service;
    "IRMAP_CACHE"    0x5700_4059 "irmap-cache"          Plain::<IrmapCacheEntry>::NEW, service;
}

pub fn kind_by_magic(magic: u32) -> Option<&'static ImageKind> {
    KINDS.iter().find(|k| k.magic == magic)
}

pub fn kind_by_name(name: &str) -> Option<&'static ImageKind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Look up a kind that this crate defines; a typo here is a programming
/// error caught by the unit tests.
pub fn kind(name: &str) -> &'static ImageKind {
    kind_by_name(name).unwrap_or_else(|| panic!("no image kind {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_and_names_are_unique() {
        for (i, a) in KINDS.iter().enumerate() {
            for b in &KINDS[i + 1..] {
                assert_ne!(a.magic, b.magic, "{} and {}", a.name, b.name);
                assert_ne!(a.name, b.name);
            }
        }
    }
}
