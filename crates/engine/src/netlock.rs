//! Keeping TCP connections alive while their process is gone.
//!
//! Between a dump that kills a process and its restore, packets from the
//! other end of an established connection would find no socket and be
//! answered with a reset. The dump drops them instead with nftables rules
//! (table `inet stasis`); the peer retransmits, and after restore the
//! repaired socket answers. Restore removes the rules of the connections it
//! brings back.
//!
//! Interface: the `nft` command (nftables).

use crate::error::{Error, Result};
use std::process::Command;

/// One connection: local and remote address text and ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conn {
    pub local: std::net::IpAddr,
    pub lport: u16,
    pub remote: std::net::IpAddr,
    pub rport: u16,
}

impl Conn {
    fn tag(&self) -> String {
        format!("stasis {}:{} {}:{}", self.local, self.lport, self.remote, self.rport)
    }

    fn rules(&self) -> [String; 2] {
        // A dual-stack socket talking to an IPv4 peer has v4-mapped
        // addresses; on the wire its packets are IPv4.
        let plain = |a: std::net::IpAddr| match a {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, std::net::IpAddr::V4),
            v4 => v4,
        };
        let (local, remote) = (plain(self.local), plain(self.remote));
        let fam = if local.is_ipv4() { "ip" } else { "ip6" };
        let tag = self.tag();
        [
            format!(
                "{fam} saddr {remote} {fam} daddr {local} tcp sport {} tcp dport {} counter drop comment \"{tag}\"",
                self.rport, self.lport
            ),
            format!(
                "{fam} saddr {local} {fam} daddr {remote} tcp sport {} tcp dport {} counter drop comment \"{tag}\"",
                self.lport, self.rport
            ),
        ]
    }
}

fn nft(script: &str) -> Result<String> {
    let out = Command::new("nft")
        .args(["-a", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().map(|mut i| i.write_all(script.as_bytes())).transpose()?;
            c.wait_with_output()
        })
        .map_err(|e| Error::Refused(format!("cannot run nft to lock the network for TCP connections (install nftables): {e}")))?;
    if !out.status.success() {
        return Err(Error::Refused(format!("nft failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Drop every packet of these connections until [`unlock`]. Returns the
/// connections that were not locked already (a dump locks the ones to the
/// outside; a restore locks all of them).
pub fn lock(conns: &[Conn]) -> Result<Vec<Conn>> {
    if conns.is_empty() {
        return Ok(Vec::new());
    }
    let listing = nft("list table inet stasis\n").unwrap_or_default();
    let conns: Vec<Conn> = conns.iter().filter(|c| !listing.contains(&format!("\"{}\"", c.tag()))).cloned().collect();
    if conns.is_empty() {
        return Ok(conns);
    }
    let mut script = String::from(
        "table inet stasis {\n chain input { type filter hook input priority -200; policy accept; }\n chain output { type filter hook output priority -200; policy accept; }\n}\n",
    );
    for c in &conns {
        let [inp, outp] = c.rules();
        script.push_str(&format!("add rule inet stasis input {inp}\nadd rule inet stasis output {outp}\n"));
    }
    nft(&script)?;
    Ok(conns)
}

/// Unlocks its connections when dropped, unless disarmed: a failed
/// restore takes back the rules it added.
pub struct Guard(pub Vec<Conn>);

impl Guard {
    pub fn disarm(mut self) {
        self.0.clear();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = unlock(&self.0) {
            tracing::warn!("cannot remove the network lock of connections: {e}");
        }
    }
}

/// Remove the rules of these connections (and the table once empty).
pub fn unlock(conns: &[Conn]) -> Result<()> {
    if conns.is_empty() {
        return Ok(());
    }
    let listing = match nft("list table inet stasis\n") {
        Ok(l) => l,
        Err(_) => return Ok(()), // nothing locked
    };
    let tags: Vec<String> = conns.iter().map(Conn::tag).collect();
    let mut script = String::new();
    let mut chain = "";
    // Rules go by handle; the table stays (another stasis may be adding
    // rules to it right now).
    for line in listing.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("chain ") {
            chain = if rest.starts_with("input") { "input" } else { "output" };
            continue;
        }
        let Some(h) = t.rsplit_once("# handle ").map(|(_, h)| h.trim()) else { continue };
        if !t.contains("comment") {
            continue;
        }
        if tags.iter().any(|tag| t.contains(&format!("\"{tag}\""))) {
            script.push_str(&format!("delete rule inet stasis {chain} handle {h}\n"));
        }
    }
    if script.is_empty() {
        return Ok(());
    }
    nft(&script).map(drop)
}

/// The address of a CRIU address word list.
pub fn ip_of(words: &[u32]) -> Option<std::net::IpAddr> {
    match words.len() {
        1 => Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(words[0])))),
        4 => {
            let mut b = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            Some(std::net::IpAddr::V6(std::net::Ipv6Addr::from(b)))
        }
        _ => None,
    }
}
