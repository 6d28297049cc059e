//! Per-task attributes: credentials, resource limits, scheduling, rseq,
//! robust futex list, clear_child_tid, parent-death signal, name, and the
//! process-wide prctl flags.
//!
//! Kernel interfaces: `/proc/PID/task/TID/status` (ids, groups,
//! capabilities, no_new_privs), prlimit(2), sched_getscheduler(2),
//! getpriority(2), `PTRACE_GET_RSEQ_CONFIGURATION`, get_robust_list(2);
//! inside the task: prctl(2) `PR_GET_TID_ADDRESS`, `PR_GET_PDEATHSIG`,
//! `PR_GET_DUMPABLE`, `PR_GET_CHILD_SUBREAPER`, `PR_GET_SECUREBITS`,
//! `PR_GET_THP_DISABLE`, and their setters plus set_tid_address(2),
//! set_robust_list(2), rseq(2), setresuid(2) and friends, capset(2).

use crate::error::{Error, Result};
use crate::inject::{Scratch, Session};
use crate::procfs::Status;
use stasis_image::messages::{CredsEntry, RlimitEntry, RseqEntry, TaskRlimitsEntry, ThreadCoreEntry};
use stasis_sys::{task, Pid, Tracee};

/// Resource limits, in the kernel's order (RLIMIT_CPU = 0 ...).
pub const RLIM_NLIMITS: u32 = 16;

/// Limits as `/proc/PID/limits` shows them: readable where prlimit(2) is
/// not (a task with other credentials, without CAP_SYS_RESOURCE).
pub fn dump_rlimits(pid: Pid) -> Result<TaskRlimitsEntry> {
    let text = crate::procfs::read(pid, "limits")?;
    let rlimits = parse_limits(&text).ok_or_else(|| Error::Unsupported(format!("cannot parse /proc/{pid}/limits")))?;
    Ok(TaskRlimitsEntry { rlimits })
}

/// The 16 limits of `/proc/PID/limits`, in the kernel's order.
pub fn parse_limits(text: &str) -> Option<Vec<RlimitEntry>> {
    let value = |s: &str| if s == "unlimited" { Some(u64::MAX) } else { s.parse().ok() };
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        // "Max open files            1024                 4096                 files"
        let rest = line.get(26..)?;
        let mut w = rest.split_whitespace();
        out.push(RlimitEntry { cur: value(w.next()?)?, max: value(w.next()?)? });
    }
    (out.len() == RLIM_NLIMITS as usize).then_some(out)
}

