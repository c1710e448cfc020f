//! The shutdown timeline: --stop-delay, --pre-stop, --grace-period/--kill-margin deadline,
//! cleanup of leftovers when the main command exits, and invalid combinations.
#[macro_use]
mod common;

use common::*;
use std::time::{Duration, Instant};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// grace-init OPTS probe record REC RECORD_OPTS; waits until the child (and grandchild) are ready.
fn start(
    mode: Mode,
    dir: &TestDir,
    opts: &[&str],
    record_opts: &[&str],
    env: &[(&str, &str)],
) -> (Init, Rec) {
    let rec = Rec::new(dir, "rec");
    let mut args = s(opts);
    args.extend([probe(), "record".into(), rec.arg()]);
    args.extend(s(record_opts));
    let init = Init::start_with_env(mode, dir, &args, env);
    rec.wait_ready(T);
    (init, rec)
}

fn term_at(rec: &Rec, init: &Init, sig: i32) -> u64 {
    rec.wait_sig(sig, T).unwrap_or_else(|| {
        panic!(
            "child never got signal {sig}; got {:?}; stderr:\n{}",
            rec.sigs(),
            init.stderr()
        )
    })
}

fn stop_delay(mode: Mode) {
    let dir = TestDir::new("delay");
    let (mut init, rec) = start(
        mode,
        &dir,
        &["-v", "--stop-delay", "2s"],
        &["--exit-on", "15"],
        &[],
    );
    let t0 = mono_ns();
    init.signal(libc::SIGTERM);
    let t1 = term_at(&rec, &init, libc::SIGTERM);
    let d = secs(t1 - t0);
    assert!(
        d >= 1.9,
        "child got TERM {d:.3}s after the stop signal, before the 2s stop delay"
    );
    assert!(
        d < 10.0,
        "child got TERM only {d:.3}s after the stop signal"
    );
    assert_eq!(
        rec.sigs(),
        vec![15],
        "the child was disturbed during the delay"
    );
    assert_eq!(init.wait_code(T), 0, "stderr:\n{}", init.stderr());
    assert!(
        init.stderr().contains("stop delay"),
        "-v does not log the stop delay:\n{}",
        init.stderr()
    );
}
both_modes!(stop_delay_holds_term_back_2s, stop_delay);

#[test]
fn stop_delay_from_env() {
    let dir = TestDir::new("delay-env");
    let (mut init, rec) = start(
        Mode::Subreaper,
        &dir,
        &[],
        &["--exit-on", "15"],
        &[("GRACE_INIT_STOP_DELAY", "1500ms")],
    );
    let t0 = mono_ns();
    init.signal(libc::SIGTERM);
    let d = secs(term_at(&rec, &init, libc::SIGTERM) - t0);
    assert!(
        (1.4..10.0).contains(&d),
        "TERM after {d:.3}s with GRACE_INIT_STOP_DELAY=1500ms"
    );
    assert_eq!(init.wait_code(T), 0);
}

fn second_signal_ends_delay(mode: Mode, second: i32) {
    let dir = TestDir::new("delay-second");
    let (mut init, rec) = start(
        mode,
        &dir,
        &["--stop-delay", "20s"],
        &["--exit-on", "15"],
        &[],
    );
    let t0 = mono_ns();
    init.signal(libc::SIGTERM);
    sleep_ms(500);
    assert!(
        !rec.has(15),
        "TERM forwarded at once despite --stop-delay 20s"
    );
    let t2 = mono_ns();
    init.signal(second);
    let t3 = term_at(&rec, &init, libc::SIGTERM);
    assert!(
        secs(t3 - t2) < 1.0,
        "TERM came {:.3}s after the second signal",
        secs(t3 - t2)
    );
    assert!(secs(t3 - t0) >= 0.45);
    assert_eq!(init.wait_code(T), 0);
}
fn second_term(mode: Mode) {
    second_signal_ends_delay(mode, libc::SIGTERM);
}
fn second_int(mode: Mode) {
    second_signal_ends_delay(mode, libc::SIGINT);
}
both_modes!(second_term_during_delay_forwards_at_once, second_term);
both_modes!(int_during_delay_forwards_at_once, second_int);

