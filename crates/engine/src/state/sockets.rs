//! Sockets: unix (stream, datagram, seqpacket; pairs, bound, listening,
//! connected; queued data with message boundaries) and inet (TCP listening
//! and established through the kernel's repair mode, UDP; IPv4 and IPv6),
//! with their common options.
//!
//! Dump reads from a duplicate of the socket (pidfd_getfd): names and
//! options with getsockname/getsockopt, peers and pending connections from
//! sock_diag, queued data with MSG_PEEK and SO_PEEK_OFF (which walks the
//! queue without consuming it, one message at a time), TCP sequence numbers,
//! windows and queues with TCP_REPAIR.
//!
//! Restore builds every socket in stasis (socketpair, bind, listen,
//! connect and accept, or a repaired TCP socket), refills the queues by
//! sending from the peer's side, and hands each to its tasks.
//!
//! Kernel interfaces: socket(7), unix(7), tcp(7) TCP_REPAIR, sock_diag(7).

use crate::diag::{self, UnixInfo};
use crate::error::{Error, IoContext, Result};
use stasis_image::messages::*;
use stasis_sys::net;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

// --- addresses ----------------------------------------------------------

/// The name part of a `sockaddr_un` (path, or `\0name` if abstract).
pub fn unix_name(addr: &[u8]) -> Vec<u8> {
    if addr.len() <= 2 {
        return Vec::new();
    }
    let mut n = addr[2..].to_vec();
    if n.first() != Some(&0) {
        while n.last() == Some(&0) {
            n.pop();
        }
    }
    n
}

/// The file path of a unix socket name (none for unnamed and abstract
/// names). The kernel reports path names with their terminating NUL.
pub fn unix_path(name: &[u8]) -> Option<&std::path::Path> {
    use std::os::unix::ffi::OsStrExt;
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    (end > 0).then(|| std::path::Path::new(std::ffi::OsStr::from_bytes(&name[..end])))
}

/// A unix socket name for messages: a path, "@name" for abstract names.
pub fn fmt_unix_name(name: &[u8]) -> String {
    match (name.first(), unix_path(name)) {
        (None, _) => "unnamed".into(),
        (Some(0), _) => format!("@{}", String::from_utf8_lossy(&name[1..])),
        (_, Some(p)) => p.display().to_string(),
        _ => String::new(),
    }
}

pub fn unix_addr(name: &[u8]) -> Vec<u8> {
    let mut a = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    a.extend_from_slice(name);
    a
}

/// (address words as CRIU stores them, port) of a sockaddr_in or _in6.
fn inet_parts(addr: &[u8]) -> (Vec<u32>, u16) {
    if addr.len() < 4 {
        return (Vec::new(), 0);
    }
    let family = u16::from_ne_bytes([addr[0], addr[1]]) as i32;
    let port = u16::from_be_bytes([addr[2], addr[3]]);
    let words = |b: &[u8]| b.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
    match family {
        libc::AF_INET if addr.len() >= 8 => (words(&addr[4..8]), port),
        libc::AF_INET6 if addr.len() >= 24 => (words(&addr[8..24]), port),
        _ => (Vec::new(), port),
    }
}

fn inet_addr(family: u32, words: &[u32], port: u16) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&(family as u16).to_ne_bytes());
    a.extend_from_slice(&port.to_be_bytes());
    if family == libc::AF_INET as u32 {
        a.extend_from_slice(&words.first().copied().unwrap_or(0).to_ne_bytes());
        a.extend_from_slice(&[0; 8]);
    } else {
        a.extend_from_slice(&[0; 4]); // flowinfo
        for i in 0..4 {
            a.extend_from_slice(&words.get(i).copied().unwrap_or(0).to_ne_bytes());
        }
        a.extend_from_slice(&[0; 4]); // scope id
    }
    a
}

fn fmt_inet(words: &[u32], port: u16) -> String {
    match words.len() {
        1 => format!("{}:{port}", std::net::Ipv4Addr::from(u32::from_be(words[0]))),
        4 => {
            let mut b = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            format!("[{}]:{port}", std::net::Ipv6Addr::from(b))
        }
        _ => format!("?:{port}"),
    }
}

// --- options ------------------------------------------------------------

const SO_BUF_LOCK: i32 = 72;

fn int_opt(fd: BorrowedFd<'_>, level: i32, opt: i32) -> Option<u32> {
    net::getsockopt_int(fd, level, opt).ok().map(|v| v as u32)
}

fn timeval_opt(fd: BorrowedFd<'_>, opt: i32) -> (u64, u64) {
    let mut b = [0u8; 16];
    if net::getsockopt(fd, libc::SOL_SOCKET, opt, &mut b).is_err() {
        return (0, 0);
    }
    (u64::from_ne_bytes(b[0..8].try_into().unwrap_or([0; 8])), u64::from_ne_bytes(b[8..16].try_into().unwrap_or([0; 8])))
}

pub fn dump_opts(fd: BorrowedFd<'_>, inet: bool) -> SkOptsEntry {
    let b = |opt| int_opt(fd, libc::SOL_SOCKET, opt).map(|v| v != 0);
    let (snd_s, snd_us) = timeval_opt(fd, libc::SO_SNDTIMEO);
    let (rcv_s, rcv_us) = timeval_opt(fd, libc::SO_RCVTIMEO);
    let mut linger = [0u8; 8];
    let so_linger = net::getsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &mut linger)
        .ok()
        .and_then(|_| (i32::from_ne_bytes(linger[0..4].try_into().unwrap_or([0; 4])) != 0).then(|| u32::from_ne_bytes(linger[4..8].try_into().unwrap_or([0; 4]))));
    SkOptsEntry {
        so_sndbuf: int_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF).unwrap_or(0),
        so_rcvbuf: int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF).unwrap_or(0),
        so_snd_tmo_sec: snd_s,
        so_snd_tmo_usec: snd_us,
        so_rcv_tmo_sec: rcv_s,
        so_rcv_tmo_usec: rcv_us,
        reuseaddr: b(libc::SO_REUSEADDR),
        so_priority: int_opt(fd, libc::SOL_SOCKET, libc::SO_PRIORITY),
        so_rcvlowat: int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVLOWAT),
        so_mark: int_opt(fd, libc::SOL_SOCKET, libc::SO_MARK).filter(|&m| m != 0),
        so_passcred: if inet { None } else { b(libc::SO_PASSCRED) },
        so_passsec: if inet { None } else { b(libc::SO_PASSSEC) },
        so_dontroute: b(libc::SO_DONTROUTE),
        so_no_check: b(libc::SO_NO_CHECK),
        so_reuseport: b(libc::SO_REUSEPORT),
        so_broadcast: b(libc::SO_BROADCAST),
        so_keepalive: b(libc::SO_KEEPALIVE),
        so_oobinline: int_opt(fd, libc::SOL_SOCKET, libc::SO_OOBINLINE),
        so_linger,
        so_buf_lock: int_opt(fd, libc::SOL_SOCKET, SO_BUF_LOCK),
        ..SkOptsEntry::default()
    }
}

