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

mod fork_exec;
mod sock_diag;
pub use fork_exec::{fork_exec, ExecPlan, SpawnFailure, SpawnStep};
pub use sock_diag::{tcp_sockets, TcpSocket, TCP_LISTEN};

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
    /// Whether the kernel raised this signal at `pid` for one of `pid`'s own writes: SIGPIPE
    /// on a write to a closed pipe, SIGXFSZ past the file size limit. The kernel sends these
    /// with SI_USER and the process's own pid. Other signals with that sender are not ours:
    /// the process that exec'd grace-init had the same pid and may have left them pending.
    pub fn raised_by_own_write(&self, pid: Pid) -> bool {
        let write_signal =
            self.signal.number() == libc::SIGPIPE || self.signal.number() == libc::SIGXFSZ;
        write_signal && self.code == libc::SI_USER && self.sender == pid.raw()
    }

    /// Whether the kernel raised it (the terminal's SIGTTIN/SIGTTOU/SIGTSTP for grace-init's
    /// process group) rather than a process with kill(2).
    pub fn raised_by_kernel(&self) -> bool {
        self.code == libc::SI_KERNEL
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
    /// A child was stopped by this signal (it is still there, not reaped).
    Stopped {
        pid: Pid,
        signal: Signal,
    },
    /// Children exist, none has exited yet.
    NoneReady,
    /// No children at all.
    NoChildren,
}

use crate::exit_status::ChildStatus;

/// `waitpid(-1, WNOHANG | WUNTRACED)`: reaps one exited child, or reports one that stopped,
/// without blocking.
pub fn reap_any_child() -> Result<Reaped, Errno> {
    let mut raw_status = 0;
    // SAFETY: raw_status is a valid out-pointer; WNOHANG makes the call non-blocking.
    let pid = unsafe { libc::waitpid(-1, &mut raw_status, libc::WNOHANG | libc::WUNTRACED) };
    match Pid::new(pid) {
        Some(pid) if libc::WIFSTOPPED(raw_status) => Ok(Reaped::Stopped {
            pid,
            signal: Signal::from_number(i64::from(libc::WSTOPSIG(raw_status)))
                .unwrap_or(Signal::STOP),
        }),
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

/// A pidfd: a reference to one process that a recycled pid number cannot redirect.
pub struct ProcessHandle(i32);

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor this handle owns.
        unsafe { libc::close(self.0) };
    }
}

/// `pidfd_open(pid)`: a handle on whoever has `pid` now. ENOSYS before Linux 5.3.
pub fn open_process(pid: Pid) -> Result<ProcessHandle, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.raw(), 0u32) };
    if fd < 0 {
        return Err(Errno::last());
    }
    Ok(ProcessHandle(fd as i32))
}

/// `pidfd_send_signal`: signals exactly the process the handle was opened on, or fails with
/// ESRCH if it has exited, whoever has its number now.
pub fn kill_process_by_handle(handle: &ProcessHandle, signal: Signal) -> Result<(), Errno> {
    // SAFETY: a valid pidfd, a signal number, a null siginfo (as kill(2) sends) and no flags.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            handle.0,
            signal.number(),
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    check(result as libc::c_int)
}

/// Stops this process (SIGSTOP cannot be blocked) until somebody sends SIGCONT.
pub fn stop_self() {
    // SAFETY: kill has no memory effects; our own pid is a valid target.
    unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
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
    // SAFETY: these calls only read process and terminal state; errors return -1/0. Both are
    // 0 when the group leader is outside grace-init's PID namespace (unshare --fork): the
    // terminal's foreground is then still grace-init's own group.
    unsafe {
        libc::isatty(libc::STDIN_FILENO) == 1
            && libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp()
    }
}

/// The foreground process group of the terminal on standard input, if it is a terminal.
pub fn terminal_foreground() -> Option<Pid> {
    // SAFETY: tcgetpgrp only reads terminal state; errors return -1.
    Pid::new(unsafe { libc::tcgetpgrp(libc::STDIN_FILENO) })
}

/// Whether standard input is a terminal that belongs to grace-init's own session: the terminal
/// a job-control shell above grace-init manages.
pub fn terminal_of_own_session() -> bool {
    // SAFETY: tcgetsid and getsid only read terminal and process state; errors return -1.
    unsafe {
        let session = libc::tcgetsid(libc::STDIN_FILENO);
        session > 0 && session == libc::getsid(0)
    }
}

/// grace-init's process group; `None` when its leader is outside grace-init's PID namespace.
pub fn own_process_group() -> Option<Pid> {
    // SAFETY: getpgrp cannot fail and has no memory effects.
    Pid::new(unsafe { libc::getpgrp() })
}

