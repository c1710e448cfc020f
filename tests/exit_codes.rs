//! Exit status: pass-through, 128+N, --remap-exit (flag and env), 126/127 spawn failures.
#[macro_use]
mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;

fn codes_pass_through(mode: Mode) {
    for code in [0, 1, 2, 42, 127, 128, 200, 255] {
        let (e, _, err) = run(mode, &[probe(), "exit".into(), code.to_string()]);
        assert_eq!(e.code, Some(code), "{e:?}; stderr:\n{err}");
    }
}
both_modes!(exit_code_0_to_255_passes_through, codes_pass_through);

fn killed_by_signal(mode: Mode) {
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGABRT,
        libc::SIGKILL,
        libc::SIGSEGV,
        libc::SIGTERM,
    ] {
        let (e, _, err) = run(mode, &[probe(), "kill-self".into(), sig.to_string()]);
        assert_eq!(
            e.code,
            Some(128 + sig),
            "child killed by {sig}: {e:?}; stderr:\n{err}"
        );
    }
}
both_modes!(killed_by_signal_n_exits_128_plus_n, killed_by_signal);

#[test]
fn remap_exit_flag() {
    let p = probe();
    let (e, _, err) = run(
        Mode::Subreaper,
        &["--remap-exit", "143:0", &p, "kill-self", "15"],
    );
    assert_eq!(e.code, Some(0), "{err}");
    let (e, _, err) = run(
        Mode::Subreaper,
        &[
            "--remap-exit",
            "3:4",
            "--remap-exit",
            "5:6",
            &p,
            "exit",
            "5",
        ],
    );
    assert_eq!(e.code, Some(6), "{err}");
    let (e, _, err) = run(Mode::Subreaper, &["--remap-exit", "143:0", &p, "exit", "7"]);
    assert_eq!(e.code, Some(7), "unmapped code must pass: {err}");
}

#[test]
fn remap_exit_env_and_flag_wins() {
    let p = probe();
    let (e, _, err) = run_env(
        Mode::Subreaper,
        &[&p, "kill-self", "15"],
        &[("GRACE_INIT_REMAP_EXIT", "143:0")],
    );
    assert_eq!(e.code, Some(0), "{err}");
    let (e, _, err) = run_env(
        Mode::Subreaper,
        &["--remap-exit", "143:1", &p, "kill-self", "15"],
        &[("GRACE_INIT_REMAP_EXIT", "143:0")],
    );
    assert_eq!(e.code, Some(1), "{err}");
}

fn assert_cannot_run(mode: Mode, cmd: &str, want: i32) {
    let (e, out, err) = run(mode, &[cmd]);
    assert_eq!(e.code, Some(want), "{cmd}: {e:?}; stderr:\n{err}");
    assert!(
        err.contains(&format!("cannot run '{cmd}'")),
        "{cmd}: stderr lacks `cannot run '{cmd}'`:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.is_empty(), "stdout: {out}");
}

fn spawn_failures(mode: Mode) {
    let dir = TestDir::new("spawnfail");
    assert_cannot_run(mode, "/nonexistent/grace-init-test-cmd", 127);
    assert_cannot_run(mode, "grace-init-no-such-command-xyz", 127);
    let f = dir.file("not-executable");
    std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_cannot_run(mode, &f.display().to_string(), 126);
    assert_cannot_run(mode, &dir.path.display().to_string(), 126);
}
both_modes!(missing_127_not_executable_or_directory_126, spawn_failures);
