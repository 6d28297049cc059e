//! Freezing a process tree with ptrace, and letting it go again.
//!
//! Every thread is seized (`PTRACE_SEIZE`, which changes nothing for the
//! task) and interrupted (`PTRACE_INTERRUPT`). A tree can grow while we do
//! this, so we list threads and children again until a full pass over a
//! completely stopped tree finds nothing new: stopped tasks cannot clone.
//!
//! Kernel interfaces: ptrace(2), `/proc/PID/task`, `/proc/PID/task/TID/children`.

use crate::error::{Error, Result};
use crate::procfs;
use stasis_sys::{Pid, Stop, Tracee};
use std::collections::BTreeMap;

/// A frozen thread.
#[derive(Debug)]
pub struct Thread {
    pub tid: Pid,
    pub tracee: Tracee,
    /// Set if the thread was in a group stop (SIGSTOP and friends).
    pub group_stop: Option<i32>,
}

/// A frozen process.
#[derive(Debug)]
pub struct Process {
    pub pid: Pid,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    /// Main thread first.
    pub threads: Vec<Thread>,
    /// Zombie: not traced, only its exit status is recorded.
    pub zombie: Option<u32>,
}

impl Process {
    pub fn leader(&self) -> &Thread {
        &self.threads[0]
    }
}

/// The frozen tree, root first, parents before children.
#[derive(Debug, Default)]
pub struct Tree {
    pub procs: Vec<Process>,
}

/// What to do with the tree when we let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    Resume,
    Stop,
    Kill,
}

fn seize_thread(tid: Pid) -> Result<Option<Tracee>> {
    tracing::debug!(tid, "seizing");
    match Tracee::seize(tid, 0) {
        Ok(t) => {
            t.interrupt()?;
            Ok(Some(t))
        }
        // Gone already (exited between listing and seizing).
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
            tracing::debug!(tid, "gone");
            Ok(None)
        }
        // Exiting: ptrace refuses tasks on their way out. Let it finish:
        // a thread clears its clear_child_tid word (which a joiner may be
        // waiting on) as it exits, and that must be in the memory we save.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && exiting(tid) => {
            tracing::debug!(tid, "exiting");
            wait_exit_done(tid);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a task is exiting or gone (a zombie, dead, or no longer listed).
fn exiting(tid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{tid}/stat")) {
        Ok(s) => procfs::parse_stat(&s).is_none_or(|st| matches!(st.state(), 'Z' | 'X' | 'x')),
        Err(_) => true,
    }
}

