//! Usage errors found in review: non-UTF-8 values, duplicate or reserved `--rewrite` rules.
//! Each is exit 2 with one line naming what is wrong, then the usage hint.
mod common;

use common::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fn assert_usage_error(err: &str, e: Exit, what: &str, names: &[&str]) {
    assert_eq!(e.code, Some(2), "{what}: {e:?}; stderr:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let first = lines.first().copied().unwrap_or("");
    assert!(
        first.starts_with("grace-init: "),
        "{what}: first line `{first}` lacks `grace-init: `"
    );
    // Signal names may be shown normalized (`SIGTERM:SIGHUP` for `TERM:hup`).
    let plain = first.to_uppercase().replace("SIG", "");
    assert!(
        names
            .iter()
            .any(|n| first.contains(n) || plain.contains(&n.to_uppercase().replace("SIG", ""))),
        "{what}: `{first}` names none of {names:?}"
    );
    assert!(
        lines.len() <= 2 && lines.iter().all(|l| l.starts_with("grace-init: ")),
        "{what}: more than the error line and the usage hint:\n{err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn non_utf8_pre_stop_value_names_the_option() {
    let args = [
        OsString::from("--pre-stop"),
        OsString::from_vec(b"sh -c 'exit \xff'".to_vec()),
        OsString::from("true"),
    ];
    let (e, _, err) = run(Mode::Subreaper, &args);
    assert_usage_error(&err, e, "--pre-stop non-UTF-8", &["--pre-stop"]);
}

#[test]
fn non_utf8_stop_delay_variable_names_the_variable() {
    let dir = TestDir::new("non-utf8-env");
    let mut init = Init::start_with(Mode::Subreaper, &dir, &[] as &[&str], &["true"], |c| {
        c.env(
            "GRACE_INIT_STOP_DELAY",
            OsString::from_vec(b"1\xffs".to_vec()),
        );
    });
    let e = init.wait(T);
    assert_usage_error(
        &init.stderr(),
        e,
        "GRACE_INIT_STOP_DELAY non-UTF-8",
        &["GRACE_INIT_STOP_DELAY", "--stop-delay"],
    );
}

#[test]
fn duplicate_rewrite_rules_for_one_signal_are_a_usage_error_naming_the_second() {
    let (e, _, err) = run(
        Mode::Subreaper,
        &["-r", "TERM:QUIT", "--rewrite", "SIGTERM:HUP", "true"],
    );
    assert_usage_error(&err, e, "duplicate --rewrite", &["TERM:HUP"]);
    let (e, _, err) = run_env(
        Mode::Subreaper,
        &["true"],
        &[("GRACE_INIT_REWRITE", "USR1:USR2,usr1:HUP")],
    );
    assert_usage_error(&err, e, "duplicate in GRACE_INIT_REWRITE", &["usr1:HUP"]);
}

#[test]
fn rewrite_to_signals_32_and_33_reserved_by_glibc_is_a_usage_error() {
    for rule in ["TERM:32", "TERM:33"] {
        let (e, _, err) = run(Mode::Subreaper, &["--rewrite", rule, "true"]);
        assert_usage_error(&err, e, rule, &[rule]);
    }
}