fn set_bool(fd: BorrowedFd<'_>, opt: i32, v: Option<bool>) -> Result<()> {
    if let Some(v) = v {
        net::setsockopt_int(fd, libc::SOL_SOCKET, opt, i32::from(v))?;
    }
    Ok(())
}

pub fn restore_opts(fd: BorrowedFd<'_>, o: &SkOptsEntry) -> Result<()> {
    // The sizes as they were (the kernel doubles what it is given; force,
    // so limits do not clip it), then whether the kernel may tune them.
    if o.so_sndbuf > 0 {
        net::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, (o.so_sndbuf / 2) as i32)?;
    }
    if o.so_rcvbuf > 0 {
        net::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (o.so_rcvbuf / 2) as i32)?;
    }
    if let Some(lock) = o.so_buf_lock {
        let _ = net::setsockopt_int(fd, libc::SOL_SOCKET, SO_BUF_LOCK, lock as i32);
    }
    for (opt, s, us) in [(libc::SO_SNDTIMEO, o.so_snd_tmo_sec, o.so_snd_tmo_usec), (libc::SO_RCVTIMEO, o.so_rcv_tmo_sec, o.so_rcv_tmo_usec)] {
        if s != 0 || us != 0 {
            let mut tv = s.to_ne_bytes().to_vec();
            tv.extend_from_slice(&us.to_ne_bytes());
            net::setsockopt(fd, libc::SOL_SOCKET, opt, &tv)?;
        }
    }
    set_bool(fd, libc::SO_REUSEADDR, o.reuseaddr)?;
    set_bool(fd, libc::SO_REUSEPORT, o.so_reuseport)?;
    set_bool(fd, libc::SO_PASSCRED, o.so_passcred)?;
    set_bool(fd, libc::SO_PASSSEC, o.so_passsec)?;
    set_bool(fd, libc::SO_DONTROUTE, o.so_dontroute)?;
    set_bool(fd, libc::SO_NO_CHECK, o.so_no_check)?;
    set_bool(fd, libc::SO_BROADCAST, o.so_broadcast)?;
    set_bool(fd, libc::SO_KEEPALIVE, o.so_keepalive)?;
    if let Some(v) = o.so_priority.filter(|&v| v != 0) {
        net::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PRIORITY, v as i32)?;
    }
    if let Some(v) = o.so_rcvlowat.filter(|&v| v > 1) {
        net::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVLOWAT, v as i32)?;
    }
    if let Some(v) = o.so_mark {
        net::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_MARK, v as i32)?;
    }
    if let Some(v) = o.so_oobinline.filter(|&v| v != 0) {
        net::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_OOBINLINE, v as i32)?;
    }
    if let Some(t) = o.so_linger {
        let mut l = 1i32.to_ne_bytes().to_vec();
        l.extend_from_slice(&(t as i32).to_ne_bytes());
        net::setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &l)?;
    }
    Ok(())
}

// --- queues -------------------------------------------------------------

const SO_PEEK_OFF: i32 = 42;

/// Every message in a socket's receive queue, oldest first, without
/// consuming any: MSG_PEEK with a peek offset walks the queue. Refuses
/// queues carrying descriptors (SCM_RIGHTS).
/// A queued message and the raw address of its sender (datagrams).
pub struct Queued {
    pub data: Vec<u8>,
    pub addr: Vec<u8>,
}