/// Wait (briefly) until an exiting thread has left its thread group.
fn wait_exit_done(tid: Pid) {
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(2) {
        match std::fs::read_to_string(format!("/proc/{tid}/stat")) {
            Ok(s) if procfs::parse_stat(&s).is_some_and(|st| st.state() != 'X') => {}
            _ => return,
        }
        // A zombie thread group leader stays listed: that is as far as it goes.
        if std::fs::read_to_string(format!("/proc/{tid}/stat")).ok().and_then(|s| procfs::parse_stat(&s)).is_some_and(|st| st.state() == 'Z') {
            return;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Wait for the interrupt stop of a freshly seized thread.
fn wait_frozen(t: &Tracee) -> Result<Option<Option<i32>>> {
    loop {
        match t.wait()? {
            Stop::Interrupt => return Ok(Some(None)),
            Stop::Group(sig) => {
                // A stopped task reports its group stop first. Resume it
                // once: our pending interrupt traps it again at once, and
                // from that trap it can run the syscalls we inject (the
                // group stop stays in effect and comes back on detach).
                t.cont(0)?;
                return match t.wait()? {
                    Stop::Interrupt | Stop::Group(_) => Ok(Some(Some(sig))),
                    Stop::Exited(_) | Stop::Killed(_) => Ok(None),
                    other => Err(Error::Unsupported(format!("stopped task {} did not trap again: {other}", t.tid()))),
                };
            }
            // A signal arrived before our interrupt was noticed: let the
            // task have it (it was sent before the checkpoint) and take the
            // interrupt stop that follows.
            Stop::Signal(sig) => t.cont(sig)?,
            Stop::Event(_) => t.cont(0)?,
            Stop::Exited(_) | Stop::Killed(_) => return Ok(None),
        }
    }
}

/// Seize and stop every thread of the tree rooted at `root`.
pub fn freeze(root: Pid) -> Result<Tree> {
    let st = procfs::stat(root, root)?;
    if st.state() == 'Z' {
        return Err(Error::Refused(format!("process {root} is a zombie; there is nothing to dump")));
    }
    let mut tree = Tree::default();
    let mut seen: BTreeMap<Pid, usize> = BTreeMap::new();
    let result = grow(root, &mut tree, &mut seen);
    if let Err(e) = result {
        release(&mut tree, Release::Resume);
        return Err(e);
    }
    Ok(tree)
}

fn grow(root: Pid, tree: &mut Tree, seen: &mut BTreeMap<Pid, usize>) -> Result<()> {
    loop {
        let mut changed = false;
        let mut queue = vec![root];
        while let Some(pid) = queue.pop() {
            let stat = match procfs::stat(pid, pid) {
                Ok(s) => s,
                Err(_) if pid != root => continue, // exited meanwhile
                Err(e) => return Err(e.into()),
            };
            let idx = match seen.get(&pid) {
                Some(&i) => i,
                None => {
                    changed = true;
                    tree.procs.push(Process {
                        pid,
                        ppid: stat.ppid(),
                        pgid: stat.pgid(),
                        sid: stat.sid(),
                        threads: Vec::new(),
                        zombie: None,
                    });
                    seen.insert(pid, tree.procs.len() - 1);
                    tree.procs.len() - 1
                }
            };
            if stat.state() == 'Z' {
                tree.procs[idx].zombie = Some(stat.exit_code());
                continue;
            }
            let tids = procfs::threads(pid)?;
            for tid in &tids {
                if tree.procs[idx].threads.iter().any(|t| t.tid == *tid) {
                    continue;
                }
                if let Some(t) = seize_thread(*tid)? {
                    changed = true;
                    match wait_frozen(&t)? {
                        Some(group_stop) => tree.procs[idx].threads.push(Thread { tid: *tid, tracee: t, group_stop }),
                        None => {} // exited while we seized it
                    }
                }
            }
            tree.procs[idx].threads.sort_by_key(|t| (t.tid != pid, t.tid));
            if tree.procs[idx].threads.is_empty() {
                // It exited while we seized it: a zombie now, or gone.
                match procfs::stat(pid, pid) {
                    Ok(st) if st.state() == 'Z' => tree.procs[idx].zombie = Some(st.exit_code()),
                    Ok(_) if pid == root => return Err(Error::Refused(format!("process {pid} is exiting"))),
                    _ => {
                        tree.procs.remove(idx);
                        seen.clear();
                        for (i, p) in tree.procs.iter().enumerate() {
                            seen.insert(p.pid, i);
                        }
                    }
                }
                changed = true;
                continue;
            }
            if tree.procs[idx].threads.first().map(|t| t.tid) != Some(pid) {
                return Err(Error::Unsupported(format!(
                    "the main thread of {pid} has exited while other threads run; such processes are not supported"
                )));
            }
            queue.extend(procfs::children(pid, &tids)?);
        }
        if !changed {
            return Ok(());
        }
    }
}

/// Let the tree go: resume it as it was, leave it stopped, or kill it.
/// Errors are logged, not returned: every task gets its turn.
pub fn release(tree: &mut Tree, how: Release) {
    if how == Release::Kill {
        for p in tree.procs.iter().filter(|p| p.zombie.is_none()) {
            if let Err(e) = stasis_sys::task::kill(p.pid, libc::SIGKILL) {
                tracing::warn!(pid = p.pid, "cannot kill: {e}");
            }
        }
    }
    for p in &mut tree.procs {
        for t in p.threads.drain(..) {
            let sig = match how {
                Release::Stop if t.group_stop.is_none() => libc::SIGSTOP,
                _ => 0,
            };
            let tid = t.tid;
            if let Err(e) = t.tracee.detach(sig) {
                if how != Release::Kill {
                    tracing::warn!(tid, "cannot detach: {e}");
                }
            }
        }
    }
}
