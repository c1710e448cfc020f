//! Starting a child: `fork`, the child's set-up, `execve`, and the report of the step that
//! failed, over a close-on-exec pipe.
//!
//! Everything the child needs (paths, argument and environment arrays, the `LISTEN_PID` slot)
//! is built before `fork`; between `fork` and `execve` the child only makes async-signal-safe
//! system calls and writes into memory it already owns. The parent returns once the child has
//! exec'd (the pipe closes) or failed (the pipe carries the step and errno), so the child's
//! process group exists before any signal can be forwarded to it.

use std::ffi::{CString, OsStr};
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

use super::{own_pid, set_signal_mask, Pid, SignalSet};

/// The step of starting a child that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnStep {
    /// Creating the pipe that reports the child's failure.
    Pipe,
    /// `fork` itself (the process limit, `pids.max`, memory).
    Fork,
    /// Moving the child into a process group of its own.
    ProcessGroup,
    /// Opening `/dev/null` as the child's standard input.
    NullStdin,
    /// `execve` of the program (and of `/bin/sh` for a script without `#!`).
    Exec,
}

impl SpawnStep {
    pub fn describe(self) -> &'static str {
        match self {
            SpawnStep::Pipe => "pipe",
            SpawnStep::Fork => "fork",
            SpawnStep::ProcessGroup => "setpgid/setsid",
            SpawnStep::NullStdin => "open /dev/null",
            SpawnStep::Exec => "exec",
        }
    }

    fn code(self) -> u32 {
        self as u32
    }

    fn from_code(code: u32) -> SpawnStep {
        [
            SpawnStep::Pipe,
            SpawnStep::Fork,
            SpawnStep::ProcessGroup,
            SpawnStep::NullStdin,
        ]
        .into_iter()
        .find(|step| step.code() == code)
        .unwrap_or(SpawnStep::Exec)
    }
}

/// NUL-terminated strings and the null-terminated pointer array that `execve` takes.
struct CStringArray {
    /// Owned bytes, each ending in NUL; never resized after the pointers are taken.
    strings: Vec<Box<[u8]>>,
    pointers: Vec<*const c_char>,
}

impl CStringArray {
    fn new(strings: Vec<Vec<u8>>) -> CStringArray {
        let strings: Vec<Box<[u8]>> = strings
            .into_iter()
            .map(|mut s| {
                s.retain(|&b| b != 0);
                s.push(0);
                s.into_boxed_slice()
            })
            .collect();
        let pointers = strings
            .iter()
            .map(|s| s.as_ptr().cast::<c_char>())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        CStringArray { strings, pointers }
    }
}

/// Room for `LISTEN_PID=` and any pid (at most 10 digits) and the NUL.
const LISTEN_PID_ENTRY: usize = "LISTEN_PID=".len() + 11;

/// What to start and how.
pub struct ExecPlan {
    path: CString,
    argv: CStringArray,
    /// `/bin/sh PATH ARGS...`: POSIX execvp's way to run a script without `#!` (ENOEXEC);
    /// `None` for a binary, which must fail with ENOEXEC instead.
    shell_argv: Option<CStringArray>,
    envp: CStringArray,
    /// The environment entry that must name the child's own pid (`LISTEN_PID`).
    listen_pid_entry: Option<usize>,
    directory: Option<CString>,
    null_stdin: bool,
    take_terminal: bool,
    /// A new session instead of a new process group, with stdin's terminal as its controlling
    /// terminal when it can have it.
    new_session: bool,
    mask: SignalSet,
    sigchld: Option<super::SavedDisposition>,
}

impl ExecPlan {
    /// `path` is the program as found on PATH; `argv[0]` is what the program sees as its name.
    /// `environment` is `NAME=value` entries. `shell_fallback`: run it with `/bin/sh` if
    /// `execve` answers ENOEXEC (a script without `#!`).
    pub fn new(
        path: &OsStr,
        argv: &[&OsStr],
        environment: Vec<Vec<u8>>,
        shell_fallback: bool,
    ) -> ExecPlan {
        let path = CString::new(path.as_bytes().to_vec())
            .unwrap_or_else(|_| CString::from(c"/nonexistent"));
        let words = |list: &[&OsStr]| list.iter().map(|w| w.as_bytes().to_vec()).collect();
        let mut shell: Vec<&OsStr> =
            vec![OsStr::new("/bin/sh"), OsStr::from_bytes(path.as_bytes())];
        shell.extend(argv.iter().skip(1));
        ExecPlan {
            argv: CStringArray::new(words(argv)),
            shell_argv: shell_fallback.then(|| CStringArray::new(words(&shell))),
            path,
            envp: CStringArray::new(environment),
            listen_pid_entry: None,
            directory: None,
            null_stdin: false,
            take_terminal: false,
            new_session: false,
            mask: SignalSet::EMPTY,
            sigchld: None,
        }
    }

