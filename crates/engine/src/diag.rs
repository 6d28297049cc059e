//! What the kernel tells about sockets through sock_diag netlink
//! (NETLINK_SOCK_DIAG): for unix sockets their peer, name, pending
//! connections, queue lengths and shutdown state; for TCP listeners their
//! backlog and accept queue. One dump per family, indexed by inode.

use crate::error::{Error, IoContext, Result};
use std::collections::HashMap;
use std::io::{Read, Write};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_VFS: u32 = 0x02;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_ICONS: u32 = 0x08;
const UDIAG_SHOW_RQLEN: u32 = 0x10;

const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_ICONS: u16 = 3;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_SHUTDOWN: u16 = 6;

/// One unix socket as sock_diag describes it.
#[derive(Clone, Debug, Default)]
pub struct UnixInfo {
    pub ino: u32,
    pub ty: u8,
    pub state: u8,
    /// Bound name: a path, or `\0name` for the abstract namespace.
    pub name: Vec<u8>,
    /// (inode, device) of the socket file of a path name.
    pub vfs: Option<(u32, u32)>,
    pub peer: u32,
    /// Connections waiting in a listener's accept queue (their inodes).
    pub icons: Vec<u32>,
    /// Receive queue length (for listeners: connections waiting) and
    /// send queue length (for listeners: the backlog).
    pub rqlen: (u32, u32),
    pub shutdown: u8,
}

/// One TCP socket as inet_diag describes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct InetInfo {
    pub ino: u32,
    pub state: u8,
    pub rqueue: u32,
    pub wqueue: u32,
    /// Ports in host order; addresses as four words in network order
    /// (an IPv4 address in the first), as CRIU's images keep them.
    pub sport: u16,
    pub dport: u16,
    pub src: [u32; 4],
    pub dst: [u32; 4],
}

fn request(body: &[u8], seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + body.len());
    m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2).and_then(|s| s.try_into().ok()).map_or(0, u16::from_ne_bytes)
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_ne_bytes)
}

/// Send one dump request and hand each reply payload to `each`.
fn dump(body: &[u8], mut each: impl FnMut(&[u8])) -> Result<()> {
    let sock = stasis_sys::net::socket(libc::AF_NETLINK, libc::SOCK_DGRAM, NETLINK_SOCK_DIAG)?;
    let mut f = std::fs::File::from(sock);
    f.write_all(&request(body, 1)).ctx(|| "sock_diag request".into())?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).ctx(|| "sock_diag reply".into())?;
        let mut off = 0;
        while off + 16 <= n {
            let len = u32_at(&buf, off) as usize;
            let ty = u16_at(&buf, off + 4);
            if len < 16 || off + len > n {
                return Err(Error::Unsupported("malformed sock_diag reply".into()));
            }
            match ty {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let errno = -(u32_at(&buf, off + 16) as i32);
                    if len < 20 || errno <= 0 {
                        return Err(Error::Unsupported(format!("sock_diag answered with a malformed error (length {len}, code {errno})")));
                    }
                    return Err(Error::Sys(stasis_sys::Error::errno("sock_diag", 0, errno)));
                }
                _ => each(&buf[off + 16..off + len]),
            }
            off += (len + 3) & !3;
        }
    }
}

/// Every unix socket of our network namespace, by inode.
pub fn unix_sockets() -> Result<HashMap<u32, UnixInfo>> {
    let mut req = Vec::with_capacity(24);
    req.push(libc::AF_UNIX as u8);
    req.push(0);
    req.extend_from_slice(&0u16.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // all states
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN).to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]);
    let mut out = HashMap::new();
    dump(&req, |p| {
        if p.len() < 16 {
            return;
        }
        let mut u = UnixInfo { ty: p[1], state: p[2], ino: u32_at(p, 4), ..UnixInfo::default() };
        let mut off = 16;
        while off + 4 <= p.len() {
            let alen = u16_at(p, off) as usize;
            let aty = u16_at(p, off + 2);
            if alen < 4 || off + alen > p.len() {
                break;
            }
            let d = &p[off + 4..off + alen];
            match aty {
                UNIX_DIAG_NAME => u.name = d.to_vec(),
                UNIX_DIAG_VFS if d.len() >= 8 => u.vfs = Some((u32_at(d, 0), u32_at(d, 4))),
                UNIX_DIAG_PEER if d.len() >= 4 => u.peer = u32_at(d, 0),
                UNIX_DIAG_ICONS => u.icons = d.chunks_exact(4).map(|c| u32_at(c, 0)).collect(),
                UNIX_DIAG_RQLEN if d.len() >= 8 => u.rqlen = (u32_at(d, 0), u32_at(d, 4)),
                UNIX_DIAG_SHUTDOWN if !d.is_empty() => u.shutdown = d[0],
                _ => {}
            }
            off += (alen + 3) & !3;
        }
        out.insert(u.ino, u);
    })?;
    Ok(out)
}

/// Every TCP socket of one family, by inode.
pub fn tcp_sockets(family: i32) -> Result<HashMap<u32, InetInfo>> {
    let mut req = vec![0u8; 56];
    req[0] = family as u8;
    req[1] = libc::IPPROTO_TCP as u8;
    req[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    req[48..56].copy_from_slice(&[0xff; 8]);
    let mut out = HashMap::new();
    dump(&req, |p| {
        if p.len() < 72 {
            return;
        }
        let words = |o: usize| [u32_at(p, o), u32_at(p, o + 4), u32_at(p, o + 8), u32_at(p, o + 12)];
        let i = InetInfo {
            state: p[1],
            sport: u16::from_be_bytes([p[4], p[5]]),
            dport: u16::from_be_bytes([p[6], p[7]]),
            src: words(8),
            dst: words(24),
            rqueue: u32_at(p, 56),
            wqueue: u32_at(p, 60),
            ino: u32_at(p, 68),
        };
        out.insert(i.ino, i);
    })?;
    Ok(out)
}
