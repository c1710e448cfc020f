//! Logging: stderr only, in the documented line format, and never able to hurt grace-init
//! (closed stderr, EPIPE, a full pipe nobody reads).
mod common;

use common::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Start `grace-init -vv probe record` (exits 7 on USR2) with `customize`, forward a few signals
/// (each must arrive: a grace-init stuck writing a log line forwards nothing), then USR2.
fn run_noisy(
    dir: &TestDir,
    customize: impl FnOnce(&mut std::process::Command),
) -> (Init, Duration) {
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
    let mut init = Init::start_with(Mode::Subreaper, dir, &[] as &[&str], &args, customize);
    rec.wait_ready(T);
    let start = Instant::now();
    for round in 0..20 {
        for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGWINCH, 40] {
            let n = rec.len();
            init.signal(sig);
            assert!(
                rec.wait_sig_from(n, sig, T).is_some(),
                "round {round}: signal {sig} not forwarded (grace-init blocked on logging?)"
            );
        }
    }
    init.signal(libc::SIGUSR2);
    let code = init.wait_code(T);
    assert_eq!(code, 7);
    (init, start.elapsed())
}

#[test]
fn logs_go_to_stderr_never_stdout() {
    let dir = TestDir::new("log-stdout");
    let (init, _) = run_noisy(&dir, |_| {});
    assert_eq!(init.stdout(), "", "grace-init wrote to stdout");
    let err = init.stderr();
    assert!(!err.is_empty(), "-vv logged nothing at all");
    assert!(
        err.contains("forwarded"),
        "-vv does not log forwarded signals:\n{err}"
    );
}

#[test]
fn log_lines_have_documented_format() {
    let dir = TestDir::new("log-format");
    let (init, _) = run_noisy(&dir, |_| {});
    let err = init.stderr();
    for line in err.lines() {
        let rest = line
            .strip_prefix("grace-init: ")
            .unwrap_or_else(|| panic!("bad line: {line}"));
        let mut it = rest.splitn(3, ' ');
        let elapsed = it.next().unwrap();
        let level = it.next().unwrap_or("");
        let num = elapsed
            .strip_suffix('s')
            .unwrap_or_else(|| panic!("no elapsed time: {line}"));
        assert!(
            num.parse::<f64>().is_ok() && num.contains('.'),
            "bad elapsed `{elapsed}`: {line}"
        );
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "bad level: {line}"
        );
    }
}

#[test]
fn closed_stderr_does_not_stop_grace_init() {
    let dir = TestDir::new("log-closed");
    run_noisy(&dir, |c| {
        c.stderr(Stdio::null());
        unsafe {
            c.pre_exec(|| {
                libc::close(2);
                Ok(())
            });
        }
    });
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn stderr_pipe_with_closed_reader_epipe_is_survived() {
    let dir = TestDir::new("log-epipe");
    let (r, w) = pipe();
    drop(r);
    run_noisy(&dir, |c| {
        c.stderr(Stdio::from(w));
    });
}

#[test]
fn full_never_read_stderr_pipe_does_not_block() {
    let dir = TestDir::new("log-full");
    let (r, w) = pipe();
    // Fill the pipe completely (non-blocking on our side), then hand its write end to grace-init:
    // every log line it tries to write would block.
    unsafe {
        let fd = w.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        let buf = [b'x'; 4096];
        while libc::write(fd, buf.as_ptr() as *const _, buf.len()) > 0 {}
        let mut one = 1;
        while libc::write(fd, &mut one as *mut i32 as *const _, 1) > 0 {}
        libc::fcntl(fd, libc::F_SETFL, flags);
    }
    let (_, took) = run_noisy(&dir, |c| {
        c.stderr(Stdio::from(w));
    });
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(r);
}