    /// The environment entry at `index` (a `LISTEN_PID=` entry) gets the child's own pid.
    pub fn listen_pid_entry(mut self, index: usize) -> ExecPlan {
        if let Some(entry) = self.envp.strings.get_mut(index) {
            let mut room = vec![0u8; LISTEN_PID_ENTRY];
            room[..entry.len()].copy_from_slice(entry);
            *entry = room.into_boxed_slice();
            self.envp.pointers[index] = entry.as_ptr().cast();
            self.listen_pid_entry = Some(index);
        }
        self
    }

    /// Run in `directory`, or in `/` if it cannot be entered (it may have been removed).
    pub fn directory(mut self, directory: &OsStr) -> ExecPlan {
        self.directory = CString::new(directory.as_bytes().to_vec()).ok();
        self
    }

    pub fn null_stdin(mut self) -> ExecPlan {
        self.null_stdin = true;
        self
    }

    /// Start the child in a session of its own (dumb-init's mode).
    pub fn new_session(mut self, new_session: bool) -> ExecPlan {
        self.new_session = new_session;
        self
    }

    /// Make the child's process group the terminal's foreground group.
    pub fn take_terminal(mut self, take: bool) -> ExecPlan {
        self.take_terminal = take;
        self
    }

    /// The signal mask and SIGCHLD disposition grace-init was started with, for the child.
    pub fn signal_state(
        mut self,
        mask: SignalSet,
        sigchld: Option<super::SavedDisposition>,
    ) -> ExecPlan {
        self.mask = mask;
        self.sigchld = sigchld;
        self
    }
}

/// What [`fork_exec`] reports on failure: the step and its errno; `pid` is the child that
/// failed (already reaped), if `fork` succeeded.
#[derive(Debug)]
pub struct SpawnFailure {
    pub step: SpawnStep,
    pub errno: Errno,
    pub pid: Option<Pid>,
}

/// Starts `plan` as a child in a process group of its own; returns once it has exec'd.
pub fn fork_exec(plan: &mut ExecPlan) -> Result<Pid, SpawnFailure> {
    let fail = |step, errno, pid| SpawnFailure { step, errno, pid };
    let mut pipe = [0; 2];
    // SAFETY: `pipe` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(fail(SpawnStep::Pipe, Errno::last(), None));
    }
    let [read_end, write_end] = pipe;
    // SAFETY: grace-init has a single thread, so the child is a full copy in which only
    // async-signal-safe calls are made before execve or _exit (see `in_child`).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: we are the freshly forked child; `in_child` never returns.
        unsafe { in_child(plan, write_end) }
    }
    // SAFETY: closing our copy of the write end, which nothing else uses.
    unsafe { libc::close(write_end) };
    let Some(child) = Pid::new(pid) else {
        let errno = Errno::last();
        // SAFETY: closing the read end we own.
        unsafe { libc::close(read_end) };
        return Err(fail(SpawnStep::Fork, errno, None));
    };
    let mut report = [0u8; 8];
    let length = loop {
        // SAFETY: `report` is a valid buffer of its length for read.
        let n = unsafe { libc::read(read_end, report.as_mut_ptr().cast(), report.len()) };
        if n >= 0 || Errno::last() != Errno::EINTR {
            break n;
        }
    };
    // SAFETY: closing the read end we own.
    unsafe { libc::close(read_end) };
    if length != report.len() as isize {
        // EOF: execve closed the pipe, the child runs the program.
        return Ok(child);
    }
    let step = u32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
    let errno = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
    // The child _exits right after its report: reap it here so the caller never sees it.
    let mut status = 0;
    // SAFETY: waiting for our own child; `status` is a valid out-pointer.
    unsafe { libc::waitpid(child.raw(), &mut status, 0) };
    Err(fail(
        SpawnStep::from_code(step),
        Errno::from_raw(errno),
        Some(child),
    ))
}

