//! Starting the command and the pre-stop hook as children that get the signal state grace-init
//! itself was started with, never its own blocked set.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::errno::Errno;

use crate::sys::{self, Pid, SignalSet};

/// A command could not be started.
#[derive(Debug)]
pub struct SpawnError {
    program: String,
    source: io::Error,
}

impl SpawnError {
    /// The shell's convention: 127 when the command is not found, 126 when it cannot be run.
    pub fn exit_code(&self) -> u8 {
        if self.source.raw_os_error() == Some(libc::ENOENT) {
            127
        } else {
            126
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot run '{}': ", self.program)?;
        match self.source.raw_os_error() {
            Some(code) => f.write_str(Errno::from_raw(code).desc()),
            None => write!(f, "{}", self.source),
        }
    }
}

/// Starts the command in a process group of its own, in the terminal's foreground if
/// `take_terminal`. Returns once the command has been exec'd (std waits for exec to succeed or
/// fail), so the group exists before any signal can be forwarded to it.
pub fn spawn_command(
    argv: &[OsString],
    original_mask: SignalSet,
    take_terminal: bool,
) -> Result<Pid, SpawnError> {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).process_group(0);
    start(command, original_mask, take_terminal)
}

/// Starts the pre-stop hook in a process group of its own, with stdin from /dev/null (the
/// terminal belongs to the command) and the directory grace-init was started in.
pub fn spawn_pre_stop_hook(
    argv: &[String],
    original_mask: SignalSet,
    directory: Option<&Path>,
) -> Result<Pid, SpawnError> {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .process_group(0)
        .stdin(Stdio::null());
    if let Some(directory) = directory {
        command.current_dir(directory);
    }
    start(command, original_mask, false)
}

fn start(
    mut command: Command,
    original_mask: SignalSet,
    take_terminal: bool,
) -> Result<Pid, SpawnError> {
    let program = command.get_program().to_string_lossy().into_owned();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls on values copied in beforehand; it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(move || {
            sys::prepare_child_signals_and_terminal(original_mask, take_terminal);
            Ok(())
        });
    }
    let child = command.spawn().map_err(|source| SpawnError {
        program: program.clone(),
        source,
    })?;
    // Dropping `child` neither waits for nor kills it: grace-init's reaper owns it from here.
    Pid::new(child.id() as i32).ok_or_else(|| SpawnError {
        program,
        source: io::Error::other("the kernel returned no process id"),
    })
}
