//! Starting the command and the pre-stop hook as children that get the signal state grace-init
//! itself was started with, never its own blocked set: what to run (the program found on PATH),
//! with which environment, and how a failure is reported. The system calls are in
//! [`crate::sys::fork_exec`].
//!
//! The environment: `GRACE_INIT_*` variables are grace-init's own settings and reach neither
//! the command nor the hook (a nested grace-init must not inherit the outer one's hook and
//! delay). Socket activation (`LISTEN_FDS`, `LISTEN_PID`): when `LISTEN_PID` names grace-init,
//! the command sees its own pid there, so `sd_listen_fds()` accepts the sockets; the hook gets
//! no `LISTEN_*` variable at all.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::sys::{self, ExecPlan, Pid, SavedDisposition, SignalSet, SpawnFailure, SpawnStep};

/// A command could not be started: which program, which step, and the error.
#[derive(Debug)]
pub struct SpawnError {
    program: String,
    step: SpawnStep,
    errno: Errno,
    /// The child that failed after `fork` (already reaped).
    pub pid: Option<Pid>,
}

impl SpawnError {
    /// The shell's convention: 127 when the command is not found, 126 when it cannot be run.
    pub fn exit_code(&self) -> u8 {
        match (self.step, self.errno) {
            (SpawnStep::Exec, Errno::ENOENT) => 127,
            _ => 126,
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot run '{}': {}: {}",
            self.program,
            self.step.describe(),
            self.errno.desc()
        )
    }
}

/// The signal state grace-init was started with, which every child gets back.
#[derive(Clone, Copy)]
pub struct InheritedSignals {
    pub mask: SignalSet,
    pub sigchld: Option<SavedDisposition>,
}

/// Starts the command in a process group of its own, in the terminal's foreground if
/// `take_terminal`. Returns once the command has been exec'd, so the group exists before any
/// signal can be forwarded to it.
pub fn spawn_command(
    argv: &[OsString],
    signals: InheritedSignals,
    take_terminal: bool,
    new_session: bool,
) -> Result<Pid, SpawnError> {
    let me = sys::own_pid();
    let (environment, listen_pid) = child_environment(sys::environment(), Some(me));
    let mut plan = plan(argv, environment, None)?
        .take_terminal(take_terminal && !new_session)
        .new_session(new_session)
        .signal_state(signals.mask, signals.sigchld);
    if let Some(index) = listen_pid {
        plan = plan.listen_pid_entry(index);
    }
    start(&argv[0], &mut plan)
}

/// Starts the pre-stop hook in a process group of its own, with stdin from /dev/null (the
/// terminal belongs to the command), in `directory` (where grace-init was started) or in `/` if
/// that is gone.
pub fn spawn_pre_stop_hook(
    argv: &[String],
    signals: InheritedSignals,
    directory: Option<&Path>,
) -> Result<Pid, SpawnError> {
    let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let (environment, _) = child_environment(sys::environment(), None);
    // Relative PATH entries are looked up where the hook runs, not in grace-init's `/`.
    let base = directory
        .filter(|dir| dir.is_dir())
        .unwrap_or(Path::new("/"));
    let mut plan = plan(&argv, environment, Some(base))?
        .null_stdin()
        .signal_state(signals.mask, signals.sigchld);
    if let Some(directory) = directory {
        plan = plan.directory(directory.as_os_str());
    }
    start(&argv[0], &mut plan)
}

/// `base`: the directory relative PATH entries are taken from (the child's working directory);
/// `None` for the current one.
fn plan(
    argv: &[OsString],
    environment: Vec<Vec<u8>>,
    base: Option<&Path>,
) -> Result<ExecPlan, SpawnError> {
    let search_path = path_variable(&environment);
    let path =
        find_program(&argv[0], search_path.as_deref(), base).map_err(|errno| SpawnError {
            program: argv[0].to_string_lossy().into_owned(),
            step: SpawnStep::Exec,
            errno,
            pid: None,
        })?;
    let words: Vec<&OsStr> = argv.iter().map(OsString::as_os_str).collect();
    let shell_fallback =
        sys::looks_like_a_shell_script(&base.unwrap_or(Path::new(".")).join(&path));
    Ok(ExecPlan::new(
        path.as_os_str(),
        &words,
        environment,
        shell_fallback,
    ))
}

fn start(program: &OsStr, plan: &mut ExecPlan) -> Result<Pid, SpawnError> {
    sys::fork_exec(plan).map_err(|SpawnFailure { step, errno, pid }| SpawnError {
        program: program.to_string_lossy().into_owned(),
        step,
        errno,
        pid,
    })
}

