//! The OS layer: every system call grace-init makes, each behind a small safe function named for
//! what it does. Nothing here decides anything; the callers do.
//!
//! Signal masks and waits use the raw `rt_sigprocmask`/`rt_sigtimedwait` system calls on a
//! 64-bit kernel signal set, because musl's `sigset_t` helpers refuse signals 32-34 and
//! grace-init must block and forward every signal up to 64.

use std::io;
use std::time::Duration;

use nix::errno::Errno;

use crate::signal::Signal;

/// The number of one existing process (always > 0), so that `kill(0)` or `kill(-1)` cannot be
/// reached by accident through a zero or negative value: signalling everything has its own
/// function, [`kill_every_process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(i32);

impl Pid {
    pub fn new(raw: i32) -> Option<Pid> {
        (raw > 0).then_some(Pid(raw))
    }

    pub fn raw(self) -> i32 {
        self.0
    }
}

impl std::fmt::Display for Pid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A set of signals as the kernel stores it: bit N-1 stands for signal N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SignalSet(u64);

impl SignalSet {
    pub const EMPTY: SignalSet = SignalSet(0);
    pub const ALL: SignalSet = SignalSet(u64::MAX);
}

/// The size of a kernel signal set in bytes, as the `rt_sig*` system calls want it.
const KERNEL_SIGSET_SIZE: usize = std::mem::size_of::<u64>();

/// Replaces the calling thread's signal mask and returns the previous one. Async-signal-safe,
/// so it may run in the child between fork and exec.
pub fn set_signal_mask(mask: SignalSet) -> SignalSet {
    let mut previous = SignalSet::EMPTY;
    // SAFETY: both pointers are valid u64s for the duration of the call and the size matches.
    // rt_sigprocmask can only fail with EFAULT (impossible: valid pointers) or EINVAL (the
    // constant SIG_SETMASK and the exact kernel size are valid), so the result needs no check.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask.0 as *const u64,
            &mut previous.0 as *mut u64,
            KERNEL_SIGSET_SIZE,
        );
    }
    previous
}

/// A signal taken from the pending set by [`wait_for_signal`].
#[derive(Clone, Copy, Debug)]
pub struct ReceivedSignal {
    pub signal: Signal,
    /// `si_code`: who or what raised it (SI_USER for kill(2), SI_KERNEL, ...).
    code: i32,
    /// `si_pid`: the sender, for signals sent with kill(2) or sigqueue(3).
    sender: i32,
}

impl ReceivedSignal {
    /// Whether the kernel raised this signal at `pid` because of `pid`'s own action: SIGPIPE on
    /// a write to a closed pipe, SIGXFSZ. Such signals come with SI_USER and the process's own
    /// pid; nobody else can send with our pid.
    pub fn raised_by(&self, pid: Pid) -> bool {
        self.code == libc::SI_USER && self.sender == pid.raw()
    }

    pub fn sender(&self) -> i32 {
        self.sender
    }
}

/// What [`wait_for_signal`] woke up for.
#[derive(Debug)]
pub enum Wake {
    Signal(ReceivedSignal),
    /// The timeout passed, or the wait was interrupted (by a stop and continue from a
    /// debugger): the caller looks at the clock.
    Timeout,
}

/// Sleeps until one of `signals` is pending (they must be blocked) or `timeout` passes
/// (`None`: no timeout at all), and takes the signal off the pending set.
pub fn wait_for_signal(signals: SignalSet, timeout: Option<Duration>) -> Wake {
    let timespec = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as _,
        tv_nsec: t.subsec_nanos() as _,
    });
    let timespec_ptr = timespec
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer is valid for the call (timespec may be null: wait forever), and the
    // set size matches the kernel's.
    let number = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &signals.0 as *const u64,
            &mut info as *mut libc::siginfo_t,
            timespec_ptr,
            KERNEL_SIGSET_SIZE,
        )
    };
    match Signal::from_number(number) {
        Some(signal) => Wake::Signal(ReceivedSignal {
            signal,
            code: info.si_code,
            // SAFETY: the kernel filled `info` for this signal; si_pid is meaningful for
            // SI_USER/SI_QUEUE and zero or unused otherwise, and reading it is always defined.
            sender: unsafe { info.si_pid() },
        }),
        // EAGAIN (timeout) or EINTR; nothing else can happen with valid arguments.
        None => Wake::Timeout,
    }
}

/// One result of [`reap_any_child`].
#[derive(Debug, PartialEq, Eq)]
pub enum Reaped {
    Child {
        pid: Pid,
        status: ChildStatus,
    },
    /// Children exist, none has exited yet.
    NoneReady,
    /// No children at all.
    NoChildren,
}

use crate::exit_status::ChildStatus;