#[test]
fn stop_signal_option_and_rewrite_apply_to_delayed_signal() {
    let dir = TestDir::new("stop-signal");
    let (mut init, rec) = start(
        Mode::Subreaper,
        &dir,
        &[
            "--stop-signal",
            "HUP",
            "--stop-delay",
            "1500ms",
            "-r",
            "HUP:QUIT",
        ],
        &["--exit-on", "3"],
        &[],
    );
    // TERM is not the stop signal here: forwarded at once.
    let t = mono_ns();
    init.signal(libc::SIGTERM);
    assert!(
        secs(term_at(&rec, &init, libc::SIGTERM) - t) < 1.0,
        "TERM not forwarded at once"
    );
    let t0 = mono_ns();
    init.signal(libc::SIGHUP);
    let d = secs(term_at(&rec, &init, libc::SIGQUIT) - t0);
    assert!(
        (1.4..10.0).contains(&d),
        "rewritten stop signal QUIT came after {d:.3}s"
    );
    assert!(!rec.has(libc::SIGHUP), "HUP forwarded unrewritten");
    assert_eq!(init.wait_code(T), 0);
}

fn pre_stop(mode: Mode) {
    let dir = TestDir::new("pre-stop");
    let hook = dir.s("hook");
    let cmd = format!("{} stamp {hook} --sleep-ms 1500 'hello world'", probe());
    let (mut init, rec) = start(
        mode,
        &dir,
        &["-v", "--pre-stop", &cmd],
        &["--exit-on", "15"],
        &[],
    );
    let t0 = mono_ns();
    init.signal(libc::SIGTERM);
    let t1 = term_at(&rec, &init, libc::SIGTERM);
    let content =
        std::fs::read_to_string(&hook).expect("hook did not run before the child got TERM");
    let mut lines = content.lines();
    let hook_ts: u64 = lines.next().unwrap().parse().unwrap();
    assert_eq!(
        lines.collect::<Vec<_>>(),
        vec!["hello world"],
        "hook's words split wrongly"
    );
    assert!(
        hook_ts <= t1,
        "child got TERM before the pre-stop hook finished"
    );
    assert!(
        secs(t1 - t0) >= 1.4,
        "forwarding did not wait for the hook: {:.3}s",
        secs(t1 - t0)
    );
    assert_eq!(init.wait_code(T), 0);
    assert!(init.stderr().contains("pre-stop"), "{}", init.stderr());
}
both_modes!(pre_stop_hook_runs_before_forwarding, pre_stop);

#[test]
fn failing_pre_stop_hook_does_not_prevent_stop() {
    for hook in [
        format!("{} exit 3", probe()),
        "/nonexistent/grace-init-hook".to_string(),
    ] {
        let dir = TestDir::new("pre-stop-fail");
        let (mut init, rec) = start(
            Mode::Subreaper,
            &dir,
            &["--pre-stop", &hook],
            &["--exit-on", "15"],
            &[],
        );
        init.signal(libc::SIGTERM);
        term_at(&rec, &init, libc::SIGTERM);
        assert_eq!(
            init.wait_code(T),
            0,
            "hook {hook}; stderr:\n{}",
            init.stderr()
        );
    }
}