/// Set limits from the image. Raising a hard limit needs
/// CAP_SYS_RESOURCE, which a container may lack: then the soft limit is
/// still restored where the current hard limit allows, and the gap logged.
pub fn restore_rlimits(pid: Pid, rl: &TaskRlimitsEntry) -> Result<()> {
    for (r, e) in rl.rlimits.iter().enumerate().take(RLIM_NLIMITS as usize) {
        let r = r as u32;
        match task::set_rlimit(pid, r, e.cur, e.max) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
                let (_, hard_now) = task::get_rlimit(pid, r)?;
                tracing::warn!(
                    pid,
                    resource = r,
                    wanted_hard = e.max,
                    hard_now,
                    "cannot raise the hard limit without CAP_SYS_RESOURCE; keeping the current one"
                );
                let cur = e.cur.min(hard_now);
                task::set_rlimit(pid, r, cur, hard_now)?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

fn cap_words(v: u64) -> Vec<u32> {
    vec![v as u32, (v >> 32) as u32]
}

fn cap_value(w: &[u32]) -> u64 {
    u64::from(w.first().copied().unwrap_or(0)) | (u64::from(w.get(1).copied().unwrap_or(0)) << 32)
}

/// Credentials of one thread; secure bits come from inside the task.
pub fn dump_creds(st: &Status, secbits: u32) -> Result<CredsEntry> {
    let uid = st.numbers("Uid");
    let gid = st.numbers("Gid");
    if uid.len() < 4 || gid.len() < 4 {
        return Err(Error::Unsupported("cannot read user and group ids from /proc status".into()));
    }
    Ok(CredsEntry {
        uid: uid[0],
        euid: uid[1],
        suid: uid[2],
        fsuid: uid[3],
        gid: gid[0],
        egid: gid[1],
        sgid: gid[2],
        fsgid: gid[3],
        cap_inh: cap_words(st.hex("CapInh")),
        cap_prm: cap_words(st.hex("CapPrm")),
        cap_eff: cap_words(st.hex("CapEff")),
        cap_bnd: cap_words(st.hex("CapBnd")),
        cap_amb: cap_words(st.hex("CapAmb")),
        secbits,
        groups: st.numbers("Groups"),
        no_new_privs: st.number("NoNewPrivs").map(|v| v as u32),
        ..CredsEntry::default()
    })
}

const PR_GET_TID_ADDRESS: u64 = 40;
const PR_SET_CHILD_SUBREAPER: u64 = 36;
const PR_GET_CHILD_SUBREAPER: u64 = 37;
const PR_SET_THP_DISABLE: u64 = 41;
const PR_GET_THP_DISABLE: u64 = 42;
const PR_CAP_AMBIENT: u64 = 47;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;
const SECBIT_KEEP_CAPS: u64 = 1 << 4;

/// What a dump reads from inside each thread.
pub struct ThreadInside {
    pub clear_tid: u64,
    pub pdeath_sig: u32,
    pub secbits: u32,
}

pub fn dump_thread_inside(s: &mut Session<'_>, scratch: &Scratch) -> Result<ThreadInside> {
    let at = scratch.at(0);
    s.call("prctl(PR_GET_TID_ADDRESS)", libc::SYS_prctl, &[PR_GET_TID_ADDRESS, at.0])?;
    let clear_tid = s.read_u64(at)?;
    s.write(at, &[0u8; 4])?;
    s.call("prctl(PR_GET_PDEATHSIG)", libc::SYS_prctl, &[libc::PR_GET_PDEATHSIG as u64, at.0])?;
    let pdeath_sig = u32::from_le_bytes(s.read(at, 4)?.try_into().unwrap_or([0; 4]));
    let secbits = s.call("prctl(PR_GET_SECUREBITS)", libc::SYS_prctl, &[libc::PR_GET_SECUREBITS as u64])? as u32;
    Ok(ThreadInside { clear_tid, pdeath_sig, secbits })
}

/// Process-wide flags read from inside the main thread.
pub struct ProcessInside {
    pub dumpable: i32,
    pub child_subreaper: bool,
    pub thp_disabled: bool,
    pub brk: u64,
}

pub fn dump_process_inside(s: &mut Session<'_>, scratch: &Scratch) -> Result<ProcessInside> {
    let at = scratch.at(0);
    let dumpable = s.call("prctl(PR_GET_DUMPABLE)", libc::SYS_prctl, &[libc::PR_GET_DUMPABLE as u64])? as i32;
    s.write(at, &[0u8; 4])?;
    s.call("prctl(PR_GET_CHILD_SUBREAPER)", libc::SYS_prctl, &[PR_GET_CHILD_SUBREAPER, at.0])?;
    let child_subreaper = s.read(at, 4)? != [0, 0, 0, 0];
    let thp_disabled = s.call("prctl(PR_GET_THP_DISABLE)", libc::SYS_prctl, &[PR_GET_THP_DISABLE])? != 0;
    // brk(0) changes nothing and returns the current break.
    let brk = s.call("brk", libc::SYS_brk, &[0])?;
    Ok(ProcessInside { dumpable, child_subreaper, thp_disabled, brk })
}

/// Scheduling, futex list and rseq of one thread, read from outside.
pub fn dump_thread_outside(t: &Tracee, core: &mut ThreadCoreEntry) -> Result<()> {
    let tid = t.tid();
    let (policy, prio) = task::sched(tid)?;
    core.sched_policy = Some(policy);
    core.sched_prio = Some(prio);
    core.sched_nice = Some(task::nice(tid)?);
    let (head, len) = task::robust_list(tid)?;
    core.futex_rla = head.0;
    core.futex_rla_len = len as u32;
    let rseq = t.rseq()?;
    if rseq.abi_pointer != 0 {
        core.rseq_entry = Some(RseqEntry {
            rseq_abi_pointer: rseq.abi_pointer,
            rseq_abi_size: rseq.abi_size,
            signature: rseq.signature,
            rseq_cs_pointer: None,
        });
    }
    Ok(())
}

/// Drop an rseq registration a puppet inherited from us.
pub fn unregister_rseq(s: &mut Session<'_>, t: &Tracee) -> Result<()> {
    let r = t.rseq()?;
    if r.abi_pointer != 0 {
        s.call("rseq unregister", libc::SYS_rseq, &[r.abi_pointer, u64::from(r.abi_size), 1, u64::from(r.signature)])?;
    }
    Ok(())
}

/// Thread state set from inside the thread itself.
pub fn restore_thread_inside(
    s: &mut Session<'_>,
    scratch: &Scratch,
    core: &ThreadCoreEntry,
    clear_tid: u64,
) -> Result<()> {
    s.call("set_tid_address", libc::SYS_set_tid_address, &[clear_tid])?;
    if core.futex_rla != 0 {
        s.call("set_robust_list", libc::SYS_set_robust_list, &[core.futex_rla, u64::from(core.futex_rla_len)])?;
    }
    if let Some(r) = &core.rseq_entry {
        if r.rseq_abi_pointer != 0 {
            s.call(
                "rseq register",
                libc::SYS_rseq,
                &[r.rseq_abi_pointer, u64::from(r.rseq_abi_size), 0, u64::from(r.signature)],
            )?;
        }
    }
    let pdeath = core.pdeath_sig.unwrap_or(0);
    s.call("prctl(PR_SET_PDEATHSIG)", libc::SYS_prctl, &[libc::PR_SET_PDEATHSIG as u64, u64::from(pdeath)])?;
    if let Some(comm) = &core.comm {
        restore_comm(s, scratch, comm)?;
    }
    let tid = s.tid() as u64;
    if let Some(nice) = core.sched_nice {
        s.call("setpriority", libc::SYS_setpriority, &[libc::PRIO_PROCESS as u64, tid, nice as i64 as u64])?;
    }
    Ok(())
}

pub fn restore_comm(s: &mut Session<'_>, scratch: &Scratch, comm: &str) -> Result<()> {
    let mut name = comm.as_bytes().to_vec();
    name.truncate(15);
    name.push(0);
    let at = scratch.at(0);
    s.write(at, &name)?;
    s.call("prctl(PR_SET_NAME)", libc::SYS_prctl, &[libc::PR_SET_NAME as u64, at.0])?;
    Ok(())
}

/// Scheduling policy, set from outside (needs the policy's priority).
pub fn restore_sched(tid: Pid, core: &ThreadCoreEntry, s: &mut Session<'_>, scratch: &Scratch) -> Result<()> {
    let Some(policy) = core.sched_policy else { return Ok(()) };
    if policy == 0 && core.sched_prio.unwrap_or(0) == 0 {
        return Ok(()); // SCHED_OTHER is what a new task has
    }
    let at = scratch.at(0);
    s.write(at, &(core.sched_prio.unwrap_or(0) as i32).to_le_bytes())?;
    s.call("sched_setscheduler", libc::SYS_sched_setscheduler, &[tid as u64, u64::from(policy), at.0])?;
    Ok(())
}

pub fn restore_process_flags(s: &mut Session<'_>, dumpable: Option<i32>, subreaper: bool, thp_disabled: bool) -> Result<()> {
    if subreaper {
        s.call("prctl(PR_SET_CHILD_SUBREAPER)", libc::SYS_prctl, &[PR_SET_CHILD_SUBREAPER, 1])?;
    }
    if thp_disabled {
        s.call("prctl(PR_SET_THP_DISABLE)", libc::SYS_prctl, &[PR_SET_THP_DISABLE, 1, 0, 0, 0])?;
    }
    if let Some(d) = dumpable {
        s.call("prctl(PR_SET_DUMPABLE)", libc::SYS_prctl, &[libc::PR_SET_DUMPABLE as u64, d as u64])?;
    }
    Ok(())
}

/// Credentials, set last: once they drop privileges, nothing else could
/// be changed. Capabilities survive the uid change through KEEP_CAPS and
/// are then set to exactly the image's sets.
pub fn restore_creds(s: &mut Session<'_>, scratch: &Scratch, c: &CredsEntry, current: &Status) -> Result<()> {
    let same_ids = current.numbers("Uid") == [c.uid, c.euid, c.suid, c.fsuid]
        && current.numbers("Gid") == [c.gid, c.egid, c.sgid, c.fsgid]
        && current.numbers("Groups") == c.groups;
    let caps = [c.cap_inh.as_slice(), &c.cap_prm, &c.cap_eff, &c.cap_bnd, &c.cap_amb].map(cap_value);
    let same_caps = caps
        == [current.hex("CapInh"), current.hex("CapPrm"), current.hex("CapEff"), current.hex("CapBnd"), current.hex("CapAmb")];
    if c.no_new_privs == Some(1) {
        s.call("prctl(PR_SET_NO_NEW_PRIVS)", libc::SYS_prctl, &[libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0])?;
    }
    if same_ids && same_caps {
        if c.secbits != 0 {
            s.call("prctl(PR_SET_SECUREBITS)", libc::SYS_prctl, &[libc::PR_SET_SECUREBITS as u64, u64::from(c.secbits)])?;
        }
        return Ok(());
    }
    let at = scratch.at(0);
    // Drop bounding-set capabilities the image does not have.
    let bnd = caps[3];
    for cap in 0..64u64 {
        if bnd & (1 << cap) == 0 && current.hex("CapBnd") & (1 << cap) != 0 {
            s.call("prctl(PR_CAPBSET_DROP)", libc::SYS_prctl, &[libc::PR_CAPBSET_DROP as u64, cap])?;
        }
    }
    s.call("prctl(PR_SET_SECUREBITS)", libc::SYS_prctl, &[libc::PR_SET_SECUREBITS as u64, u64::from(c.secbits) | SECBIT_KEEP_CAPS])?;
    if !same_ids {
        let groups: Vec<u8> = c.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
        s.write(at, &groups)?;
        s.call("setgroups", libc::SYS_setgroups, &[c.groups.len() as u64, at.0])?;
        s.call("setresgid", libc::SYS_setresgid, &[u64::from(c.gid), u64::from(c.egid), u64::from(c.sgid)])?;
        s.call("setfsgid", libc::SYS_setfsgid, &[u64::from(c.fsgid)])?;
        s.call("setresuid", libc::SYS_setresuid, &[u64::from(c.uid), u64::from(c.euid), u64::from(c.suid)])?;
        s.call("setfsuid", libc::SYS_setfsuid, &[u64::from(c.fsuid)])?;
    }
    // capset(v3): header {version, pid}, then two {effective, permitted,
    // inheritable} words.
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(&0x2008_0522u32.to_le_bytes());
    b.extend_from_slice(&0i32.to_le_bytes());
    for half in 0..2 {
        for v in [caps[2], caps[1], caps[0]] {
            b.extend_from_slice(&((v >> (32 * half)) as u32).to_le_bytes());
        }
    }
    s.write(at, &b)?;
    s.call("capset", libc::SYS_capset, &[at.0, at.0 + 8])?;
    s.call("prctl(PR_CAP_AMBIENT)", libc::SYS_prctl, &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0])?;
    for cap in 0..64u64 {
        if caps[4] & (1 << cap) != 0 {
            s.call("prctl(PR_CAP_AMBIENT_RAISE)", libc::SYS_prctl, &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0])?;
        }
    }
    s.call("prctl(PR_SET_SECUREBITS)", libc::SYS_prctl, &[libc::PR_SET_SECUREBITS as u64, u64::from(c.secbits)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_file() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max file size             unlimited            unlimited            bytes     \n\
Max data size             unlimited            unlimited            bytes     \n\
Max stack size            8388608              unlimited            bytes     \n\
Max core file size        0                    unlimited            bytes     \n\
Max resident set          unlimited            unlimited            bytes     \n\
Max processes             96365                96365                processes \n\
Max open files            512                  4096                 files     \n\
Max locked memory         8388608              8388608              bytes     \n\
Max address space         unlimited            unlimited            bytes     \n\
Max file locks            unlimited            unlimited            locks     \n\
Max pending signals       96365                96365                signals   \n\
Max msgqueue size         819200               819200               bytes     \n\
Max nice priority         0                    0                    \n\
Max realtime priority     0                    0                    \n\
Max realtime timeout      unlimited            unlimited            us        \n";
        let l = parse_limits(text).unwrap();
        assert_eq!(l.len(), 16);
        assert_eq!((l[3].cur, l[3].max), (8388608, u64::MAX));
        assert_eq!((l[7].cur, l[7].max), (512, 4096));
        assert_eq!((l[15].cur, l[15].max), (u64::MAX, u64::MAX));
    }
}