/// `waitpid(-1, WNOHANG)`: reaps one exited child without blocking.
pub fn reap_any_child() -> Result<Reaped, Errno> {
    let mut raw_status = 0;
    // SAFETY: raw_status is a valid out-pointer; WNOHANG makes the call non-blocking.
    let pid = unsafe { libc::waitpid(-1, &mut raw_status, libc::WNOHANG) };
    match Pid::new(pid) {
        Some(pid) => Ok(Reaped::Child {
            pid,
            status: decode_wait_status(raw_status),
        }),
        None if pid == 0 => Ok(Reaped::NoneReady),
        None => match Errno::last() {
            Errno::ECHILD => Ok(Reaped::NoChildren),
            other => Err(other),
        },
    }
}

fn decode_wait_status(raw: i32) -> ChildStatus {
    if libc::WIFSIGNALED(raw) {
        if let Some(signal) = Signal::from_number(i64::from(libc::WTERMSIG(raw))) {
            return ChildStatus::Killed(signal);
        }
    }
    // Without WUNTRACED/WCONTINUED only exits and deaths by signal are reported.
    ChildStatus::Exited(libc::WEXITSTATUS(raw) as u8)
}

fn check(result: libc::c_int) -> Result<(), Errno> {
    if result == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Sends `signal` to one process.
pub fn kill_process(pid: Pid, signal: Signal) -> Result<(), Errno> {
    // SAFETY: kill has no memory effects; pid > 0 names exactly one process.
    check(unsafe { libc::kill(pid.raw(), signal.number()) })
}

/// Sends `signal` to every process in the process group `group`.
pub fn kill_process_group(group: Pid, signal: Signal) -> Result<(), Errno> {
    // SAFETY: kill has no memory effects; -group (group > 0) names exactly that group.
    check(unsafe { libc::kill(-group.raw(), signal.number()) })
}

/// Sends `signal` to every process this one may signal except itself: as PID 1, every other
/// process in the PID namespace.
pub fn kill_every_process(signal: Signal) -> Result<(), Errno> {
    // SAFETY: kill has no memory effects; -1 is the documented "everything but me" target.
    check(unsafe { libc::kill(-1, signal.number()) })
}

/// Makes orphaned descendants re-parent to this process instead of the system's init.
pub fn become_child_subreaper() -> Result<(), Errno> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes a plain integer flag and touches no memory.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

pub fn own_pid() -> Pid {
    // SAFETY: getpid cannot fail and has no memory effects.
    Pid(unsafe { libc::getpid() })
}

/// Whether standard input is a terminal whose foreground process group is ours: only then does
/// the child take the terminal over (a grace-init started in the background steals nothing).
pub fn holds_terminal_foreground() -> bool {
    // SAFETY: these calls only read process and terminal state; errors return -1/0.
    unsafe {
        libc::isatty(libc::STDIN_FILENO) == 1
            && libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp()
    }
}

/// In the child, between fork and exec: makes its own process group the terminal's foreground
/// group, with SIGTTOU blocked so that a background group may do so, then installs the signal
/// mask grace-init was started with. Only async-signal-safe calls.
pub fn prepare_child_signals_and_terminal(original_mask: SignalSet, take_terminal: bool) {
    set_signal_mask(SignalSet::ALL);
    if take_terminal {
        // SAFETY: tcsetpgrp and getpgrp touch no memory. Errors (ENOTTY, ENXIO, EBADF when the
        // terminal went away) leave the child in the background, which is all we can do.
        unsafe {
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp());
        }
    }
    set_signal_mask(original_mask);
}

/// Opens /dev/null on any of fds 0, 1 and 2 that is closed, as the C runtime does, so that no
/// file grace-init opens later lands on a standard stream.
pub fn open_missing_standard_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: the path is a NUL-terminated literal; open returns the lowest free fd,
            // which is `fd` because all lower ones are open.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

/// Closes every descriptor from 3 up but `keep` (grace-init's own log descriptor): after the
/// command has been started, grace-init must not keep the listening sockets or files it was
/// handed alive on its own.
pub fn close_fds_from_3_except(keep: Option<i32>) -> Result<(), Errno> {
    let ranges: &[(u32, u32)] = match keep.and_then(|fd| u32::try_from(fd).ok()) {
        Some(fd) if fd >= 3 => &[(3, fd - 1), (fd + 1, u32::MAX)],
        _ => &[(3, u32::MAX)],
    };
    for &(first, last) in ranges.iter().filter(|(first, last)| first <= last) {
        // SAFETY: close_range only closes descriptors; none of ours in the range is in use by
        // Rust objects.
        let result = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
        if result != 0 && Errno::last() != Errno::ENOSYS {
            return Err(Errno::last());
        }
        if result != 0 {
            return close_listed_fds_from_3_except(keep);
        }
    }
    Ok(())
}

