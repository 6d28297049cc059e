//! `check`: probe the kernel features stasis relies on, each by using it
//! once on ourselves or on a child we start for the purpose.

use stasis_sys::{task, RemoteFd, Stop, Tracee};
use std::os::fd::AsFd;

#[derive(Debug, Clone)]
pub struct Feature {
    pub name: &'static str,
    /// Dump or restore cannot work without it.
    pub required: bool,
    pub present: bool,
    pub detail: String,
}

fn feature(name: &'static str, required: bool, r: Result<String, String>) -> Feature {
    match r {
        Ok(detail) => Feature { name, required, present: true, detail },
        Err(detail) => Feature { name, required, present: false, detail },
    }
}

fn cap_eff() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("CapEff:")).and_then(|l| u64::from_str_radix(l[7..].trim(), 16).ok()))
        .unwrap_or(0)
}

pub fn check() -> Vec<Feature> {
    let mut v = Vec::new();
    let caps = cap_eff();
    let has = |c: u32| caps & (1 << c) != 0;
    v.push(feature(
        "CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (pids for restored tasks)",
        true,
        if has(21) || has(40) { Ok("present".into()) } else { Err("missing: run as root".into()) },
    ));
    v.push(feature(
        "CAP_SYS_PTRACE (trace tasks of other users)",
        false,
        if has(19) { Ok("present".into()) } else { Err("missing: only own tasks can be dumped".into()) },
    ));
    v.push(feature(
        "CAP_SYS_RESOURCE (restore raised hard rlimits)",
        false,
        if has(24) { Ok("present".into()) } else { Err("missing: hard limits above ours are restored at our level".into()) },
    ));

    // A child to trace.
    let child = std::process::Command::new("sleep").arg("30").spawn();
    match child {
        Ok(mut c) => {
            let pid = c.id() as i32;
            let seized = Tracee::seize(pid, 0).and_then(|t| {
                t.interrupt()?;
                match t.wait()? {
                    Stop::Interrupt | Stop::Group(_) => Ok(t),
                    other => Err(stasis_sys::Error::UnexpectedStop { op: "check", pid, stop: other.to_string() }),
                }
            });
            match seized {
                Ok(t) => {
                    v.push(feature("ptrace PTRACE_SEIZE and PTRACE_INTERRUPT", true, Ok("works".into())));
                    v.push(feature(
                        "PTRACE_GETREGSET NT_X86_XSTATE (FPU, SSE, AVX, AVX-512)",
                        true,
                        t.xstate().map(|x| format!("{} bytes", x.len())).map_err(|e| e.to_string()),
                    ));
                    v.push(feature("PTRACE_GETSIGMASK", true, t.sigmask().map(|_| "works".into()).map_err(|e| e.to_string())));
                    v.push(feature(
                        "PTRACE_PEEKSIGINFO",
                        true,
                        t.peek_siginfo(true).map(|_| "works".into()).map_err(|e| e.to_string()),
                    ));
                    v.push(feature(
                        "PTRACE_GET_RSEQ_CONFIGURATION",
                        true,
                        t.rseq().map(|r| format!("works (rseq at {:#x})", r.abi_pointer)).map_err(|e| e.to_string()),
                    ));
                    let _ = t.detach(0);
                }
                Err(e) => v.push(feature("ptrace PTRACE_SEIZE and PTRACE_INTERRUPT", true, Err(e.to_string()))),
            }
            let mut buf = [0u8; 16];
            v.push(feature(
                "process_vm_readv",
                true,
                stasis_sys::mem::read(pid, stasis_sys::RemoteAddr(0x1000), &mut buf)
                    .map(|_| "works".into())
                    .or_else(|e| if e.raw_os_error() == Some(libc::EFAULT) { Ok("works".into()) } else { Err(e.to_string()) }),
            ));
            let pidfd = task::pidfd_open(pid);
            v.push(feature(
                "pidfd_open and pidfd_getfd",
                true,
                pidfd
                    .as_ref()
                    .map_err(|e| e.to_string())
                    .and_then(|p| task::pidfd_getfd(p.as_fd(), pid, RemoteFd(1)).map(|_| "works".into()).map_err(|e| e.to_string())),
            ));
            v.push(feature(
                "kcmp",
                true,
                task::kcmp_same(pid, pid, task::KCMP_VM, 0, 0).map(|_| "works".into()).map_err(|e| e.to_string()),
            ));
            let pm = std::fs::File::open(format!("/proc/{pid}/pagemap"));
            v.push(feature(
                "PAGEMAP_SCAN ioctl (fast scan of present pages)",
                false,
                match pm {
                    Ok(f) => match task::pagemap_scan(f.as_fd(), pid, 0x1000, 0x2000, task::PAGE_IS_PRESENT, 0) {
                        Ok(Some(_)) => Ok("works".into()),
                        Ok(None) => Err("missing: /proc/PID/pagemap is read instead".into()),
                        Err(e) => Err(e.to_string()),
                    },
                    Err(e) => Err(e.to_string()),
                },
            ));
            v.push(feature(
                "/proc/PID/map_files",
                true,
                std::fs::read_dir(format!("/proc/{pid}/map_files")).map(|_| "readable".into()).map_err(|e| e.to_string()),
            ));
            let _ = c.kill();
            let _ = c.wait();
        }
        Err(e) => v.push(feature("starting a child to trace (sleep)", true, Err(e.to_string()))),
    }
    v.push(feature("TCP repair mode (--tcp-established)", false, tcp_repair()));
    v.push(feature(
        "nftables, the `nft` command (network lock for --tcp-established)",
        false,
        std::process::Command::new("nft")
            .args(["list", "tables"])
            .output()
            .map_err(|e| format!("missing ({e}): install nftables"))
            .and_then(|o| if o.status.success() { Ok("works".into()) } else { Err(String::from_utf8_lossy(&o.stderr).trim().to_string()) }),
    ));
    v.push(feature(
        "soft-dirty page tracking (incremental dumps)",
        false,
        if std::path::Path::new("/proc/self/clear_refs").exists() && soft_dirty() {
            Ok("present".into())
        } else {
            Err("missing: every dump is a full dump".into())
        },
    ));
    v
}

/// Whether a new TCP socket can enter repair mode (needs CAP_NET_ADMIN).
fn tcp_repair() -> Result<String, String> {
    let fd = stasis_sys::net::socket(libc::AF_INET, libc::SOCK_STREAM, 0).map_err(|e| e.to_string())?;
    stasis_sys::net::setsockopt_int(std::os::fd::AsFd::as_fd(&fd), libc::IPPROTO_TCP, 19, 1)
        .map(|()| "works".into())
        .map_err(|e| format!("missing: {}", crate::error::detail(&e)))
}

/// Whether pagemap entries carry the soft-dirty bit (bit 55): a freshly
/// written page of ours has it set when the kernel tracks it.
fn soft_dirty() -> bool {
    use std::os::unix::fs::FileExt;
    let page = vec![1u8; 8192];
    let addr = page.as_ptr() as u64 & !4095;
    let Ok(f) = std::fs::File::open("/proc/self/pagemap") else { return false };
    let mut w = [0u8; 8];
    if f.read_exact_at(&mut w, addr / 4096 * 8).is_err() {
        return false;
    }
    u64::from_le_bytes(w) >> 55 & 1 == 1
}
