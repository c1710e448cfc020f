//! A pre-stop hook that hangs is bounded (`--pre-stop-timeout`, by default half of what the
//! grace period leaves before the kill): the hook's group is killed and the stop signal is
//! forwarded, so the command always gets the stop signal before any SIGKILL.
#[macro_use]
mod common;

use common::*;
use std::time::Duration;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// grace-init OPTS --pre-stop HOOK probe record REC --exit-on 15; SIGTERM; returns the seconds
/// from the stop signal to the command's SIGTERM (panics if it never came).
fn hanging_hook(
    mode: Mode,
    dir: &TestDir,
    opts: &[&str],
    env: &[(&str, &str)],
    hook: &str,
) -> (Init, f64) {
    let rec = Rec::new(dir, "rec");
    let mut args = s(opts);
    args.extend(s(&["--pre-stop", hook]));
    args.extend([probe(), "record".into(), rec.arg()]);
    args.extend(s(&["--exit-on", "15"]));
    let mut init = Init::start_with_env(mode, dir, &args, env);
    if wait_until(T, || {
        (rec.path.with_extension("ready").exists() || init.try_exit().is_some()).then_some(())
    })
    .is_some()
    {
        if let Some(e) = init.try_exit() {
            panic!(
                "grace-init exited at once: {e:?}; stderr:\n{}",
                init.stderr()
            );
        }
    }
    rec.wait_ready(T);
    let t0 = mono_ns();
    init.signal(libc::SIGTERM);
    let Some(term) = rec.wait_sig(libc::SIGTERM, Duration::from_secs(10)) else {
        panic!(
            "the command never got SIGTERM while the pre-stop hook hung (grace-init: {:?}); \
             got {:?}; stderr:\n{}",
            init.try_exit(),
            rec.sigs(),
            init.stderr()
        );
    };
    let e = init.wait(T);
    assert_eq!(
        e.code,
        Some(0),
        "{e:?}: the command (exits 0 on SIGTERM) was killed; stderr:\n{}",
        init.stderr()
    );
    assert_eq!(
        rec.sigs(),
        vec![libc::SIGTERM],
        "stderr:\n{}",
        init.stderr()
    );
    (init, secs(term - t0))
}

/// The repro: --grace-period 3s --kill-margin 1s leaves 2 s; the hook gets half (1 s).
fn default_timeout(mode: Mode) {
    let dir = TestDir::new("hook-hangs");
    let (init, d) = hanging_hook(
        mode,
        &dir,
        &["--grace-period", "3s", "--kill-margin", "1s"],
        &[],
        "sh -c 'sleep 100'",
    );
    assert!(
        (0.8..1.8).contains(&d),
        "SIGTERM came {d:.3}s after the stop, not about 1 s (half of 3s - 1s); stderr:\n{}",
        init.stderr()
    );
    assert!(
        init.stderr().contains("pre-stop hook"),
        "no warning about the pre-stop hook:\n{}",
        init.stderr()
    );
}
both_modes!(
    hanging_pre_stop_hook_is_cut_at_half_the_grace_period_and_the_command_gets_sigterm,
    default_timeout
);

/// An explicit `--pre-stop-timeout 500ms` (no grace period): the hook's whole process group is
/// killed and the stop signal forwarded after 0.5 s.
fn explicit_timeout(mode: Mode) {
    let dir = TestDir::new("hook-timeout");
    let pids = dir.s("hook-pids");
    let hook = format!("sh -c 'sleep 100 & echo $$ $! > {pids}; wait'");
    let (init, d) = hanging_hook(
        mode,
        &dir,
        &["-v", "--pre-stop-timeout", "500ms"],
        &[],
        &hook,
    );
    assert!(
        (0.4..2.0).contains(&d),
        "SIGTERM came {d:.3}s after the stop with --pre-stop-timeout 500ms; stderr:\n{}",
        init.stderr()
    );
    if mode == Mode::Subreaper {
        let pids = std::fs::read_to_string(&pids).unwrap();
        for pid in pids.split_whitespace().map(|p| p.parse::<i32>().unwrap()) {
            assert!(
                !alive(pid),
                "hook process {pid} survived the pre-stop timeout: {:?}",
                stat(pid)
            );
        }
    }
}
both_modes!(
    pre_stop_timeout_kills_the_hooks_group_and_forwards_the_stop_signal,
    explicit_timeout
);

#[test]
fn pre_stop_timeout_from_env() {
    let dir = TestDir::new("hook-timeout-env");
    let (init, d) = hanging_hook(
        Mode::Subreaper,
        &dir,
        &[],
        &[("GRACE_INIT_PRE_STOP_TIMEOUT", "700ms")],
        "sh -c 'sleep 100'",
    );
    assert!(
        (0.6..2.2).contains(&d),
        "SIGTERM came {d:.3}s after the stop with GRACE_INIT_PRE_STOP_TIMEOUT=700ms; stderr:\n{}",
        init.stderr()
    );
}

/// A timeout that leaves no time before the kill is a usage error; one that fits is accepted.
#[test]
fn pre_stop_timeout_not_shorter_than_grace_period_minus_kill_margin_is_a_usage_error() {
    let base = ["--grace-period", "3s", "--kill-margin", "1s"];
    let (e, _, err) = run(
        Mode::Subreaper,
        &[&base[..], &["--pre-stop-timeout", "1500ms", "true"]].concat(),
    );
    assert_eq!(e.code, Some(0), "1500ms fits in 3s - 1s: {e:?}\n{err}");
    for value in ["2s", "5s"] {
        let (e, _, err) = run(
            Mode::Subreaper,
            &[&base[..], &["--pre-stop-timeout", value, "true"]].concat(),
        );
        assert_eq!(e.code, Some(2), "--pre-stop-timeout {value}: {e:?}\n{err}");
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with("grace-init: ")
                && first.contains("pre-stop-timeout")
                && first.contains(value),
            "--pre-stop-timeout {value}: `{first}` does not name the option and value"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