/// Whether a job-control shell above grace-init can continue it after it stops itself: its
/// parent is in the same session but another process group (its group is not orphaned). Not so
/// for a session leader (`docker exec -it`, `ssh -t`) or under a parent that is not a shell.
pub fn parent_does_job_control() -> bool {
    // SAFETY: these calls only read process state; errors return -1.
    unsafe {
        let parent = libc::getppid();
        let session = libc::getsid(0);
        parent > 0
            && session != libc::getpid()
            && libc::getsid(parent) == session
            && libc::getpgid(parent) != libc::getpgrp()
    }
}

/// Whether `path` looks like a script that `/bin/sh` should run when `execve` says ENOEXEC: not
/// an ELF file (one for another CPU must fail with "Exec format error", not be run as shell
/// code), and no NUL byte in its first line (bash's test for a binary file).
pub fn looks_like_a_shell_script(path: &std::path::Path) -> bool {
    let mut head = [0u8; 128];
    let Ok(length) =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut head))
    else {
        return false;
    };
    let head = &head[..length];
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    !head.starts_with(b"\x7fELF") && !first_line.contains(&0)
}

/// Makes `group` the foreground process group of the terminal on standard input. All signals
/// are blocked in grace-init, so SIGTTOU cannot stop it when it is in the background.
pub fn set_terminal_foreground(group: Pid) -> Result<(), Errno> {
    // SAFETY: tcsetpgrp touches no memory; a bad fd or group gives an error.
    check(unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, group.raw()) })
}

/// A signal's disposition as grace-init found it at start, to be given back to its children.
#[derive(Clone, Copy)]
pub struct SavedDisposition(libc::sigaction);

impl SavedDisposition {
    /// Installs the saved disposition again. Async-signal-safe (between fork and exec).
    pub fn restore(&self) {
        // SAFETY: a valid sigaction read from the kernel; the old-action pointer may be null.
        unsafe { libc::sigaction(libc::SIGCHLD, &self.0, std::ptr::null_mut()) };
    }
}

/// With SIGCHLD ignored or SA_NOCLDWAIT set, the kernel reaps children itself and their
/// status is lost: grace-init would wait forever for its command. Resets SIGCHLD to the
/// default for grace-init and returns what it was, for the children; `None` if it was fine.
pub fn take_default_sigchld() -> Option<SavedDisposition> {
    // SAFETY: an all-zero sigaction is a valid value of this plain C struct (SIG_DFL).
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: reading the current action into a valid out-pointer.
    unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut current) };
    let auto_reaped =
        current.sa_sigaction == libc::SIG_IGN || current.sa_flags & libc::SA_NOCLDWAIT != 0;
    if !auto_reaped {
        return None;
    }
    // SAFETY: as above; zeroed is SIG_DFL with no flags.
    let default: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: installing a valid action; the old-action pointer may be null.
    unsafe { libc::sigaction(libc::SIGCHLD, &default, std::ptr::null_mut()) };
    Some(SavedDisposition(current))
}

/// The environment's `NAME=value` entries as the C runtime set them up, borrowed (std's
/// `vars_os` allocates every variable).
fn environment_entries() -> impl Iterator<Item = &'static [u8]> {
    // SAFETY: grace-init is single-threaded and never changes its environment, so `environ` is
    // the valid, null-terminated array of NUL-terminated strings the C runtime set up, alive and
    // unchanged for the whole run; each entry is read up to its NUL only.
    let mut entry = unsafe { environ };
    std::iter::from_fn(move || {
        // SAFETY: as above; `entry` stays within the array, stopping at its null terminator.
        unsafe {
            if entry.is_null() || (*entry).is_null() {
                return None;
            }
            let variable = std::ffi::CStr::from_ptr(*entry).to_bytes();
            entry = entry.add(1);
            Some(variable)
        }
    })
}

/// The environment as `NAME=value` entries, copied.
pub fn environment() -> Vec<Vec<u8>> {
    environment_entries().map(<[u8]>::to_vec).collect()
}

/// Whether `path` is a regular file this process may execute: ENOENT if it is missing,
/// EACCES if it is not executable or not a regular file.
pub fn executable_file(path: &std::path::Path) -> Result<(), Errno> {
    let metadata = std::fs::metadata(path).map_err(|_| Errno::ENOENT)?;
    if !metadata.is_file() {
        return Err(Errno::EACCES);
    }
    let Ok(c_path) =
        std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
    else {
        return Err(Errno::ENOENT);
    };
    // SAFETY: a valid NUL-terminated path; access only reads.
    check(unsafe { libc::access(c_path.as_ptr(), libc::X_OK) }).map_err(|_| Errno::EACCES)
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
/// environment.
pub fn environment_has_name_starting_with(prefix: &[u8]) -> bool {
    environment_entries().any(|variable| variable.starts_with(prefix))
}

/// The value of the environment variable `name`, found without copying the environment.
pub fn environment_variable(name: &[u8]) -> Option<Vec<u8>> {
    environment_entries().find_map(|entry| {
        entry
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(b"="))
            .map(<[u8]>::to_vec)
    })
}

