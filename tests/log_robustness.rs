//! Logging problems that must cost at most the line concerned: a write that fails for lack of
//! room (EFBIG, ENOSPC) drops that line only, a stderr that would block never blocks grace-init
//! (not even a socket shared with the command), and no user-supplied value can forge a line.
#[macro_use]
mod common;

use common::*;
use std::fs::{File, OpenOptions};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `grace-init -vv probe record` (exits 7 on USR2) with stderr appended to `log`.
fn start_logging_to(dir: &TestDir, log: &Path, limit: Option<u64>) -> (Init, Rec) {
    let rec = Rec::new(dir, "rec");
    let args = [
        "-vv".to_string(),
        probe(),
        "record".into(),
        rec.arg(),
        "--exit-on".into(),
        "12".into(),
        "--exit-code".into(),
        "7".into(),
    ];
    let stderr = OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .unwrap();
    let init = Init::start_with(Mode::Subreaper, dir, &[] as &[&str], &args, |c| {
        c.stderr(Stdio::from(stderr));
        if let Some(bytes) = limit {
            unsafe {
                c.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    });
    rec.wait_ready(T);
    (init, rec)
}

/// Sends `sig` and waits until the command has it: one more -vv log line was attempted.
fn forward(init: &Init, rec: &Rec, sig: i32) {
    let n = rec.len();
    init.signal(sig);
    assert!(
        rec.wait_sig_from(n, sig, T).is_some(),
        "signal {sig} not forwarded within {T:?} (grace-init {:?}: stuck on logging?); got {:?}",
        stat(init.pid()).map(|s| s.state),
        rec.sigs()
    );
}

fn log_text(log: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned()
}

/// Once room is made again, the lines written after it (the final `exiting` included) appear.
fn finish_and_check_later_lines(mut init: Init, rec: &Rec, log: &Path, why: &str) {
    forward(&init, rec, libc::SIGUSR1);
    init.signal(libc::SIGUSR2);
    let e = init.wait(T);
    assert_eq!(e.code, Some(7), "{e:?}");
    let text = log_text(log);
    assert!(
        text.contains("SIGUSR1") && text.contains("exiting"),
        "after {why}, the later log lines are lost; the log holds:\n{text}"
    );
}

#[test]
fn file_size_limit_drops_lines_only_until_there_is_room_again() {
    const LIMIT: u64 = 4096;
    let dir = TestDir::new("log-efbig");
    let log = dir.file("log");
    let (init, rec) = start_logging_to(&dir, &log, Some(LIMIT));
    // Fill the file up to RLIMIT_FSIZE, then a few more lines that fail with EFBIG (each also
    // raises SIGXFSZ at grace-init).
    let mut rounds = 0;
    while std::fs::metadata(&log).unwrap().len() < LIMIT {
        forward(&init, &rec, libc::SIGWINCH);
        rounds += 1;
        assert!(rounds < 500, "the log never reached {LIMIT} bytes");
    }
    for _ in 0..3 {
        forward(&init, &rec, libc::SIGWINCH);
    }
    assert_eq!(std::fs::metadata(&log).unwrap().len(), LIMIT);
    File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    finish_and_check_later_lines(init, &rec, &log, "EFBIG");
    assert!(
        !rec.has(libc::SIGXFSZ),
        "SIGXFSZ raised by grace-init's own write was forwarded to the command: {:?}",
        rec.sigs()
    );
}

/// A small tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: PathBuf, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        if !out.status.success() {
            let why = format!(
                "cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("{why}");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
        Some(Tmpfs { path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn full_filesystem_drops_lines_only_until_space_is_freed() {
    if !require_root("mounts a small tmpfs to fill it") {
        return;
    }
    let dir = TestDir::new("log-enospc");
    let Some(fs) = Tmpfs::mount(dir.file("mnt"), "64k") else {
        return;
    };
    let log = fs.path.join("log");
    File::create(&log).unwrap();
    // Take every free block.
    let filler = fs.path.join("filler");
    {
        use std::io::Write;
        let mut f = File::create(&filler).unwrap();
        let block = [b'x'; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(b"x").is_ok() {}
    }
    let (init, rec) = start_logging_to(&dir, &log, None);
    for _ in 0..5 {
        forward(&init, &rec, libc::SIGWINCH);
    }
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        0,
        "set-up: the log was written on a full tmpfs"
    );
    std::fs::remove_file(&filler).unwrap();
    finish_and_check_later_lines(init, &rec, &log, "ENOSPC");
    drop(fs);
}

fn socketpair_with_small_buffer() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    assert_eq!(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        },
        0
    );
    let size: libc::c_int = 4096;
    unsafe {
        libc::setsockopt(
            fds[1],
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// stderr is a stream socket nobody reads (journald's kind of stderr, shared with the command);
/// a log line far longer than its buffer must not put grace-init to sleep.
fn long_line_on_socket(mode: Mode) {
    let dir = TestDir::new("log-socket");
    let (reader, writer) = socketpair_with_small_buffer();
    let name = format!("{}nope", "./".repeat(50_000));
    let started = Instant::now();
    let mut init = Init::start_with(mode, &dir, &[] as &[&str], &[name], |c| {
        c.stderr(Stdio::from(writer));
    });
    let e = init.wait(Duration::from_secs(10));
    assert!(
        matches!(e.code, Some(126) | Some(127)),
        "{e:?} after {:?}",
        started.elapsed()
    );
    drop(reader);
}
both_modes!(
    log_line_longer_than_an_unread_stderr_socket_buffer_does_not_block,
    long_line_on_socket
);

/// A newline in the command's name shows escaped: every line on stderr is grace-init's own.
fn newline_in_name(mode: Mode) {
    let (e, _, err) = run(mode, &["nope\nforged: 0.000s WARN all is well"]);
    assert_eq!(e.code, Some(127), "{e:?}; stderr:\n{err}");
    for line in err.lines() {
        assert!(
            line.starts_with("grace-init: "),
            "a line on stderr is not grace-init's own: {line:?}\nstderr:\n{err}"
        );
    }
    assert!(
        err.contains("nope\\nforged"),
        "the newline is not shown escaped:\n{err}"
    );
}
both_modes!(
    newline_in_command_name_is_escaped_and_forges_no_log_line,
    newline_in_name
);

/// Issue 8 §9: run as another user, grace-init cannot open its own non-blocking description of
/// a root-owned stderr pipe (/proc/self/fd/2 gives EACCES) and has to write on the description
/// it shares with the command. A line longer than the pipe's room must still not block it.
#[test]
fn long_line_on_a_shared_pipe_it_cannot_reopen_does_not_block() {
    if !require_root("runs grace-init as another user on a root-owned pipe") {
        return;
    }
    let dir = TestDir::new("log-shared-pipe");
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let name = format!("{}nope", "./".repeat(50_000));
    let started = Instant::now();
    let mut init = Init::start_with(Mode::Subreaper, &dir, &[] as &[&str], &[name], |c| {
        c.stderr(Stdio::from(writer));
        unsafe {
            c.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(54_322) != 0
                    || libc::setuid(54_322) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let e = init.wait(Duration::from_secs(10));
    assert!(
        matches!(e.code, Some(126) | Some(127)),
        "{e:?} after {:?}",
        started.elapsed()
    );
    drop(reader);
}
