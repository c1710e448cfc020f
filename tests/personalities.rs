//! Started under a peer's name (tini, docker-init, dumb-init, catatonit), grace-init speaks that
//! peer's command line with that peer's meaning, and GRACE_INIT_* variables add its own features.
//! Each test starts the real binary with argv[0] set to the peer's name (`exec -a`), as PID 1 and
//! as a subreaper.
#[macro_use]
mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// `bash -c 'exec -a NAME grace-init ARGS…'`: the binary under test, started as `name`.
fn as_peer(name: &str) -> Vec<String> {
    vec![
        "bash".into(),
        "-c".into(),
        format!("exec -a {name} \"$0\" \"$@\""),
    ]
}

fn start_as(mode: Mode, dir: &TestDir, name: &str, args: &[String], env: &[(&str, &str)]) -> Init {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Init::start_with(mode, dir, &as_peer(name), args, |c| {
        for (k, v) in &env {
            c.env(k, v);
        }
    })
}

fn run_as(name: &str, args: &[&str], env: &[(&str, &str)]) -> (Exit, String, String) {
    let dir = TestDir::new("peer-run");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut init = start_as(Mode::Subreaper, &dir, name, &args, env);
    let exit = init.wait(T);
    (exit, init.stdout(), init.stderr())
}

/// `probe record` with a grandchild in the same group; both record what they get.
fn recorder(rec: &Rec) -> Vec<String> {
    vec![
        probe(),
        "record".into(),
        rec.arg(),
        "--grand-args".into(),
        "--pdeathsig".into(),
        "--exit-on".into(),
        "12".into(),
        "--exit-code".into(),
        "0".into(),
    ]
}

/// Sends USR1 to grace-init started as `name` with `options`; returns whether the child and the
/// grandchild (same process group) received it.
fn usr1_reaches(mode: Mode, name: &str, options: &[&str], env: &[(&str, &str)]) -> (bool, bool) {
    let dir = TestDir::new("peer-group");
    let rec = Rec::new(&dir, "rec");
    let mut args: Vec<String> = options.iter().map(|o| o.to_string()).collect();
    args.push("--".into());
    args.extend(recorder(&rec));
    let mut init = start_as(mode, &dir, name, &args, env);
    rec.wait_ready(T);
    rec.grand().wait_ready(T);
    init.signal(libc::SIGUSR1);
    let child = rec
        .wait_sig(libc::SIGUSR1, Duration::from_secs(5))
        .is_some();
    let grand = rec
        .grand()
        .wait_sig(libc::SIGUSR1, Duration::from_secs(2))
        .is_some();
    init.signal(libc::SIGUSR2);
    let _ = init.wait(T);
    (child, grand)
}

fn tini_signals(mode: Mode) {
    assert_eq!(
        usr1_reaches(mode, "tini", &[], &[]),
        (true, false),
        "tini: child alone"
    );
    assert_eq!(
        usr1_reaches(mode, "docker-init", &["-g"], &[]),
        (true, true),
        "-g: group"
    );
    assert_eq!(
        usr1_reaches(
            mode,
            "tini-static-amd64",
            &[],
            &[("TINI_KILL_PROCESS_GROUP", "1")]
        ),
        (true, true),
        "TINI_KILL_PROCESS_GROUP"
    );
    assert_eq!(
        usr1_reaches(mode, "catatonit", &[], &[]),
        (true, false),
        "catatonit: child alone"
    );
    assert_eq!(
        usr1_reaches(mode, "catatonit", &["-g"], &[]),
        (true, true),
        "catatonit -g"
    );
    assert_eq!(
        usr1_reaches(mode, "dumb-init", &[], &[]),
        (true, true),
        "dumb-init: its session's group"
    );
    assert_eq!(
        usr1_reaches(mode, "dumb-init", &["-c"], &[]),
        (true, false),
        "dumb-init -c"
    );
    assert_eq!(
        usr1_reaches(mode, "dumb-init", &[], &[("DUMB_INIT_SETSID", "0")]),
        (true, false),
        "DUMB_INIT_SETSID=0"
    );
}
both_modes!(
    each_personality_signals_child_or_group_as_its_peer_does,
    tini_signals
);

#[test]
fn tini_exit_code_remaps_and_usage() {
    let (exit, _, err) = run_as(
        "tini",
        &["-e", "143", "-e", "3", "--", "sh", "-c", "exit 3"],
        &[],
    );
    assert_eq!(exit.code, Some(0), "{err}");
    let (exit, _, err) = run_as("tini", &["--", "sh", "-c", "exit 4"], &[]);
    assert_eq!(exit.code, Some(4), "{err}");
    for bad in [
        &["-e", "300", "true"][..],
        &["-x", "true"],
        &["-p", "NOPE", "true"],
        &[],
    ] {
        let (exit, out, err) = run_as("tini", bad, &[]);
        assert_eq!(
            exit.code,
            Some(1),
            "tini usage errors exit 1: {bad:?} {err}"
        );
        assert_eq!(out, "");
        assert!(err.contains("Usage: tini"), "{err}");
    }
    let (exit, _, err) = run_as("tini", &["/nonexistent"], &[]);
    assert_eq!(exit.code, Some(127), "{err}");
}

