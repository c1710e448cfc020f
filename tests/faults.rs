//! Fault injection: the pre-stop hook cannot be forked, a flood of queued real-time signals,
//! grace-init itself stopped and continued from outside.
#[macro_use]
mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// A uid no process runs as, so RLIMIT_NPROC counts only grace-init and its children.
const UNUSED_UID: u32 = 54_321;

/// Run as an unprivileged user allowed two processes: grace-init and its command start, the
/// pre-stop hook's fork fails with EAGAIN. grace-init must say that the fork failed and still
/// forward the stop signal.
#[test]
fn hook_that_cannot_be_forked_is_reported_and_the_stop_signal_still_forwarded() {
    if !require_root("switches to another user with a low RLIMIT_NPROC") {
        return;
    }
    let busy = all_procs().into_iter().any(|p| {
        proc_status_field(p.pid, "Uid")
            .is_some_and(|u| u.split_whitespace().next() == Some(&UNUSED_UID.to_string()))
    });
    assert!(!busy, "set-up: uid {UNUSED_UID} already runs processes");
    let dir = TestDir::new("hook-nproc");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let rec = Rec::new(&dir, "rec");
    let hook = format!("{} exit 0", probe());
    let args = [
        "-v".to_string(),
        "--pre-stop".into(),
        hook,
        probe(),
        "record".into(),
        rec.arg(),
        "--exit-on".into(),
        "15".into(),
        "--exit-code".into(),
        "3".into(),
    ];
    let mut init = Init::start_with(Mode::Subreaper, &dir, &[] as &[&str], &args, |c| unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 2,
                rlim_max: 2,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &lim) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(UNUSED_UID) != 0
                || libc::setuid(UNUSED_UID) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    });
    rec.wait_ready(T);
    init.signal(libc::SIGTERM);
    let term = rec.wait_sig(libc::SIGTERM, Duration::from_secs(10));
    let e = init.wait(T);
    let err = init.stderr();
    assert!(
        term.is_some(),
        "the stop signal was not forwarded when the hook could not be started ({e:?}):\n{err}"
    );
    assert_eq!(e.code, Some(3), "{e:?}:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("ERROR") && l.contains("pre-stop") && l.contains("fork")),
        "no error naming the failed fork of the pre-stop hook:\n{err}"
    );
}

/// A flood of queued real-time signals during a stop delay: the delay still ends on time and
/// grace-init exits with the command's status.
fn rt_flood(mode: Mode) {
    let dir = TestDir::new("rt-flood");
    let rec = Rec::new(&dir, "rec");
    let args = [
        "--stop-delay".to_string(),
        "1s".into(),
        probe(),
        "record".into(),
        rec.arg(),
        "--exit-on".into(),
        "15".into(),
        "--exit-code".into(),
        "9".into(),
    ];
    let mut init = Init::start(mode, &dir, &args);
    rec.wait_ready(T);
    let gi = init.pid();
    let t0 = mono_ns();
    init.signal(libc::SIGTERM);
    let start = Instant::now();
    let mut queued = 0u32;
    // RTMIN+1 in the glibc/bash/Docker numbering grace-init uses.
    let rt = 35;
    while queued < 10_000 || (!rec.has(libc::SIGTERM) && start.elapsed() < T) {
        let value = libc::sigval {
            sival_ptr: std::ptr::null_mut(),
        };
        if unsafe { libc::sigqueue(gi, rt, value) } == 0 {
            queued += 1;
        } else if start.elapsed() > T {
            break;
        }
    }
    assert!(queued >= 10_000, "set-up: only {queued} signals queued");
    let term = rec.wait_sig(libc::SIGTERM, T).unwrap_or_else(|| {
        panic!(
            "the stop delay never ended under the flood; stderr:\n{}",
            init.stderr()
        )
    });
    let d = secs(term - t0);
    assert!(
        (0.9..6.0).contains(&d),
        "SIGTERM forwarded {d:.3}s after the stop signal with --stop-delay 1s under a flood of \
         {queued} real-time signals"
    );
    let e = init.wait(Duration::from_secs(30));
    assert_eq!(e.code, Some(9), "{e:?}; stderr:\n{}", init.stderr());
    assert!(
        rec.has(rt),
        "no real-time signal of the flood was forwarded"
    );
}
both_modes!(
    flood_of_queued_realtime_signals_keeps_stop_delay_and_exit_code,
    rt_flood
);

/// grace-init stopped with SIGSTOP from outside: signals sent meanwhile are forwarded once it
/// is continued.
fn stopped_and_continued(mode: Mode) {
    let dir = TestDir::new("stop-cont");
    let rec = Rec::new(&dir, "rec");
    let args = [
        probe(),
        "record".into(),
        rec.arg(),
        "--exit-on".into(),
        "12".into(),
        "--exit-code".into(),
        "4".into(),
    ];
    let mut init = Init::start(mode, &dir, &args);
    rec.wait_ready(T);
    let gi = init.pid();
    init.signal(libc::SIGSTOP);
    assert!(
        wait_until(T, || (stat(gi).is_some_and(|s| s.state == 'T'))
            .then_some(()))
        .is_some(),
        "grace-init did not stop on SIGSTOP: {:?}",
        stat(gi)
    );
    init.signal(libc::SIGUSR1);
    init.signal(libc::SIGHUP);
    sleep_ms(300);
    assert!(
        rec.sigs().is_empty(),
        "a stopped grace-init forwarded {:?}",
        rec.sigs()
    );
    init.signal(libc::SIGCONT);
    for sig in [libc::SIGUSR1, libc::SIGHUP] {
        assert!(
            rec.wait_sig(sig, Duration::from_secs(10)).is_some(),
            "signal {sig} sent while grace-init was stopped was not forwarded after SIGCONT; \
             got {:?}; stderr:\n{}",
            rec.sigs(),
            init.stderr()
        );
    }
    init.signal(libc::SIGUSR2);
    let e = init.wait(T);
    assert_eq!(e.code, Some(4), "{e:?}; stderr:\n{}", init.stderr());
}
both_modes!(
    signals_sent_while_grace_init_is_stopped_are_forwarded_after_sigcont,
    stopped_and_continued
);
