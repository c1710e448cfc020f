//! The processes grace-init answers for, and signalling all of them at once: as PID 1 every
//! other process in the PID namespace, as a subreaper every descendant (including those that
//! left the process group with setsid or were orphaned and adopted).
//!
//! A pid read from /proc may be recycled before it is signalled (its process exits, its parent
//! reaps it, a stranger gets the number). Each listed process is therefore signalled through a
//! pidfd, and only if the process behind the pidfd has the start time the listing saw.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use tracing::info;

use crate::signal::Signal;
use crate::sys::{self, Pid};

/// Who "everything" is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// grace-init is PID 1: `kill(-1)` reaches every other process in the namespace at once.
    Namespace,
    /// grace-init is a subreaper with this pid: its descendants, found through /proc.
    DescendantsOf(Pid),
}

/// One line of the process table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProcessEntry {
    pid: Pid,
    parent: i32,
    /// The process group.
    group: i32,
    zombie: bool,
    /// Clock ticks after boot: with the pid, it names one process for good.
    start_time: u64,
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid ... starttime ...` (starttime is field 22);
/// comm may hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<ProcessEntry> {
    let (head, tail) = stat.rsplit_once(')')?;
    let pid = Pid::new(head.split_whitespace().next()?.parse().ok()?)?;
    let fields: Vec<&str> = tail.split_whitespace().take(20).collect();
    let state = fields.first()?;
    Some(ProcessEntry {
        pid,
        parent: fields.get(1)?.parse().ok()?,
        group: fields.get(2)?.parse().ok()?,
        zombie: *state == "Z" || *state == "X",
        start_time: fields.get(19)?.parse().ok()?,
    })
}

fn read_process_table() -> Vec<ProcessEntry> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let pid: i32 = name.to_str()?.parse().ok()?;
            read_stat(pid)
        })
        .collect()
}

/// Reads `/proc/PID/stat` in one system call: the fields we need come first, and the kernel
/// produces the whole line at once.
fn read_stat(pid: i32) -> Option<ProcessEntry> {
    let mut buffer = [0u8; 512];
    let length = fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read(&mut buffer)
        .ok()?;
    // comm may hold any bytes; only the numbers around it matter.
    parse_stat(&String::from_utf8_lossy(&buffer[..length]))
}

/// The live (not yet dead) processes of `table` that `scope` covers, grace-init excluded.
fn live_processes_in(table: &[ProcessEntry], scope: Scope, me: Pid) -> Vec<Pid> {
    let covered: BTreeSet<i32> = match scope {
        Scope::Namespace => table.iter().map(|p| p.pid.raw()).collect(),
        Scope::DescendantsOf(root) => {
            let mut found = BTreeSet::from([root.raw()]);
            // Parents may be listed after their children: repeat until nothing is added.
            loop {
                let before = found.len();
                for p in table {
                    if found.contains(&p.parent) {
                        found.insert(p.pid.raw());
                    }
                }
                if found.len() == before {
                    break found;
                }
            }
        }
    };
    table
        .iter()
        .filter(|p| p.pid != me && !p.zombie && covered.contains(&p.pid.raw()))
        .map(|p| p.pid)
        .collect()
}

/// Whether some other live process shares grace-init's process group (it runs in a shell
/// pipeline, `grace-init app | tee log`): the terminal's foreground then belongs to all of them,
/// and handing it to the command would stop the others when they use it. `false` when /proc
/// cannot tell.
pub fn others_in_own_group() -> bool {
    let me = sys::own_pid();
    let group = sys::own_process_group().map_or(0, Pid::raw);
    proc_is_ours(me)
        && read_process_table()
            .iter()
            .any(|p| p.group == group && p.pid != me && !p.zombie)
}

/// The socket inodes held open by the processes in `scope` (`socket:[N]` links in
/// `/proc/PID/fd`): how the listening sockets of the command's tree are told from a sidecar's.
pub fn socket_inodes(scope: Scope) -> BTreeSet<u32> {
    let me = sys::own_pid();
    let mut inodes = BTreeSet::new();
    if !proc_is_ours(me) {
        return inodes;
    }
    for pid in live_processes_in(&read_process_table(), scope, me) {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            let inode: Option<u32> = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|n| n.parse().ok());
            inodes.extend(inode);
        }
    }
    inodes
}

/// Whom [`signal_everything`] reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    /// This many live processes.
    Counted(usize),
    /// As PID 1 without a /proc of its own namespace: every process, uncounted.
    Everyone,
    /// As subreaper without a /proc of its own namespace: only the command's process group;
    /// descendants that left it cannot be found.
    CommandGroupOnly,
    /// As subreaper without a /proc of its own namespace, after the command has exited: its
    /// leftovers cannot be found, and its old group number may belong to a stranger.
    Nobody,
}

/// How many times the subreaper walk lists /proc again to catch processes forked meanwhile.
const MAX_LISTINGS: usize = 64;

/// Whether /proc shows grace-init's own PID namespace. A /proc from another namespace (or
/// none) would give pid numbers that mean other processes here.
fn proc_is_ours(me: Pid) -> bool {
    fs::read_link("/proc/self")
        .ok()
        .and_then(|link| link.to_str()?.parse::<i32>().ok())
        == Some(me.raw())
}

/// Sends `signal` to every process in `scope`. `command` is the command while it has not been
/// reaped: its process group is the fallback when /proc cannot say who the descendants are.
/// Once it is reaped its number may belong to anyone, so the caller passes `None`.
pub fn signal_everything(scope: Scope, signal: Signal, command: Option<Pid>) -> Reached {
    let me = sys::own_pid();
    let proc_usable = proc_is_ours(me);
    match scope {
        Scope::Namespace => {
            let count =
                proc_usable.then(|| live_processes_in(&read_process_table(), scope, me).len());
            // ESRCH: nobody else is left, which is fine.
            let _ = sys::kill_every_process(signal);
            count.map_or(Reached::Everyone, Reached::Counted)
        }
        Scope::DescendantsOf(_) if !proc_usable => match command {
            Some(command) => {
                let _ = sys::kill_process_group(command, signal);
                Reached::CommandGroupOnly
            }
            None => Reached::Nobody,
        },
        Scope::DescendantsOf(_) => {
            // A process may fork between the listing and the kill: list again until a listing
            // holds nobody new (SIGKILLed processes cannot fork any more), a bounded number of
            // times so that a fork loop cannot hold the event loop and its deadlines.
            let mut signalled = BTreeSet::new();
            for _ in 0..MAX_LISTINGS {
                let table = read_process_table();
                let listed = live_processes_in(&table, scope, me);
                let fresh: Vec<&ProcessEntry> = table
                    .iter()
                    .filter(|p| listed.contains(&p.pid))
                    .filter(|p| !signalled.contains(&(p.pid, p.start_time)))
                    .collect();
                if fresh.is_empty() {
                    break;
                }
                for process in fresh {
                    signal_listed_process(process, signal);
                    signalled.insert((process.pid, process.start_time));
                }
            }
            Reached::Counted(signalled.len())
        }
    }
}

/// Set once pidfd_open has answered ENOSYS (Linux before 5.3).
static NO_PIDFDS: AtomicBool = AtomicBool::new(false);

/// Signals the process `listed` describes, unless its pid now names another process.
fn signal_listed_process(listed: &ProcessEntry, signal: Signal) {
    let still_listed =
        || read_stat(listed.pid.raw()).map(|now| now.start_time) == Some(listed.start_time);
    if !NO_PIDFDS.load(Ordering::Relaxed) {
        match sys::open_process(listed.pid) {
            // The handle names whoever had the pid when it was opened: the listed process if
            // that pid still shows the listed start time now.
            Ok(handle) => {
                if still_listed() {
                    // ESRCH: it exited in between.
                    let _ = sys::kill_process_by_handle(&handle, signal);
                }
                return;
            }
            Err(Errno::ENOSYS) => {
                NO_PIDFDS.store(true, Ordering::Relaxed);
                info!("no pidfds on this kernel (before Linux 5.3): leftovers are signalled by pid after checking their start time, which leaves a window of a few microseconds for pid reuse");
            }
            // ESRCH: it exited in between.
            Err(_) => return,
        }
    }
    if still_listed() {
        let _ = sys::kill_process(listed.pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i32, parent: i32, zombie: bool) -> ProcessEntry {
        ProcessEntry {
            pid: Pid::new(pid).unwrap(),
            parent,
            group: 0,
            zombie,
            start_time: 0,
        }
    }

    fn pids(list: Vec<Pid>) -> Vec<i32> {
        let mut raw: Vec<i32> = list.into_iter().map(Pid::raw).collect();
        raw.sort();
        raw
    }

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let tail = "0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 8192 100";
        assert_eq!(
            parse_stat(&format!("42 (my (odd) app) S 7 42 42 {tail}")),
            Some(ProcessEntry {
                start_time: 123456,
                group: 42,
                ..entry(42, 7, false)
            })
        );
        assert_eq!(
            parse_stat(&format!("9 (z) Z 1 9 9 {tail}")),
            Some(ProcessEntry {
                start_time: 123456,
                group: 9,
                ..entry(9, 1, true)
            })
        );
        assert_eq!(parse_stat("9 (short) S 1 9 9"), None, "no start time");
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_include_grandchildren_listed_before_their_parents_but_not_zombies() {
        let me = Pid::new(100).unwrap();
        let table = [
            entry(1, 0, false),
            entry(300, 200, false), // grandchild listed first
            entry(100, 1, false),
            entry(200, 100, false),
            entry(201, 100, true), // zombie
            entry(400, 1, false),  // not ours
            entry(301, 300, false),
        ];
        assert_eq!(
            pids(live_processes_in(&table, Scope::DescendantsOf(me), me)),
            vec![200, 300, 301]
        );
    }

    #[test]
    fn namespace_scope_is_everyone_alive_but_grace_init() {
        let me = Pid::new(1).unwrap();
        let table = [
            entry(1, 0, false),
            entry(5, 1, false),
            entry(6, 5, true),
            entry(7, 0, false),
        ];
        assert_eq!(
            pids(live_processes_in(&table, Scope::Namespace, me)),
            vec![5, 7]
        );
    }
}