/// The child's side: set-up, then execve; on failure, report the step and errno and _exit.
///
/// # Safety
/// Must run in a freshly forked child of a single-threaded process; `plan` must be the parent's
/// plan (a copy in the child's memory).
unsafe fn in_child(plan: &mut ExecPlan, report: i32) -> ! {
    let failed = |step: SpawnStep| -> ! {
        let mut message = [0u8; 8];
        message[..4].copy_from_slice(&step.code().to_ne_bytes());
        message[4..].copy_from_slice(&Errno::last_raw().to_ne_bytes());
        // SAFETY: write and _exit are async-signal-safe; the buffer is valid.
        unsafe {
            libc::write(report, message.as_ptr().cast(), message.len());
            libc::_exit(127)
        }
    };
    // SAFETY: each call below is async-signal-safe and takes pointers into `plan`, which the
    // child owns and which stay valid until execve.
    unsafe {
        if plan.new_session {
            if libc::setsid() < 0 {
                failed(SpawnStep::ProcessGroup);
            }
            // Fails without a terminal, or when it is another session's: then there is none.
            libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0);
        } else if libc::setpgid(0, 0) != 0 {
            failed(SpawnStep::ProcessGroup);
        }
        if plan.take_terminal {
            // SIGTTOU is blocked (all signals are), so a background group may take the
            // terminal. ENOTTY/ENXIO/EBADF leave the child in the background.
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp());
        }
        if plan.null_stdin {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            if null < 0 || libc::dup2(null, libc::STDIN_FILENO) < 0 {
                failed(SpawnStep::NullStdin);
            }
            if null != libc::STDIN_FILENO {
                libc::close(null);
            }
        }
        if let Some(directory) = &plan.directory {
            if libc::chdir(directory.as_ptr()) != 0 {
                libc::chdir(c"/".as_ptr());
            }
        }
        if let Some(index) = plan.listen_pid_entry {
            write_listen_pid(&mut plan.envp.strings[index], own_pid());
        }
        if let Some(saved) = &plan.sigchld {
            saved.restore();
        }
        set_signal_mask(plan.mask);
        libc::execve(
            plan.path.as_ptr(),
            plan.argv.pointers.as_ptr(),
            plan.envp.pointers.as_ptr(),
        );
        if let Some(shell_argv) = plan
            .shell_argv
            .as_ref()
            .filter(|_| Errno::last() == Errno::ENOEXEC)
        {
            libc::execve(
                c"/bin/sh".as_ptr(),
                shell_argv.pointers.as_ptr(),
                plan.envp.pointers.as_ptr(),
            );
            // No /bin/sh (a scratch image): report the program's own error.
            Errno::set_raw(libc::ENOEXEC);
        }
        // Block again so that nothing interrupts the report.
        set_signal_mask(SignalSet::ALL);
        failed(SpawnStep::Exec)
    }
}

/// Writes `LISTEN_PID=<pid>` and a NUL into `entry` without allocating.
fn write_listen_pid(entry: &mut [u8], pid: Pid) {
    let prefix = b"LISTEN_PID=";
    let mut digits = [0u8; 10];
    let mut n = pid.raw().unsigned_abs();
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let value = &digits[start..];
    if entry.len() > prefix.len() + value.len() {
        entry[..prefix.len()].copy_from_slice(prefix);
        entry[prefix.len()..prefix.len() + value.len()].copy_from_slice(value);
        entry[prefix.len() + value.len()] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_pid_is_written_in_place_for_any_pid() {
        for pid in [1, 7, 42, 99_999, 4_194_304, i32::MAX] {
            let mut entry = vec![b'x'; LISTEN_PID_ENTRY];
            write_listen_pid(&mut entry, Pid::new(pid).unwrap());
            let text = std::ffi::CStr::from_bytes_until_nul(&entry).unwrap();
            assert_eq!(text.to_str().unwrap(), format!("LISTEN_PID={pid}"));
        }
    }

    #[test]
    fn steps_survive_the_report_pipe() {
        for step in [
            SpawnStep::Pipe,
            SpawnStep::Fork,
            SpawnStep::ProcessGroup,
            SpawnStep::NullStdin,
            SpawnStep::Exec,
        ] {
            assert_eq!(SpawnStep::from_code(step.code()), step);
        }
    }

    #[test]
    fn arrays_are_null_terminated_and_drop_inner_nuls() {
        let array = CStringArray::new(vec![b"a\0b".to_vec(), b"c".to_vec()]);
        assert_eq!(array.pointers.len(), 3);
        assert!(array.pointers[2].is_null());
        assert_eq!(&*array.strings[0], b"ab\0");
    }
}