/// `stream`: a zero-length read is the end of the data (for datagrams it
/// is an empty message; the end is EAGAIN).
pub fn peek_queue(fd: BorrowedFd<'_>, what: &str, stream: bool) -> Result<Vec<Queued>> {
    let mut out = Vec::new();
    let pending = {
        let mut v = 0u64;
        stasis_sys::net::ioctl_u64(fd, libc::FIONREAD, &mut v).map(|_| v as u32 as usize).unwrap_or(0)
    };
    // The program's own peek offset, put back afterwards.
    let own_peek_off = net::getsockopt_int(fd, libc::SOL_SOCKET, SO_PEEK_OFF).unwrap_or(-1);
    net::setsockopt_int(fd, libc::SOL_SOCKET, SO_PEEK_OFF, 0)?;
    let r = (|| -> Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match net::recvmsg(fd, &mut buf, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
                Ok(m) => {
                    if !m.fds.is_empty() {
                        return Err(Error::Unsupported(format!(
                            "{what} has file descriptors in flight (SCM_RIGHTS) in its queue; they cannot be saved yet"
                        )));
                    }
                    if m.ctrunc {
                        return Err(Error::Unsupported(format!(
                            "{what} has a message whose ancillary data (descriptors in flight?) could not be read"
                        )));
                    }
                    if m.len == 0 && stream {
                        return Ok(());
                    }
                    if m.truncated {
                        return Err(Error::Unsupported(format!("{what} queues a message larger than 256 KiB")));
                    }
                    out.push(Queued { data: buf[..m.len].to_vec(), addr: m.addr });
                    if out.iter().map(|q| q.data.len()).sum::<usize>() >= pending && pending > 0 && out.len() > 100_000 {
                        return Ok(());
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    })();
    let _ = net::setsockopt_int(fd, libc::SOL_SOCKET, SO_PEEK_OFF, own_peek_off);
    r?;
    Ok(out)
}

// --- unix sockets: dump ---------------------------------------------------

const TCP_LISTEN: u8 = 10;
const TCP_ESTABLISHED: u8 = 1;
const TCP_CLOSE: u8 = 7;
/// UnixSkEntry.uflags: the socket is outside the dumped tree.
pub const USK_EXTERN: u32 = 1;

/// Unix socket state collected during a dump.
#[derive(Default)]
pub struct UnixDump {
    diag: Option<HashMap<u32, UnixInfo>>,
    /// (pid, fd, peer inode) of sockets whose peer must be in the tree.
    pub peers: Vec<(i32, i32, u32)>,
    /// Inodes of every unix socket dumped.
    pub inodes: Vec<u32>,
    /// Connections waiting in a dumped listener's accept queue:
    /// (pid, fd of the listener, inode of the client socket).
    pending: Vec<(i32, i32, u32)>,
    /// Clients of waiting connections that were dumped.
    claimed: Vec<u32>,
}

impl UnixDump {
    /// The listener that has a connection from client socket `client`
    /// waiting to be accepted, if any (sock_diag lists a listener's
    /// waiting connections by their clients' inodes).
    fn listener_of(&mut self, client: u32) -> Result<Option<u32>> {
        self.info(client)?;
        Ok(self.diag.as_ref().and_then(|m| m.values().find(|l| l.state == TCP_LISTEN && l.icons.contains(&client)).map(|l| l.ino)))
    }

    fn info(&mut self, ino: u32) -> Result<UnixInfo> {
        if self.diag.is_none() {
            self.diag = Some(diag::unix_sockets()?);
        }
        self.diag
            .as_ref()
            .and_then(|m| m.get(&ino).cloned())
            .ok_or_else(|| Error::Unsupported(format!("unix socket {ino} is not known to sock_diag")))
    }
}

fn shutdown_of(s: u8) -> Option<i32> {
    match s & 3 {
        0 => None,
        1 => Some(SkShutdown::READ),
        2 => Some(SkShutdown::WRITE),
        _ => Some(SkShutdown::BOTH),
    }
}

/// A unix socket: its entry, and its queued messages (for sk-queues.img).
pub fn dump_unix(pid: i32, fd: i32, id: u32, f: &File, ino: u32, flags: u32, u: &mut UnixDump) -> Result<(UnixSkEntry, Vec<Queued>)> {
    let info = u.info(ino)?;
    let sfd = f.as_fd();
    let what = format!("unix socket fd {fd} of {pid}");
    let mut e = UnixSkEntry {
        id,
        ino,
        r#type: u32::from(info.ty),
        state: u32::from(info.state),
        flags,
        uflags: 0,
        backlog: info.rqlen.1,
        peer: info.peer,
        fown: FownEntry::default(),
        opts: dump_opts(sfd, false),
        name: info.name.clone(),
        shutdown: shutdown_of(info.shutdown),
        ns_id: Some(2),
        ..UnixSkEntry::default()
    };
    // Connections not yet accepted: each client, dumped too, is connected
    // to the listener again on restore (the kernel gives no way to read
    // what a client sent before being accepted, so that must be nothing).
    if info.state == TCP_LISTEN {
        if info.icons.contains(&0) {
            return Err(Error::Unsupported(format!("{what} has a connection not yet accepted whose client has closed; it cannot be saved")));
        }
        u.pending.extend(info.icons.iter().map(|&i| (pid, fd, i)));
    } else if info.state == TCP_ESTABLISHED && info.ty != libc::SOCK_DGRAM as u8 {
        // (Its peer, not yet a socket with an inode, shows as none.)
        if let Some(listener) = u.listener_of(ino)? {
            if info.rqlen.1 != 0 {
                return Err(Error::Unsupported(format!(
                    "{what} sent {} bytes on a connection not yet accepted; they cannot be saved",
                    info.rqlen.1
                )));
            }
            u.claimed.push(ino);
            e.peer = listener;
        }
    }
    if !info.name.is_empty() && info.name[0] != 0 && info.name[0] != b'/' {
        return Err(Error::Unsupported(format!(
            "{what} is bound to the relative path {}, which stasis cannot restore yet",
            fmt_unix_name(&info.name)
        )));
    }
    if !info.name.is_empty() && info.name[0] != 0 {
        // A path: keep its permissions; note if it was removed.
        let path = unix_path(&info.name).unwrap_or(std::path::Path::new(""));
        match std::fs::symlink_metadata(path) {
            Ok(md) if info.vfs.is_some_and(|(vino, _)| u64::from(vino) == std::os::unix::fs::MetadataExt::ino(&md)) => {
                use std::os::unix::fs::MetadataExt;
                e.file_perms = Some(FilePermsEntry { mode: md.mode(), uid: md.uid(), gid: md.gid() });
            }
            _ => e.deleted = Some(true),
        }
    }
    let queue = if info.state == TCP_LISTEN { Vec::new() } else { peek_queue(sfd, &what, info.ty == libc::SOCK_STREAM as u8)? };
    if e.peer != 0 {
        u.peers.push((pid, fd, e.peer));
    }
    u.inodes.push(ino);
    Ok((e, queue))
}

/// Entries for peers outside the tree (with `--ext-unix-sk`), or the
/// refusal naming the first such socket.
pub fn external_peers(u: &mut UnixDump, ext_ok: bool, next_id: &mut dyn FnMut() -> u32) -> Result<Vec<UnixSkEntry>> {
    if let Some((pid, fd, _)) = u.pending.iter().find(|(_, _, i)| !u.claimed.contains(i)) {
        return Err(Error::Unsupported(format!(
            "unix socket fd {fd} of {pid} is listening with a connection not yet accepted from outside the dumped tree; it cannot be saved"
        )));
    }
    let mut out = Vec::new();
    for (pid, fd, peer) in u.peers.clone() {
        if u.inodes.contains(&peer) || out.iter().any(|e: &UnixSkEntry| e.ino == peer) {
            continue;
        }
        let info = match u.info(peer) {
            Ok(i) => i,
            Err(_) => continue, // the peer is gone: nothing to reconnect to
        };
        if !ext_ok {
            return Err(Error::Unsupported(format!(
                "unix socket fd {fd} of {pid} is connected to socket {peer} outside the dumped tree{}; use --ext-unix-sk to reconnect it by name on restore",
                if info.name.is_empty() { String::new() } else { format!(" ({})", fmt_unix_name(&info.name)) }
            )));
        }
        if info.name.is_empty() {
            return Err(Error::Unsupported(format!(
                "unix socket fd {fd} of {pid} is connected to an unnamed socket outside the dumped tree; it cannot be reconnected"
            )));
        }
        out.push(UnixSkEntry {
            id: next_id(),
            ino: peer,
            r#type: u32::from(info.ty),
            state: u32::from(info.state),
            uflags: USK_EXTERN,
            name: info.name,
            opts: SkOptsEntry::default(),
            ns_id: Some(2),
            ..UnixSkEntry::default()
        });
    }
    Ok(out)
}

// --- inet sockets: dump ---------------------------------------------------

const TCP_REPAIR: i32 = 19;
const TCP_REPAIR_QUEUE: i32 = 20;
const TCP_QUEUE_SEQ: i32 = 21;
const TCP_REPAIR_OPTIONS: i32 = 22;
const TCP_TIMESTAMP: i32 = 24;
const TCP_REPAIR_WINDOW: i32 = 29;
const TCP_RECV_QUEUE: i32 = 1;
const TCP_SEND_QUEUE: i32 = 2;
const SIOCOUTQNSD: u64 = 0x894B;
const TCPI_OPT_TIMESTAMPS: u32 = 1;
const TCPI_OPT_SACK: u32 = 2;
const TCPI_OPT_WSCALE: u32 = 4;

/// A TCP connection saved in repair mode.
pub struct TcpStream {
    pub ino: u32,
    pub entry: TcpStreamEntry,
    pub inq: Vec<u8>,
    pub outq: Vec<u8>,
}

/// Inet socket state collected during a dump.
#[derive(Default)]
pub struct InetDump {
    tcp_diag: BTreeMap<i32, HashMap<u32, diag::InetInfo>>,
    /// Sockets put into repair mode: repair is switched off again if the
    /// dump fails or the tree is left running.
    pub repaired: Vec<OwnedFd>,
    pub streams: Vec<TcpStream>,
    /// Established connections: (local, remote) as "addr:port" text.
    pub connections: Vec<(Vec<u32>, u16, Vec<u32>, u16)>,
}

impl InetDump {
    fn tcp_info(&mut self, family: i32, ino: u32) -> Result<Option<diag::InetInfo>> {
        if let std::collections::btree_map::Entry::Vacant(v) = self.tcp_diag.entry(family) {
            v.insert(diag::tcp_sockets(family)?);
        }
        Ok(self.tcp_diag.get(&family).and_then(|m| m.get(&ino).copied()))
    }

    /// Leave repair mode on every socket we put in it (the connections
    /// go on as before).
    pub fn release(&mut self) {
        for fd in self.repaired.drain(..) {
            let _ = net::setsockopt_int(fd.as_fd(), libc::IPPROTO_TCP, TCP_REPAIR, 0);
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn dump_inet(pid: i32, fd: i32, id: u32, f: &File, ino: u32, flags: u32, tcp_established: bool, d: &mut InetDump) -> Result<(InetSkEntry, Vec<Queued>)> {
    let sfd = f.as_fd();
    let what = format!("socket fd {fd} of {pid}");
    let family = net::getsockopt_int(sfd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let ty = net::getsockopt_int(sfd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    let proto = net::getsockopt_int(sfd, libc::SOL_SOCKET, libc::SO_PROTOCOL)?;
    let (src, sport) = inet_parts(&net::sockname(sfd)?);
    let peer = net::peername(sfd).ok();
    let (dst, dport) = peer.as_deref().map(inet_parts).unwrap_or_else(|| (vec![0; if family == libc::AF_INET6 { 4 } else { 1 }], 0));
    let mut e = InetSkEntry {
        id,
        ino,
        family: family as u32,
        r#type: ty as u32,
        proto: proto as u32,
        state: u32::from(TCP_CLOSE),
        src_port: u32::from(sport),
        dst_port: u32::from(dport),
        flags,
        backlog: 0,
        src_addr: src.clone(),
        dst_addr: dst.clone(),
        fown: FownEntry::default(),
        opts: dump_opts(sfd, true),
        ip_opts: Some(IpOptsEntry {
            freebind: int_opt(sfd, libc::SOL_IP, libc::IP_FREEBIND).map(|v| v != 0).filter(|&v| v),
            ttl: int_opt(sfd, if family == libc::AF_INET6 { libc::IPPROTO_IPV6 } else { libc::SOL_IP }, if family == libc::AF_INET6 { libc::IPV6_UNICAST_HOPS } else { libc::IP_TTL }),
            tos: int_opt(sfd, libc::SOL_IP, libc::IP_TOS).filter(|&v| v != 0),
            ..IpOptsEntry::default()
        }),
        ns_id: Some(2),
        ..InetSkEntry::default()
    };
    if family == libc::AF_INET6 {
        e.v6only = int_opt(sfd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).map(|v| v != 0);
    }
    let mut queue = Vec::new();
    match (ty, proto) {
        (libc::SOCK_STREAM, libc::IPPROTO_TCP) => {
            let info = d.tcp_info(family, ino)?;
            let state = info.map(|i| i.state).unwrap_or(TCP_CLOSE);
            e.state = u32::from(state);
            e.tcp_opts = Some(TcpOptsEntry {
                cork: None,
                nodelay: int_opt(sfd, libc::IPPROTO_TCP, libc::TCP_NODELAY).map(|v| v != 0).filter(|&v| v),
                keepcnt: int_opt(sfd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
                keepidle: int_opt(sfd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
                keepintvl: int_opt(sfd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
            });
            match state {
                TCP_LISTEN => {
                    let i = info.unwrap_or_default();
                    if i.rqueue != 0 {
                        return Err(Error::Unsupported(format!(
                            "{what} is listening with {} connections not yet accepted; they cannot be saved",
                            i.rqueue
                        )));
                    }
                    e.backlog = i.wqueue;
                }
                TCP_ESTABLISHED => {
                    if !tcp_established {
                        return Err(Error::Refused(format!(
                            "{what} is an established TCP connection {} -> {}; dump it with --tcp-established",
                            fmt_inet(&src, sport),
                            fmt_inet(&dst, dport)
                        )));
                    }
                    d.streams.push(repair_dump(sfd, ino, &what, &mut d.repaired)?);
                    d.connections.push((src, sport, dst, dport));
                }
                TCP_CLOSE => {}
                s => {
                    return Err(Error::Unsupported(format!("{what} is a TCP socket in state {s}, which cannot be saved yet")))
                }
            }
        }
        (libc::SOCK_DGRAM, libc::IPPROTO_UDP) | (libc::SOCK_DGRAM, 0) => {
            if peer.is_some() {
                e.state = u32::from(TCP_ESTABLISHED);
            }
            queue = peek_queue(sfd, &what, false)?;
        }
        _ => {
            return Err(Error::Unsupported(format!("{what} is an inet socket of type {ty}, protocol {proto}, which cannot be saved yet")))
        }
    }
    Ok((e, queue))
}

fn tcp_info_raw(fd: BorrowedFd<'_>) -> Result<[u8; 232]> {
    let mut b = [0u8; 232];
    net::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, &mut b)?;
    Ok(b)
}

/// Read a connection's state in repair mode (the socket stays in it: a
/// socket closed in repair mode vanishes without a FIN or a reset).
fn repair_dump(fd: BorrowedFd<'_>, ino: u32, what: &str, repaired: &mut Vec<OwnedFd>) -> Result<TcpStream> {
    // Kept first, so that whatever happens next the socket is found and
    // taken out of repair mode again if the dump does not go through.
    let keep = fd.try_clone_to_owned().ctx(|| "dup socket".into())?;
    net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_REPAIR, 1)
        .map_err(|e| Error::Unsupported(format!("{what}: TCP repair mode is not available: {}", crate::error::detail(&e))))?;
    repaired.push(keep);
    let queue = |q: i32, len_ioctl: u64| -> Result<(u32, Vec<u8>)> {
        net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_REPAIR_QUEUE, q)?;
        let seq = net::getsockopt_int(fd, libc::IPPROTO_TCP, TCP_QUEUE_SEQ)? as u32;
        let mut len = 0u64;
        net::ioctl_u64(fd, len_ioctl, &mut len)?;
        let len = len as u32 as usize;
        let mut data = vec![0u8; len];
        if len > 0 {
            // One read takes the whole queue; a shorter one (urgent data
            // stops it) would leave a gap the sequence numbers cannot show.
            let m = net::recvmsg(fd, &mut data, libc::MSG_PEEK | libc::MSG_DONTWAIT)?;
            if m.len != len {
                return Err(Error::Unsupported(format!(
                    "{what}: read {} of the {len} bytes of its {} queue (urgent data?)",
                    m.len,
                    if q == TCP_SEND_QUEUE { "send" } else { "receive" }
                )));
            }
        }
        Ok((seq, data))
    };
    let (inq_seq, inq) = queue(TCP_RECV_QUEUE, libc::FIONREAD)?;
    let (outq_seq, outq) = queue(TCP_SEND_QUEUE, libc::TIOCOUTQ)?;
    let mut unsq = 0u64;
    let _ = net::ioctl_u64(fd, SIOCOUTQNSD, &mut unsq);
    let info = tcp_info_raw(fd)?;
    let opts = u32::from(info[5]);
    let mut w = [0u8; 20];
    net::getsockopt(fd, libc::IPPROTO_TCP, TCP_REPAIR_WINDOW, &mut w)?;
    let wu = |i: usize| u32::from_ne_bytes(w[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4]));
    let entry = TcpStreamEntry {
        inq_len: inq.len() as u32,
        inq_seq,
        outq_len: outq.len() as u32,
        outq_seq,
        opt_mask: opts,
        snd_wscale: u32::from(info[6] & 0xf),
        mss_clamp: net::getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG)? as u32,
        rcv_wscale: Some(u32::from(info[6] >> 4)),
        timestamp: (opts & TCPI_OPT_TIMESTAMPS != 0)
            .then(|| net::getsockopt_int(fd, libc::IPPROTO_TCP, TCP_TIMESTAMP).map(|v| v as u32))
            .transpose()?,
        cork: None,
        nodelay: None,
        unsq_len: Some(unsq as u32),
        snd_wl1: Some(wu(0)),
        snd_wnd: Some(wu(1)),
        max_window: Some(wu(2)),
        rcv_wnd: Some(wu(3)),
        rcv_wup: Some(wu(4)),
    };
    Ok(TcpStream { ino, entry, inq, outq })
}

// --- restore ------------------------------------------------------------

/// Every socket of a checkpoint, created in stasis.
#[derive(Default)]
pub struct Sockets {
    by_id: HashMap<u32, OwnedFd>,
}

impl Sockets {
    pub fn get(&self, id: u32) -> Option<&OwnedFd> {
        self.by_id.get(&id)
    }
}

fn socket_err(e: stasis_sys::Error, what: impl FnOnce() -> String) -> Error {
    Error::Unsupported(format!("{}: {}", what(), crate::error::detail(&e)))
}

/// Build all sockets: unix sockets pairwise as they were connected, inet
/// sockets bound, listening or repaired; then refill every queue.
pub fn build(
    files: &HashMap<u32, FileEntry>,
    queues: &[(SkPacketEntry, Vec<u8>)],
    streams: &HashMap<u32, (TcpStreamEntry, Vec<u8>, Vec<u8>)>,
    tcp_established: bool,
) -> Result<Sockets> {
    let mut s = Sockets::default();
    let usk: Vec<&UnixSkEntry> = files.values().filter_map(|f| f.usk.as_ref()).collect();
    let by_ino: HashMap<u32, &UnixSkEntry> = usk.iter().map(|u| (u.ino, *u)).collect();
    let mut peer_fd: HashMap<u32, OwnedFd> = HashMap::new(); // id -> the socket that sends into it
    let mut sorted: Vec<&&UnixSkEntry> = usk.iter().filter(|u| u.uflags & USK_EXTERN == 0).collect();
    // Listeners first, so that connections can be made to them; clients
    // still waiting to be accepted last, so that the accepts that rebuild
    // accepted connections do not take them.
    let waiting = |u: &UnixSkEntry| by_ino.get(&u.peer).is_some_and(|p| p.state == u32::from(TCP_LISTEN));
    sorted.sort_by_key(|u| (u.state != u32::from(TCP_LISTEN), waiting(u), u.id));
    for u in &sorted {
        if s.by_id.contains_key(&u.id) {
            continue;
        }
        let ty = u.r#type as i32;
        let what = || format!("unix socket {} ({})", u.ino, fmt_unix_name(&u.name));
        let bind_name = |fd: BorrowedFd<'_>, e: &UnixSkEntry| -> Result<()> {
            if e.name.is_empty() {
                return Ok(());
            }
            if e.name[0] != 0 {
                let p = unix_path(&e.name).unwrap_or(std::path::Path::new("")).to_path_buf();
                // The socket file of a dead socket is stale: replace it. One
                // that still answers belongs to a live socket: leave it.
                if std::fs::symlink_metadata(&p).is_ok_and(|m| {
                    use std::os::unix::fs::FileTypeExt;
                    m.file_type().is_socket()
                }) {
                    let probe = net::socket(libc::AF_UNIX, e.r#type as i32, 0)?;
                    match net::connect(probe.as_fd(), &unix_addr(&e.name)) {
                        Err(er) if er.raw_os_error() == Some(libc::ECONNREFUSED) => {
                            let _ = std::fs::remove_file(&p);
                        }
                        Err(_) => {}
                        Ok(()) => {
                            return Err(Error::Refused(format!(
                                "{} is in use by a live socket (is the dumped process still running?)",
                                p.display()
                            )))
                        }
                    }
                }
                net::bind(fd, &unix_addr(&e.name)).map_err(|er| socket_err(er, || format!("bind {}", p.display())))?;
                if let Some(perm) = &e.file_perms {
                    let _ = std::os::unix::fs::chown(&p, Some(perm.uid), Some(perm.gid));
                    let _ = std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(perm.mode & 0o7777));
                }
                if e.deleted == Some(true) {
                    let _ = std::fs::remove_file(&p);
                }
            } else {
                net::bind(fd, &unix_addr(&e.name)).map_err(|er| socket_err(er, || format!("bind {}", fmt_unix_name(&e.name))))?;
            }
            Ok(())
        };
        let peer = by_ino.get(&u.peer).copied();
        if u.state == u32::from(TCP_LISTEN) {
            let fd = net::socket(libc::AF_UNIX, ty, 0)?;
            bind_name(fd.as_fd(), u)?;
            net::listen(fd.as_fd(), u.backlog as i32)?;
            s.by_id.insert(u.id, fd);
            continue;
        }
        match peer {
            // A connected pair, both ours.
            Some(p) if p.uflags & USK_EXTERN == 0 && p.peer == u.ino => {
                // Accepted from a listener of ours: connect and accept for
                // real, so both ends carry the listener's name as they did.
                let listener = sorted.iter().find(|l| l.state == u32::from(TCP_LISTEN) && !l.name.is_empty() && (l.name == u.name || l.name == p.name));
                let (a, b) = if let (Some(l), true) = (listener, ty != libc::SOCK_DGRAM) {
                    let (server, client): (&UnixSkEntry, &UnixSkEntry) = if l.name == u.name { (u, p) } else { (p, u) };
                    let c = net::socket(libc::AF_UNIX, ty, 0)?;
                    bind_name(c.as_fd(), client)?;
                    let lfd = s.by_id.get(&l.id).ok_or_else(|| Error::BadImage(format!("listener {} missing", l.ino)))?;
                    net::connect(c.as_fd(), &unix_addr(&l.name)).map_err(|e| socket_err(e, what))?;
                    let srv = net::accept(lfd.as_fd())?;
                    if server.id == u.id {
                        (srv, c)
                    } else {
                        (c, srv)
                    }
                } else {
                    let (a, b) = net::socketpair(libc::AF_UNIX, ty)?;
                    bind_name(a.as_fd(), u)?;
                    bind_name(b.as_fd(), p)?;
                    (a, b)
                };
                peer_fd.insert(u.id, b.try_clone().ctx(|| "dup socket".into())?);
                peer_fd.insert(p.id, a.try_clone().ctx(|| "dup socket".into())?);
                s.by_id.insert(u.id, a);
                s.by_id.insert(p.id, b);
            }
            // Connected one way (a datagram socket to a named one), to a
            // socket of ours or outside.
            Some(p) => {
                let fd = net::socket(libc::AF_UNIX, ty, 0)?;
                bind_name(fd.as_fd(), u)?;
                if p.uflags & USK_EXTERN == 0 && !s.by_id.contains_key(&p.id) {
                    // Make the target first.
                    let t = net::socket(libc::AF_UNIX, p.r#type as i32, 0)?;
                    bind_name(t.as_fd(), p)?;
                    s.by_id.insert(p.id, t);
                }
                net::connect(fd.as_fd(), &unix_addr(&p.name)).map_err(|e| socket_err(e, what))?;
                s.by_id.insert(u.id, fd);
            }
            // Unconnected, or its peer is gone (data may remain to read).
            None => {
                if u.state == u32::from(TCP_ESTABLISHED) && ty != libc::SOCK_DGRAM {
                    let (a, b) = net::socketpair(libc::AF_UNIX, ty)?;
                    bind_name(a.as_fd(), u)?;
                    peer_fd.insert(u.id, b); // closed once the queue is refilled
                    s.by_id.insert(u.id, a);
                } else {
                    let fd = net::socket(libc::AF_UNIX, ty, 0)?;
                    bind_name(fd.as_fd(), u)?;
                    s.by_id.insert(u.id, fd);
                }
            }
        }
    }
    // Inet sockets: listeners and other bound sockets first, repaired
    // connections last (repair mode lets them share a listener's port;
    // a listener cannot bind next to a connection that is out of repair).
    let mut inet: Vec<&InetSkEntry> = files.values().filter_map(|f| f.isk.as_ref()).collect();
    inet.sort_by_key(|i| (i.proto == libc::IPPROTO_TCP as u32 && i.state == u32::from(TCP_ESTABLISHED), i.id));
    for i in inet {
        let fd = build_inet(i, streams, tcp_established)?;
        s.by_id.insert(i.id, fd);
    }
    // Queues, in order, sent from the side that feeds each socket.
    for (q, data) in queues {
        let Some(target) = s.by_id.get(&q.id_for) else {
            return Err(Error::BadImage(format!("sk-queues.img: no socket with id {}", q.id_for)));
        };
        let entry = files.get(&q.id_for);
        if let Some(i) = entry.and_then(|e| e.isk.as_ref()) {
            // A datagram for a UDP socket: from the restored socket that
            // sent it if it is ours (the receiver sees the same source),
            // else from a socket of stasis, which a connected socket would
            // not accept.
            let to = net::sockname(target.as_fd())?;
            let ours = q.addr.as_ref().and_then(|a| {
                files.values().filter_map(|f| f.isk.as_ref()).find_map(|o| {
                    let fd = s.by_id.get(&o.id)?;
                    (o.r#type == libc::SOCK_DGRAM as u32 && net::sockname(fd.as_fd()).ok().as_ref() == Some(a)).then_some(fd)
                })
            });
            match ours {
                Some(from) => {
                    net::sendmsg(from.as_fd(), data, Some(&to), 0)?;
                }
                None if i.state == u32::from(TCP_ESTABLISHED) => {
                    tracing::warn!(
                        "UDP socket {} ({}) is connected to a sender outside the tree: a queued datagram of {} bytes is dropped",
                        i.ino,
                        fmt_inet(&i.src_addr, i.src_port as u16),
                        data.len()
                    );
                }
                None => {
                    let tmp = net::socket(i.family as i32, libc::SOCK_DGRAM, 0)?;
                    net::sendmsg(tmp.as_fd(), data, Some(&to), 0)?;
                }
            }
            continue;
        }
        // A datagram from a named socket we restored: sent from that
        // socket, so the receiver sees the same sender address (streams
        // are fed by their peer below).
        let is_dgram = entry.and_then(|e| e.usk.as_ref()).is_some_and(|u| u.r#type == libc::SOCK_DGRAM as u32);
        let sender = q.addr.as_ref().filter(|a| a.len() > 2 && is_dgram).and_then(|a| {
            let name = &a[2..];
            let trim = |n: &[u8]| n.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            usk.iter()
                .find(|u| u.uflags & USK_EXTERN == 0 && !u.name.is_empty() && u.name[..trim(&u.name)] == name[..trim(name)])
                .and_then(|u| s.by_id.get(&u.id))
        });
        let to = net::sockname(target.as_fd())?;
        if let Some(from) = sender.filter(|_| to.len() > 2) {
            net::sendmsg(from.as_fd(), data, Some(&to), 0)?;
            continue;
        }
        match peer_fd.get(&q.id_for) {
            Some(p) => {
                net::sendmsg(p.as_fd(), data, None, 0)?;
            }
            None => {
                // A named datagram socket receiving from anyone.
                let u = entry.and_then(|e| e.usk.as_ref()).ok_or_else(|| Error::BadImage(format!("sk-queues.img: {} is not a socket", q.id_for)))?;
                let tmp = net::socket(libc::AF_UNIX, u.r#type as i32, 0)?;
                net::sendmsg(tmp.as_fd(), data, Some(&to), 0)?;
            }
        }
    }
    // Shutdowns, options, file flags.
    for u in &sorted {
        let Some(fd) = s.by_id.get(&u.id) else { continue };
        if let Some(how) = u.shutdown {
            let how = match how {
                SkShutdown::READ => libc::SHUT_RD,
                SkShutdown::WRITE => libc::SHUT_WR,
                _ => libc::SHUT_RDWR,
            };
            let _ = net::shutdown(fd.as_fd(), how);
        }
        restore_opts(fd.as_fd(), &u.opts)?;
        stasis_sys::fd::set_status_flags(fd.as_fd(), u.flags as i32 & (libc::O_NONBLOCK | libc::O_ASYNC))?;
    }
    Ok(s)
}

fn build_inet(i: &InetSkEntry, streams: &HashMap<u32, (TcpStreamEntry, Vec<u8>, Vec<u8>)>, tcp_established: bool) -> Result<OwnedFd> {
    let what = || format!("{} socket {} ({})", if i.proto == libc::IPPROTO_TCP as u32 { "TCP" } else { "UDP" }, i.ino, fmt_inet(&i.src_addr, i.src_port as u16));
    let fd = net::socket(i.family as i32, i.r#type as i32, i.proto as i32)?;
    let sfd = fd.as_fd();
    if let Some(v6) = i.v6only {
        net::setsockopt_int(sfd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, i32::from(v6))?;
    }
    if let Some(ip) = &i.ip_opts {
        if ip.freebind == Some(true) {
            net::setsockopt_int(sfd, libc::SOL_IP, libc::IP_FREEBIND, 1)?;
        }
        if let Some(t) = ip.tos {
            net::setsockopt_int(sfd, libc::SOL_IP, libc::IP_TOS, t as i32)?;
        }
    }
    let local = inet_addr(i.family, &i.src_addr, i.src_port as u16);
    let remote = inet_addr(i.family, &i.dst_addr, i.dst_port as u16);
    let state = i.state as u8;
    if state == TCP_ESTABLISHED && i.proto == libc::IPPROTO_TCP as u32 {
        if !tcp_established {
            return Err(Error::Refused(format!("{} is an established connection; restore with --tcp-established", what())));
        }
        let (st, inq, outq) = streams.get(&i.ino).ok_or_else(|| Error::BadImage(format!("{}: tcp-stream image missing", what())))?;
        repair_restore(sfd, st, inq, outq, &local, &remote).map_err(|e| Error::Unsupported(format!("{}: {}", what(), crate::error::detail(&e))))?;
    } else {
        if i.src_port != 0 || i.src_addr.iter().any(|&w| w != 0) {
            // The old socket may linger (TIME_WAIT) on its port.
            let reuse = i.opts.reuseaddr.unwrap_or(false);
            net::setsockopt_int(sfd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
            net::bind(sfd, &local).map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc::EADDRINUSE) {
                    " (another socket holds the port: a running copy of this process, or a TIME_WAIT connection of one that \
                     exited in the last minute; see `ss -tan`)"
                } else {
                    ""
                };
                Error::Unsupported(format!("{}: {}{hint}", what(), crate::error::detail(&e)))
            })?;
            net::setsockopt_int(sfd, libc::SOL_SOCKET, libc::SO_REUSEADDR, i32::from(reuse))?;
        }
        match state {
            TCP_LISTEN => net::listen(sfd, i.backlog as i32)?,
            TCP_ESTABLISHED => net::connect(sfd, &remote).map_err(|e| socket_err(e, what))?, // UDP
            _ => {}
        }
    }
    restore_opts(sfd, &i.opts)?;
    if let Some(t) = &i.tcp_opts {
        if t.nodelay == Some(true) {
            net::setsockopt_int(sfd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
        }
        for (opt, v) in [(libc::TCP_KEEPCNT, t.keepcnt), (libc::TCP_KEEPIDLE, t.keepidle), (libc::TCP_KEEPINTVL, t.keepintvl)] {
            if let Some(v) = v {
                net::setsockopt_int(sfd, libc::IPPROTO_TCP, opt, v as i32)?;
            }
        }
    }
    if let Some(ttl) = i.ip_opts.as_ref().and_then(|o| o.ttl) {
        let (lvl, opt) = if i.family == libc::AF_INET6 as u32 { (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) } else { (libc::SOL_IP, libc::IP_TTL) };
        let _ = net::setsockopt_int(sfd, lvl, opt, ttl as i32);
    }
    stasis_sys::fd::set_status_flags(sfd, i.flags as i32 & (libc::O_NONBLOCK | libc::O_ASYNC))?;
    Ok(fd)
}

/// Rebuild a connection in repair mode: sequence numbers, addresses
/// (connect sends nothing in repair mode), options, queues and windows,
/// then leave repair mode: the connection resumes where it was.
fn repair_restore(fd: BorrowedFd<'_>, st: &TcpStreamEntry, inq: &[u8], outq: &[u8], local: &[u8], remote: &[u8]) -> Result<()> {
    net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_REPAIR, 1)?;
    net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)?;
    net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_QUEUE_SEQ, st.inq_seq.wrapping_sub(st.inq_len) as i32)?;
    net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)?;
    net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_QUEUE_SEQ, st.outq_seq.wrapping_sub(st.outq_len) as i32)?;
    net::bind(fd, local)?;
    net::connect(fd, remote)?;
    let mut opts: Vec<u8> = Vec::new();
    let mut opt = |code: u32, val: u32| {
        opts.extend_from_slice(&code.to_ne_bytes());
        opts.extend_from_slice(&val.to_ne_bytes());
    };
    opt(2, st.mss_clamp); // TCPOPT_MAXSEG
    if st.opt_mask & TCPI_OPT_WSCALE != 0 {
        opt(3, st.snd_wscale | (st.rcv_wscale.unwrap_or(0) << 16)); // TCPOPT_WINDOW
    }
    if st.opt_mask & TCPI_OPT_SACK != 0 {
        opt(4, 0); // TCPOPT_SACK_PERM
    }
    if st.opt_mask & TCPI_OPT_TIMESTAMPS != 0 {
        opt(8, 0); // TCPOPT_TIMESTAMP
    }
    net::setsockopt(fd, libc::IPPROTO_TCP, TCP_REPAIR_OPTIONS, &opts)?;
    if let Some(ts) = st.timestamp {
        net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_TIMESTAMP, ts as i32)?;
    }
    // Queues: in repair mode, sending fills the selected queue. Nothing
    // drains a queue in repair mode, so the buffers must hold it all
    // (their real sizes are set afterwards).
    let room = |len: usize| (len + (256 << 10)).min(i32::MAX as usize / 2) as i32;
    net::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, room(outq.len()))?;
    net::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, room(inq.len()))?;
    if !inq.is_empty() {
        net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)?;
        send_all(fd, inq)?;
    }
    // The send queue: what was sent and not yet acknowledged goes in in
    // repair mode (the kernel takes it as sent, and retransmits it); what
    // was never sent is sent normally once the connection is live.
    let unsent = (st.unsq_len.unwrap_or(0) as usize).min(outq.len());
    let (sent, unsent) = outq.split_at(outq.len() - unsent);
    if !sent.is_empty() {
        net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)?;
        send_all(fd, sent)?;
    }
    if let (Some(wl1), Some(wnd), Some(max), Some(rwnd), Some(rwup)) = (st.snd_wl1, st.snd_wnd, st.max_window, st.rcv_wnd, st.rcv_wup) {
        let w: Vec<u8> = [wl1, wnd, max, rwnd, rwup].iter().flat_map(|v| v.to_ne_bytes()).collect();
        net::setsockopt(fd, libc::IPPROTO_TCP, TCP_REPAIR_WINDOW, &w)?;
    }
    net::setsockopt_int(fd, libc::IPPROTO_TCP, TCP_REPAIR, 0)?;
    if !unsent.is_empty() {
        send_all(fd, unsent)?;
    }
    Ok(())
}

fn send_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        // Never wait: in repair mode nothing would wake us.
        let n = net::sendmsg(fd, data, None, libc::MSG_DONTWAIT).map_err(|e| {
            if e.raw_os_error() == Some(libc::EAGAIN) {
                Error::Unsupported(format!("{} bytes of queued data do not fit in the socket's buffer", data.len()))
            } else {
                e.into()
            }
        })?;
        data = &data[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_names() {
        assert_eq!(unix_name(&unix_addr(b"/tmp/x")), b"/tmp/x");
        assert_eq!(unix_name(&unix_addr(b"\0abs")), b"\0abs");
        assert_eq!(unix_name(&[1, 0]), b"");
    }

    #[test]
    fn inet_addresses() {
        let a = inet_addr(libc::AF_INET as u32, &[u32::from_ne_bytes([127, 0, 0, 1])], 8080);
        let (w, p) = inet_parts(&a);
        assert_eq!((fmt_inet(&w, p)), "127.0.0.1:8080");
        let six = inet_addr(libc::AF_INET6 as u32, &[0, 0, 0, u32::from_ne_bytes([0, 0, 0, 1])], 443);
        let (w, p) = inet_parts(&six);
        assert_eq!(fmt_inet(&w, p), "[::1]:443");
    }
}