/// The children's environment: grace-init's own, without `GRACE_INIT_*`. With `command_of`
/// (grace-init's pid, for the command): the index of a `LISTEN_PID` entry naming grace-init,
/// which the child rewrites to its own pid. Without (the hook): no `LISTEN_*` entry at all.
fn child_environment(
    environment: Vec<Vec<u8>>,
    command_of: Option<Pid>,
) -> (Vec<Vec<u8>>, Option<usize>) {
    let kept: Vec<Vec<u8>> = environment
        .into_iter()
        .filter(|entry| !entry.starts_with(b"GRACE_INIT_"))
        .filter(|entry| command_of.is_some() || !entry.starts_with(b"LISTEN_"))
        .collect();
    let listen_pid = command_of.and_then(|me| {
        let ours = format!("LISTEN_PID={me}");
        kept.iter().position(|entry| entry == ours.as_bytes())
    });
    (kept, listen_pid)
}

/// `PATH`'s value in `environment`, if set.
fn path_variable(environment: &[Vec<u8>]) -> Option<OsString> {
    environment
        .iter()
        .find_map(|entry| entry.strip_prefix(b"PATH="))
        .map(|value| OsString::from_vec(value.to_vec()))
}

/// musl's and glibc's search path when `PATH` is unset.
const DEFAULT_PATH: &str = "/usr/local/bin:/bin:/usr/bin";

/// Where `name` is, as execvp would find it: as given if it holds a `/`, else the first
/// executable file of that name in `PATH` (relative entries taken from `base`). ENOENT when
/// there is none, EACCES when only non-executable files were found.
fn find_program(name: &OsStr, path: Option<&OsStr>, base: Option<&Path>) -> Result<PathBuf, Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(name));
    }
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut error = Errno::ENOENT;
    for directory in path.as_bytes().split(|&b| b == b':') {
        let directory = if directory.is_empty() {
            b"."
        } else {
            directory
        };
        let candidate = Path::new(OsStr::from_bytes(directory)).join(name);
        let on_disk = match base {
            Some(base) if candidate.is_relative() => base.join(&candidate),
            _ => candidate.clone(),
        };
        match sys::executable_file(&on_disk) {
            Ok(()) => return Ok(candidate),
            Err(Errno::EACCES) => error = Errno::EACCES,
            Err(_) => {}
        }
    }
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|e| e.as_bytes().to_vec()).collect()
    }

    #[test]
    fn grace_init_settings_do_not_reach_children() {
        let env = entries(&[
            "PATH=/bin",
            "GRACE_INIT_STOP_DELAY=5s",
            "GRACE_INIT_X=",
            "HOME=/",
        ]);
        let (kept, _) = child_environment(env.clone(), Some(Pid::new(9).unwrap()));
        assert_eq!(kept, entries(&["PATH=/bin", "HOME=/"]));
        let (kept, _) = child_environment(env, None);
        assert_eq!(kept, entries(&["PATH=/bin", "HOME=/"]));
    }

    #[test]
    fn listen_pid_naming_grace_init_is_marked_for_the_command_and_removed_for_the_hook() {
        let env = entries(&["LISTEN_FDS=1", "LISTEN_PID=9", "A=b"]);
        let me = Pid::new(9).unwrap();
        assert_eq!(child_environment(env.clone(), Some(me)).1, Some(1));
        let (kept, slot) = child_environment(env.clone(), None);
        assert_eq!((kept, slot), (entries(&["A=b"]), None));
        // Somebody else's LISTEN_PID is left alone.
        assert_eq!(child_environment(env, Some(Pid::new(10).unwrap())).1, None);
    }

    #[test]
    fn programs_are_found_like_execvp_finds_them() {
        assert_eq!(
            find_program(
                OsStr::new("sh"),
                Some(OsStr::new("/nonexistent:/bin")),
                None
            ),
            Ok(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            find_program(OsStr::new("./x"), None, None),
            Ok(PathBuf::from("./x"))
        );
        assert_eq!(
            find_program(
                OsStr::new("no-such-program-here"),
                Some(OsStr::new("/bin")),
                None
            ),
            Err(Errno::ENOENT)
        );
        assert_eq!(find_program(OsStr::new(""), None, None), Err(Errno::ENOENT));
        // A relative entry is taken from the child's directory, not grace-init's.
        assert_eq!(
            find_program(
                OsStr::new("sh"),
                Some(OsStr::new(".")),
                Some(Path::new("/bin"))
            ),
            Ok(PathBuf::from("./sh"))
        );
        // A directory of that name is skipped, like execvp's EACCES, and reported if alone.
        assert_eq!(
            find_program(OsStr::new("tmp"), Some(OsStr::new("/")), None),
            Err(Errno::EACCES)
        );
    }
}