fn deadline(mode: Mode) {
    let dir = TestDir::new("deadline");
    let (mut init, rec) = start(
        mode,
        &dir,
        &["--grace-period", "4s", "--kill-margin", "1s"],
        &["--ignore", "15", "--grand-args", "--setsid --ignore 15"],
        &[],
    );
    let child = init.child_pid();
    let grand = descendants_of(child);
    assert_eq!(grand.len(), 1, "expected one grandchild: {grand:?}");
    let grand = grand[0];
    assert_ne!(
        stat(grand).unwrap().session,
        stat(child).unwrap().session,
        "grandchild did not escape"
    );
    let t0 = Instant::now();
    init.signal(libc::SIGTERM);
    while t0.elapsed() < Duration::from_millis(2300) {
        assert!(
            alive(child) && alive(grand),
            "killed {:?} after the stop signal, before the deadline",
            t0.elapsed()
        );
        assert!(
            init.try_exit().is_none(),
            "grace-init exited early: {:?}",
            init.try_exit()
        );
        sleep_ms(50);
    }
    let e = init.wait(Duration::from_secs(8).saturating_sub(t0.elapsed()));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(2500), "exited after {took:?}");
    assert_eq!(e.code, Some(137), "{e:?}; stderr:\n{}", init.stderr());
    assert!(
        init.stderr().contains("did not exit within"),
        "stderr:\n{}",
        init.stderr()
    );
    assert!(!alive(child), "child survived the deadline");
    assert!(
        wait_until(Duration::from_secs(3), || (!exists(grand)).then_some(())).is_some(),
        "escaped grandchild {grand} still exists after grace-init exited: {:?}",
        stat(grand)
    );
    drop(rec);
}
both_modes!(
    deadline_kills_term_ignoring_child_and_escaped_grandchild,
    deadline
);

fn leftovers_terminated(mode: Mode) {
    let dir = TestDir::new("leftover");
    let (mut init, rec) = start(
        mode,
        &dir,
        &[],
        &[
            "--exit-after-ms",
            "300",
            "--exit-code",
            "5",
            "--grand-args",
            "--exit-on 15",
        ],
        &[],
    );
    let grand_pid = rec.grand().wait_ready(T);
    let e = init.wait(T);
    assert_eq!(e.code, Some(5), "{e:?}; stderr:\n{}", init.stderr());
    assert!(
        rec.grand().has(15),
        "leftover grandchild never got SIGTERM: {:?}",
        rec.grand().sigs()
    );
    if mode == Mode::Subreaper {
        assert!(
            !exists(grand_pid),
            "leftover {grand_pid} still exists: {:?}",
            stat(grand_pid)
        );
    }
}
both_modes!(
    leftover_gets_term_and_is_gone_exit_code_kept,
    leftovers_terminated
);

fn leftovers_killed(mode: Mode) {
    let dir = TestDir::new("leftover-kill");
    let (mut init, rec) = start(
        mode,
        &dir,
        &["--cleanup-timeout", "1s"],
        &[
            "--exit-after-ms",
            "300",
            "--exit-code",
            "5",
            "--grand-args",
            "--ignore 15",
        ],
        &[],
    );
    let grand_pid = rec.grand().wait_ready(T);
    let e = init.wait(Duration::from_secs(10));
    let took = init.started.elapsed();
    assert_eq!(e.code, Some(5), "{e:?}; stderr:\n{}", init.stderr());
    assert!(
        took >= Duration::from_millis(1200),
        "leftover killed before the cleanup timeout: {took:?}"
    );
    if mode == Mode::Subreaper {
        assert!(
            !exists(grand_pid),
            "TERM-ignoring leftover {grand_pid} survived: {:?}",
            stat(grand_pid)
        );
    }
}
both_modes!(
    term_ignoring_leftover_killed_after_cleanup_timeout,
    leftovers_killed
);