#[test]
fn version_help_and_license_go_to_stdout_and_exit_0() {
    let (exit, out, _) = run_as("docker-init", &["--version"], &[]);
    assert_eq!(exit.code, Some(0));
    let first = out.lines().next().unwrap_or_default();
    // What dockerd parses: `tini version X.Y.Z - git.<id>`.
    assert!(
        first.starts_with("tini version ") && first.contains(" - git."),
        "{out}"
    );
    assert!(out.contains("grace-init"), "{out}");
    for (name, flag, needle) in [
        ("tini", "-h", "-e EXIT_CODE"),
        ("tini", "-l", "MIT"),
        ("dumb-init", "--help", "--single-child"),
        ("dumb-init", "-V", "dumb-init version"),
        ("catatonit", "-h", "-g"),
        ("catatonit", "--version", "_catatonit"),
        ("catatonit", "-L", "MIT"),
    ] {
        let (exit, out, err) = run_as(name, &[flag], &[]);
        assert_eq!(exit.code, Some(0), "{name} {flag}: {err}");
        assert!(out.contains(needle), "{name} {flag}: {out}");
    }
}

#[test]
fn dumb_init_and_catatonit_exit_codes_are_theirs() {
    let (exit, _, err) = run_as("dumb-init", &["/nonexistent"], &[]);
    assert_eq!(exit.code, Some(2), "dumb-init: exec failure is 2: {err}");
    let (exit, _, err) = run_as("catatonit", &["/nonexistent"], &[]);
    assert_eq!(exit.code, Some(1), "catatonit: exec failure is 1: {err}");
    for (name, bad) in [
        ("dumb-init", &["--bogus", "true"][..]),
        ("dumb-init", &["-r", "15", "true"]),
        ("dumb-init", &[]),
        ("catatonit", &["-P"]),
        ("catatonit", &[]),
    ] {
        let (exit, _, err) = run_as(name, bad, &[]);
        assert_eq!(exit.code, Some(1), "{name} {bad:?}: {err}");
    }
}

fn session_of(mode: Mode, name: &str, options: &[&str], env: &[(&str, &str)]) -> (i32, i32, i32) {
    let dir = TestDir::new("peer-session");
    let rec = Rec::new(&dir, "rec");
    let mut args: Vec<String> = options.iter().map(|o| o.to_string()).collect();
    args.push("--".into());
    args.extend(recorder(&rec));
    let mut init = start_as(mode, &dir, name, &args, env);
    rec.wait_ready(T);
    let child = init.child_pid();
    let gi = stat(init.pid()).unwrap();
    let st = stat(child).unwrap();
    init.signal(libc::SIGUSR2);
    let _ = init.wait(T);
    (st.session, st.pgrp, gi.session)
}

fn dumb_init_sessions(mode: Mode) {
    let (session, group, init_session) = session_of(mode, "dumb-init", &[], &[]);
    assert_ne!(
        session, init_session,
        "dumb-init: the command leads a new session"
    );
    assert_eq!(session, group);
    let (session, _, init_session) = session_of(mode, "dumb-init", &["--single-child"], &[]);
    assert_eq!(session, init_session, "-c: no new session");
    let (session, _, init_session) = session_of(mode, "tini", &[], &[]);
    assert_eq!(session, init_session, "tini: no new session");
}
both_modes!(
    dumb_init_starts_the_command_in_a_new_session_unless_c,
    dumb_init_sessions
);