/// `prctl(PR_SET_PDEATHSIG)`: the kernel sends `signal` to grace-init when its parent dies.
pub fn set_parent_death_signal(signal: Signal) -> Result<(), Errno> {
    // SAFETY: PR_SET_PDEATHSIG takes a plain signal number and touches no memory.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            signal.number() as libc::c_ulong,
            0,
            0,
            0,
        )
    })
}

/// Gives up the controlling terminal of the session grace-init leads, so that the command,
/// started in a new session, can take it as its own (dumb-init's mode). The kernel then sends
/// SIGHUP and SIGCONT to the terminal's foreground group, grace-init's own: they are taken off
/// the pending set here, so that they are not forwarded. Does nothing unless grace-init leads
/// its session and stdin is its controlling terminal.
pub fn release_controlling_terminal() {
    // SAFETY: these calls read process and terminal state or detach from the terminal; the
    // signal wait uses a valid set and a zero timeout.
    unsafe {
        let leader = libc::getsid(0) == libc::getpid();
        if !leader || libc::tcgetsid(libc::STDIN_FILENO) != libc::getpid() {
            return;
        }
        if libc::ioctl(libc::STDIN_FILENO, libc::TIOCNOTTY) != 0 {
            return;
        }
    }
    let hangup = SignalSet((1 << (libc::SIGHUP - 1)) | (1 << (libc::SIGCONT - 1)));
    while let Wake::Signal(_) = wait_for_signal(hangup, Some(Duration::ZERO)) {}
}

/// `chdir("/")`, so that grace-init pins no mount point.
pub fn change_directory_to_root() -> io::Result<()> {
    std::env::set_current_dir("/")
}

/// What became of the termination message.
#[derive(Debug, PartialEq, Eq)]
pub enum TerminationMessage {
    Written,
    /// The file does not exist (not in Kubernetes, or a custom path).
    Missing,
    /// Something is in it already: the command's own message is never overwritten.
    NotEmpty,
    /// Not a regular file (a FIFO, a device), so nothing is written.
    NotAFile,
    /// It cannot be opened for writing (read-only, permissions) or the write failed.
    Failed(Errno),
}

/// Writes `text` to `path` if it is an existing, empty regular file that can be written,
/// without creating it and without blocking (O_NONBLOCK keeps a FIFO from holding the open).
pub fn write_termination_message(path: &std::path::Path, text: &[u8]) -> TerminationMessage {
    let Ok(c_path) =
        std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
    else {
        return TerminationMessage::Missing;
    };
    // Looked at before it is opened: opening a FIFO or a device for writing has effects of its
    // own (a reader sees EOF when it is closed; a watchdog arms).
    match std::fs::metadata(path) {
        Err(_) => return TerminationMessage::Missing,
        Ok(metadata) if !metadata.is_file() => return TerminationMessage::NotAFile,
        Ok(metadata) if metadata.len() != 0 => return TerminationMessage::NotEmpty,
        Ok(_) => {}
    }
    let flags =
        libc::O_WRONLY | libc::O_APPEND | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: a valid NUL-terminated path; without O_CREAT no mode is needed.
    let fd = unsafe { libc::open(c_path.as_ptr(), flags) };
    if fd < 0 {
        return match Errno::last() {
            Errno::ENOENT | Errno::ENOTDIR => TerminationMessage::Missing,
            errno => TerminationMessage::Failed(errno),
        };
    }
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `status` a valid out-pointer.
    let outcome = if unsafe { libc::fstat(fd, &mut status) } != 0 {
        TerminationMessage::Failed(Errno::last())
    } else if status.st_mode & libc::S_IFMT != libc::S_IFREG {
        TerminationMessage::NotAFile
    } else if status.st_size != 0 {
        TerminationMessage::NotEmpty
    } else {
        // SAFETY: the pointer and length describe `text`.
        match unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) } {
            n if n == text.len() as isize => TerminationMessage::Written,
            n if n < 0 => TerminationMessage::Failed(Errno::last()),
            // A short write to a regular file: the file system is full.
            _ => TerminationMessage::Failed(Errno::ENOSPC),
        }
    };
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    outcome
}

/// What happened to one write of a log line.
#[derive(Debug, PartialEq, Eq)]
pub enum LogWrite {
    Written,
    /// Part of the line went out, the rest was dropped (the next line must start afresh).
    Torn,
    /// The line was dropped: the log is full (a reader that does not read, a stopped
    /// terminal), or this write failed (a full disk, an I/O error); the next may succeed.
    Dropped,
    /// The log is closed or its reader is gone: nothing will ever be written again.
    Broken,
    /// This way of writing is not supported here (RWF_NOWAIT on an older kernel): nothing was
    /// written; the caller chooses another.
    Unsupported,
}