/// `CMD ["/start.sh"]`: the wrapper dies of the forwarded SIGTERM at once while the app behind
/// it drains for 3 s. The app must get the rest of the grace period, not the cleanup timeout.
fn wrapper_dies_app_drains(mode: Mode) {
    let dir = TestDir::new("wrapper-drain");
    let (mut init, rec) = start(
        mode,
        &dir,
        &["-v", "--grace-period", "30s", "--cleanup-timeout", "1s"],
        &[
            "--default",
            "15",
            "--grand-args",
            "--exit-after-signal-ms 3000 --exit-code 0",
        ],
        &[],
    );
    let grand_pid = rec.grand().wait_ready(T);
    let sent = Instant::now();
    init.signal(libc::SIGTERM);
    let e = init.wait(T);
    let took = sent.elapsed();
    assert_eq!(e.code, Some(143), "{e:?}; stderr:\n{}", init.stderr());
    assert!(
        rec.grand().has(15),
        "the app behind the wrapper never got SIGTERM: {:?}",
        rec.grand().sigs()
    );
    assert!(
        took >= Duration::from_millis(2800),
        "grace-init exited {took:?} after SIGTERM, before the app's 3 s drain; stderr:\n{}",
        init.stderr()
    );
    assert!(
        !init.stderr().contains("WARN"),
        "the draining app was killed; stderr:\n{}",
        init.stderr()
    );
    if mode == Mode::Subreaper {
        assert!(!alive(grand_pid), "app {grand_pid} outlived grace-init");
    }
}
both_modes!(
    app_behind_a_dying_wrapper_drains_until_the_deadline_not_the_cleanup_timeout,
    wrapper_dies_app_drains
);

fn exit_during_delay(mode: Mode) {
    let dir = TestDir::new("exit-in-delay");
    let (mut init, rec) = start(
        mode,
        &dir,
        &["--stop-delay", "20s"],
        &["--exit-after-ms", "2000", "--exit-code", "4"],
        &[],
    );
    let t0 = Instant::now();
    init.signal(libc::SIGTERM);
    let e = init.wait(Duration::from_secs(10));
    assert_eq!(e.code, Some(4), "{e:?}; stderr:\n{}", init.stderr());
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(!rec.has(15), "TERM forwarded during the stop delay");
}
both_modes!(
    command_exiting_during_stop_delay_ends_promptly,
    exit_during_delay
);

#[test]
fn invalid_timeline_combinations_exit_2() {
    for (args, names) in [
        (
            vec!["--stop-delay", "30s", "--grace-period", "30s"],
            ["stop-delay", "30s"],
        ),
        (
            vec!["--kill-margin", "5s", "--grace-period", "3s"],
            ["kill-margin", "5s"],
        ),
    ] {
        let mut a = args.clone();
        a.push("true");
        let (e, _, err) = run(Mode::Subreaper, &a);
        assert_eq!(e.code, Some(2), "{args:?}: {e:?}; stderr:\n{err}");
        let first = err.lines().next().unwrap_or("");
        assert!(first.starts_with("grace-init: "), "{args:?}: {err}");
        assert!(
            names.iter().any(|n| first.contains(n)),
            "{args:?}: `{first}` names neither {names:?}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// As a subreaper whose /proc belongs to another PID namespace (here: `unshare --pid` without
/// `--mount-proc`, grace-init not PID 1), the /proc walk cannot find descendants; grace-init must
/// still terminate the command's process group rather than signal pid numbers of strangers.
#[test]
fn leftovers_are_terminated_without_a_proc_of_our_own_namespace() {
    if !supported(Mode::Pid1) {
        return;
    }
    let marker = format!("31.{}", std::process::id());
    let script = format!(
        "sleep .1; {} -v --cleanup-timeout 1s sh -c 'sleep {marker} & sleep .3; exit 3'",
        grace_init_bin().display()
    );
    let out = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr:\n{stderr}");
    assert!(
        stderr.contains("no /proc of this PID namespace"),
        "stderr:\n{stderr}"
    );
    let left = wait_until(Duration::from_secs(5), || {
        let found = std::process::Command::new("pgrep")
            .args(["-f", &format!("sleep {marker}")])
            .output()
            .expect("run pgrep");
        found.stdout.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "the leftover `sleep {marker}` survived grace-init; stderr:\n{stderr}"
    );
}