/// [`close_fds_from_3_except`] for kernels before 5.9, which lack close_range.
fn close_listed_fds_from_3_except(keep: Option<i32>) -> Result<(), Errno> {
    // Kernels before 5.9: close what /proc lists, after the listing's own fd is gone.
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= 3 && Some(fd) != keep)
        .collect();
    for fd in open {
        // SAFETY: closing a descriptor we do not otherwise use; EBADF (the listing's own fd,
        // already closed) is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

extern "C" {
    /// The C runtime's environment: a null-terminated array of `NAME=value` strings.
    static environ: *const *const libc::c_char;
}

/// Whether some environment variable's name starts with `prefix`, found without copying the
/// environment (std's `vars_os` allocates every variable).
pub fn environment_has_name_starting_with(prefix: &[u8]) -> bool {
    // SAFETY: grace-init is single-threaded and never changes its environment, so `environ` is
    // the valid, null-terminated array of NUL-terminated strings the C runtime set up; each
    // entry is read up to its NUL only.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let variable = std::ffi::CStr::from_ptr(*entry).to_bytes();
            if variable.starts_with(prefix) {
                return true;
            }
            entry = entry.add(1);
        }
    }
    false
}

/// `chdir("/")`, so that grace-init pins no mount point.
pub fn change_directory_to_root() -> io::Result<()> {
    std::env::set_current_dir("/")
}

/// What happened to one write of a log line.
#[derive(Debug, PartialEq, Eq)]
pub enum LogWrite {
    Written,
    /// Part of the line went out, the rest was dropped (the next line must start afresh).
    Torn,
    /// The log is full (a reader that does not read, a stopped terminal): the line was dropped.
    Dropped,
    /// The log is closed or its reader is gone: nothing will ever be written again.
    Broken,
}

/// Opens a private, non-blocking file description of stderr when stderr is a pipe, FIFO or
/// terminal, so that writing a log line can never sleep: the command shares fd 2's description
/// and may fill the pipe at any moment, and O_NONBLOCK set there would change it for the command
/// too. Returns `None` for files and sockets, or when /proc is missing; then fd 2 is used.
pub fn open_private_nonblocking_stderr() -> Option<i32> {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `status` is a valid out-pointer for fstat.
    if unsafe { libc::fstat(libc::STDERR_FILENO, &mut status) } != 0 {
        return None;
    }
    let kind = status.st_mode & libc::S_IFMT;
    if kind != libc::S_IFIFO && kind != libc::S_IFCHR {
        // Regular files do not block for long, and a new description of one would write at
        // its own offset over what the command wrote.
        return None;
    }
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: the path is a NUL-terminated literal; O_NOCTTY keeps a terminal from becoming
    // grace-init's controlling terminal.
    let fd = unsafe { libc::open(c"/proc/self/fd/2".as_ptr(), flags) };
    (fd >= 0).then_some(fd)
}

/// Writes `bytes` to `fd` only as far as it can be done without blocking. `fd` is either a
/// private non-blocking description (`nonblocking`), or the shared, blocking fd 2, which is
/// polled for room before each write.
pub fn write_log_without_blocking(fd: i32, nonblocking: bool, mut bytes: &[u8]) -> LogWrite {
    let mut wrote_some = false;
    while !bytes.is_empty() {
        if !nonblocking {
            let mut poll_fd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd; a zero timeout never sleeps.
            let ready = unsafe { libc::poll(&mut poll_fd, 1, 0) };
            if poll_fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return LogWrite::Broken;
            }
            if ready != 1 || poll_fd.revents & libc::POLLOUT == 0 {
                return if wrote_some {
                    LogWrite::Torn
                } else {
                    LogWrite::Dropped
                };
            }
        }
        // SAFETY: the pointer and length describe the live slice `bytes`.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match written {
            n if n > 0 => {
                bytes = &bytes[n as usize..];
                wrote_some = true;
            }
            _ => match Errno::last() {
                Errno::EINTR => {}
                Errno::EAGAIN if wrote_some => return LogWrite::Torn,
                Errno::EAGAIN => return LogWrite::Dropped,
                _ => return LogWrite::Broken,
            },
        }
    }
    LogWrite::Written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_must_be_positive_so_group_and_everyone_kills_need_their_own_call() {
        assert_eq!(Pid::new(0), None);
        assert_eq!(Pid::new(-1), None);
        assert_eq!(Pid::new(1).map(Pid::raw), Some(1));
    }

    #[test]
    fn exit_and_signal_statuses_decode() {
        assert_eq!(decode_wait_status(3 << 8), ChildStatus::Exited(3));
        assert_eq!(decode_wait_status(15), ChildStatus::Killed(Signal::TERM));
        assert_eq!(
            decode_wait_status(9 | 0x80),
            ChildStatus::Killed(Signal::KILL)
        );
    }
}