/// How grace-init writes a log line to stderr so that the write itself can never sleep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogChannel {
    /// A private description of stderr opened with O_NONBLOCK (pipes, FIFOs, terminals): the
    /// command shares fd 2's description, and O_NONBLOCK set there would change it for the
    /// command too.
    Private(i32),
    /// fd 2 is a socket (journald): `send(MSG_DONTWAIT)` does not block, whatever the
    /// description's flags.
    Socket,
    /// fd 2 is a pipe or FIFO that could not be reopened (a pipe of another user):
    /// `pwritev2(RWF_NOWAIT)` (Linux 6.x for pipes).
    PipeNoWait,
    /// A terminal that could not be reopened, or a pipe on a kernel without RWF_NOWAIT for
    /// pipes: polled for room, then written PIPE_BUF bytes at a time. The command can fill it
    /// between the two; the write then waits until the reader reads.
    Polled,
    /// A regular file (or anything else): writes to it do not wait for a reader.
    File,
}

/// Chooses how to write to stderr. Returns a private non-blocking description when stderr is a
/// pipe, FIFO or terminal that can be reopened through /proc (the caller keeps it open).
pub fn open_log_channel() -> LogChannel {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `status` is a valid out-pointer for fstat.
    if unsafe { libc::fstat(libc::STDERR_FILENO, &mut status) } != 0 {
        return LogChannel::File;
    }
    let kind = status.st_mode & libc::S_IFMT;
    if kind == libc::S_IFSOCK {
        return LogChannel::Socket;
    }
    if kind != libc::S_IFIFO && kind != libc::S_IFCHR {
        // Regular files do not block for long, and a new description of one would write at
        // its own offset over what the command wrote.
        return LogChannel::File;
    }
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: the path is a NUL-terminated literal; O_NOCTTY keeps a terminal from becoming
    // grace-init's controlling terminal.
    let fd = unsafe { libc::open(c"/proc/self/fd/2".as_ptr(), flags) };
    match (fd >= 0, kind == libc::S_IFIFO) {
        (true, _) => LogChannel::Private(fd),
        (false, true) => LogChannel::PipeNoWait,
        (false, false) => LogChannel::Polled,
    }
}

/// Writes `bytes` through `channel` only as far as it can be done without blocking.
pub fn write_log_without_blocking(channel: LogChannel, mut bytes: &[u8]) -> LogWrite {
    let mut wrote_some = false;
    let cut_short = |wrote_some| {
        if wrote_some {
            LogWrite::Torn
        } else {
            LogWrite::Dropped
        }
    };
    while !bytes.is_empty() {
        let fd = match channel {
            LogChannel::Private(fd) => fd,
            _ => libc::STDERR_FILENO,
        };
        // Polled: at most PIPE_BUF bytes per poll, so that the room poll saw (a free pipe page)
        // is enough for the write.
        let chunk = match channel {
            LogChannel::Polled => bytes.len().min(libc::PIPE_BUF),
            _ => bytes.len(),
        };
        if channel == LogChannel::Polled {
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
                return cut_short(wrote_some);
            }
        }
        let pointer = bytes.as_ptr().cast();
        let bytes_len = chunk;
        // SAFETY: the pointer and length describe the live slice `bytes`; each call only reads
        // it.
        let written = unsafe {
            match channel {
                LogChannel::Socket => libc::send(
                    fd,
                    pointer,
                    bytes_len,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                ),
                LogChannel::PipeNoWait => {
                    let part = libc::iovec {
                        iov_base: pointer as *mut libc::c_void,
                        iov_len: bytes_len,
                    };
                    libc::pwritev2(fd, &part, 1, -1, libc::RWF_NOWAIT)
                }
                _ => libc::write(fd, pointer, bytes_len),
            }
        };
        if written > 0 {
            bytes = &bytes[written as usize..];
            wrote_some = true;
            continue;
        }
        match Errno::last() {
            Errno::EINTR => {}
            Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::EINVAL
                if channel == LogChannel::PipeNoWait && !wrote_some =>
            {
                return LogWrite::Unsupported
            }
            Errno::EAGAIN => return cut_short(wrote_some),
            // The reader is gone or the descriptor is: no line will ever get through.
            Errno::EPIPE | Errno::EBADF | Errno::ECONNRESET | Errno::ENOTCONN | Errno::EINVAL => {
                return LogWrite::Broken
            }
            // A full disk or quota, an I/O error, the file size limit: this line is lost, the
            // next one may get through once there is room again.
            _ => return cut_short(wrote_some),
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