fn dumb_init_rewrites(mode: Mode) {
    let dir = TestDir::new("peer-rewrite");
    let rec = Rec::new(&dir, "rec");
    let mut args: Vec<String> = ["-r", "15:3", "-r", "10:0", "-r", "15:1", "--"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(recorder(&rec));
    let mut init = start_as(mode, &dir, "dumb-init", &args, &[]);
    rec.wait_ready(T);
    init.signal(libc::SIGUSR1);
    init.signal(libc::SIGTERM);
    assert!(
        rec.wait_sig(libc::SIGHUP, T).is_some(),
        "the last rule for 15 wins: TERM -> HUP; got {:?}",
        rec.sigs()
    );
    assert!(
        !rec.has(libc::SIGQUIT) && !rec.has(libc::SIGUSR1),
        "{:?}",
        rec.sigs()
    );
    init.signal(libc::SIGUSR2);
    let _ = init.wait(T);
}
both_modes!(
    dumb_init_rewrites_by_number_last_rule_wins_zero_drops,
    dumb_init_rewrites
);

fn dumb_init_suspends(mode: Mode) {
    let dir = TestDir::new("peer-tstp");
    let rec = Rec::new(&dir, "rec");
    let mut args = vec!["--".to_string()];
    args.extend(recorder(&rec));
    // As a job-control shell starts a job: in a process group of its own, in the test's
    // session, so that grace-init's parent could continue it.
    let mut init = Init::start_with(mode, &dir, &as_peer("dumb-init"), &args, |c| {
        std::os::unix::process::CommandExt::process_group(c, 0);
    });
    rec.wait_ready(T);
    let child = init.child_pid();
    let gi = init.pid();
    init.signal(libc::SIGTSTP);
    // As PID 1 the kernel does not let grace-init stop itself (a signal from inside the
    // namespace cannot stop its init), and nothing could continue it anyway.
    let init_stops = mode == Mode::Subreaper;
    let stopped = wait_until(T, || {
        (stat(child)?.state == 'T' && (stat(gi)?.state == 'T') == init_stops).then_some(())
    });
    assert!(
        stopped.is_some(),
        "TSTP: the group gets SIGSTOP and grace-init stops too: child {:?} grace-init {:?}",
        stat(child),
        stat(gi)
    );
    init.signal(libc::SIGCONT);
    let resumed = wait_until(T, || {
        (stat(child)?.state != 'T' && stat(gi)?.state != 'T').then_some(())
    });
    assert!(
        resumed.is_some(),
        "CONT resumes both: {:?} {:?}",
        stat(child),
        stat(gi)
    );
    init.signal(libc::SIGUSR2);
    assert_eq!(init.wait_code(T), 0, "{}", init.stderr());
}
both_modes!(
    dumb_init_turns_tstp_into_sigstop_and_suspends_until_cont,
    dumb_init_suspends
);

fn grace_features(mode: Mode) {
    for name in ["tini", "dumb-init", "catatonit", "docker-init"] {
        let dir = TestDir::new("peer-delay");
        let rec = Rec::new(&dir, "rec");
        let mut args = vec!["--".to_string()];
        args.extend(recorder(&rec));
        let mut init = start_as(mode, &dir, name, &args, &[("GRACE_INIT_STOP_DELAY", "1s")]);
        rec.wait_ready(T);
        let sent = mono_ns();
        init.signal(libc::SIGTERM);
        let got = rec
            .wait_sig(libc::SIGTERM, T)
            .unwrap_or_else(|| panic!("{name}: no TERM; {}", init.stderr()));
        let held = secs(got - sent);
        assert!(
            (0.9..5.0).contains(&held),
            "{name}: TERM held {held:.2}s, not ~1s"
        );
        init.signal(libc::SIGUSR2);
        let _ = init.wait(T);
    }
}
both_modes!(
    grace_init_variables_add_the_stop_delay_under_every_personality,
    grace_features
);

#[test]
fn tini_w_warns_when_an_orphan_is_reaped_and_v_logs_more() {
    let (exit, _, err) = run_as(
        "tini",
        &["-w", "--", "sh", "-c", "sh -c 'sleep 0.2' & exit 0"],
        &[],
    );
    assert_eq!(exit.code, Some(0));
    assert!(
        err.contains("WARN") && err.contains("reaped a process"),
        "{err}"
    );
    let (_, _, quiet) = run_as("tini", &["true"], &[]);
    assert!(!quiet.contains("INFO"), "{quiet}");
    let (_, _, verbose) = run_as("tini", &["-v", "true"], &[]);
    assert!(verbose.contains("INFO"), "{verbose}");
    let (_, _, verbose) = run_as("tini", &["true"], &[("TINI_VERBOSITY", "2")]);
    assert!(verbose.contains("INFO"), "{verbose}");
    // TINI_VERBOSITY=0 and GRACE_INIT_QUIET: errors only (a missing named report file warns).
    let warns = [("GRACE_INIT_TERMINATION_LOG", "/nonexistent/file")];
    let (_, _, loud) = run_as("tini", &["true"], &warns);
    assert!(loud.contains("WARN"), "{loud}");
    for quiet in [("TINI_VERBOSITY", "0"), ("GRACE_INIT_QUIET", "1")] {
        let (_, _, err) = run_as("tini", &["true"], &[warns[0], quiet]);
        assert!(!err.contains("WARN"), "{quiet:?}: {err}");
    }
    // tini reads TINI_VERBOSITY with atoi: nothing it cannot read stops the container.
    for odd in ["", "abc", "3x"] {
        let (exit, _, err) = run_as("tini", &["true"], &[("TINI_VERBOSITY", odd)]);
        assert_eq!(exit.code, Some(0), "TINI_VERBOSITY={odd:?}: {err}");
    }
}

#[test]
fn parent_death_signal_reaches_grace_init_when_its_parent_dies() {
    let dir = TestDir::new("pdeathsig");
    let rec = Rec::new(&dir, "rec");
    // A parent shell starts grace-init (as tini, -p SIGUSR1) and exits; grace-init forwards the
    // SIGUSR1 it then gets to the command, which exits 0 on it.
    let script = format!(
        "(exec -a tini \"$0\" -p SIGUSR1 -- {} record {} --exit-on 10 --exit-code 0) & \
         while [ ! -e {}.ready ]; do sleep 0.05; done",
        probe(),
        rec.arg(),
        rec.arg()
    );
    let status = Command::new("bash")
        .args(["-c", &script, &grace_init_bin().display().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        rec.wait_sig(libc::SIGUSR1, T).is_some(),
        "the command never got the parent-death signal; got {:?}",
        rec.sigs()
    );
    // The same with grace-init's own option.
    let rec = Rec::new(&dir, "rec2");
    let script = format!(
        "(\"$0\" --parent-death-signal USR1 {} record {} --exit-on 10 --exit-code 0) & \
         while [ ! -e {}.ready ]; do sleep 0.05; done",
        probe(),
        rec.arg(),
        rec.arg()
    );
    let status = Command::new("bash")
        .args(["-c", &script, &grace_init_bin().display().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(rec.wait_sig(libc::SIGUSR1, T).is_some(), "{:?}", rec.sigs());
}

/// As `docker run -it IMAGE` with `ENTRYPOINT ["dumb-init", "--"]`: grace-init is PID 1 and
/// leads the session whose controlling terminal the pty is. The command gets its own session with
/// the terminal as its controlling terminal, so Ctrl-C from the keyboard reaches it directly.
#[test]
fn dumb_init_gives_the_command_the_terminal_as_its_controlling_terminal() {
    if !supported(Mode::Pid1) {
        return;
    }
    let dir = TestDir::new("peer-pty");
    let (mut pty, slave) = Pty::open();
    let stdin = slave.try_clone().unwrap();
    let stdout = slave.try_clone().unwrap();
    let script =
        "echo session=$(cut -d' ' -f6 /proc/self/stat)/$$ tty=$(cut -d' ' -f7 /proc/self/stat); \
                  trap 'echo caught-int; exit 5' INT; echo ready; while :; do sleep 0.1; done";
    let mut wrapper = vec!["setsid".to_string(), "-c".to_string()];
    wrapper.extend(as_peer("dumb-init"));
    let mut init = Init::start_with(Mode::Pid1, &dir, &wrapper, &["sh", "-c", script], |c| {
        c.stdin(std::process::Stdio::from(stdin))
            .stdout(std::process::Stdio::from(stdout));
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(c, || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    drop(slave);
    pty.expect("ready", T, || init.stderr());
    let line = pty
        .seen
        .lines()
        .find(|l| l.starts_with("session="))
        .unwrap_or_default()
        .to_string();
    let (session, tty) = line.split_once(' ').unwrap();
    let (sid, pid) = session
        .trim_start_matches("session=")
        .split_once('/')
        .unwrap();
    assert_eq!(
        sid.trim(),
        pid.trim(),
        "the command leads its own session: {line}"
    );
    assert_ne!(
        tty, "tty=0",
        "the command has a controlling terminal: {line}"
    );
    pty.write("\x03");
    pty.expect("caught-int", T, || init.stderr());
    assert_eq!(init.wait_code(T), 5, "{}", init.stderr());
}

/// Not under a job-control shell (here: in the test's own process group, as a service manager or
/// `kubectl exec` would start it), grace-init as dumb-init stops the command's group on TSTP but
/// not itself: nobody would ever continue it, and its deadlines would freeze.
#[test]
fn dumb_init_without_a_job_control_parent_stops_only_the_group() {
    let dir = TestDir::new("peer-tstp-alone");
    let rec = Rec::new(&dir, "rec");
    let mut args = vec!["--".to_string()];
    args.extend(recorder(&rec));
    let mut init = start_as(Mode::Subreaper, &dir, "dumb-init", &args, &[]);
    rec.wait_ready(T);
    let child = init.child_pid();
    init.signal(libc::SIGTSTP);
    assert!(
        wait_until(T, || (stat(child)?.state == 'T').then_some(())).is_some(),
        "the group did not stop"
    );
    sleep_ms(300);
    assert_ne!(
        stat(init.pid()).unwrap().state,
        'T',
        "grace-init stopped itself"
    );
    init.signal(libc::SIGCONT);
    init.signal(libc::SIGUSR2);
    assert_eq!(init.wait_code(T), 0, "{}", init.stderr());
}
