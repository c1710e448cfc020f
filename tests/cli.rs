//! Command line: usage errors (exit 2, one line naming the value, no panic), --help, --version,
//! option parsing that stops at the command.
mod common;

use common::*;

fn assert_usage_error(args: &[&str], needle: &str) {
    let (e, out, err) = run(Mode::Subreaper, args);
    assert_eq!(e.code, Some(2), "{args:?}: {e:?}; stderr:\n{err}");
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with("grace-init: "),
        "{args:?}: first stderr line `{first}` lacks `grace-init: `"
    );
    assert!(
        first.contains(needle),
        "{args:?}: first stderr line `{first}` does not name `{needle}`"
    );
    assert!(
        err.lines().filter(|l| !l.trim().is_empty()).count() >= 2,
        "{args:?}: no usage hint line:\n{err}"
    );
    assert!(
        !err.contains("panicked") && !out.contains("panicked"),
        "{args:?}: panic:\n{err}"
    );
}

#[test]
fn bad_inputs_exit_2_naming_the_value() {
    assert_usage_error(&["-r", "FOO:TERM", "true"], "FOO");
    assert_usage_error(&["--rewrite", "TERM:", "true"], "TERM:");
    assert_usage_error(&["-r", "99999:TERM", "true"], "99999");
    assert_usage_error(&["-r", "RTMAX+1:TERM", "true"], "RTMAX+1");
    assert_usage_error(&["--remap-exit", "300:0", "true"], "300");
    assert_usage_error(&["--remap-exit", "1:256", "true"], "256");
    assert_usage_error(&["--stop-delay", "abc", "true"], "abc");
    assert_usage_error(&["--stop-delay", "-5s", "true"], "-5s");
    assert_usage_error(&["--stop-delay=-5s", "true"], "-5s");
    assert_usage_error(&["--grace-period", "10x", "true"], "10x");
    assert_usage_error(&["--stop-signal", "NOPE", "true"], "NOPE");
}

#[test]
fn bad_env_values_exit_2() {
    let (e, _, err) = run_env(
        Mode::Subreaper,
        &["true"],
        &[("GRACE_INIT_REWRITE", "FOO:TERM")],
    );
    assert_eq!(e.code, Some(2), "{err}");
    assert!(err.lines().next().unwrap_or("").contains("FOO"), "{err}");
    let (e, _, err) = run_env(
        Mode::Subreaper,
        &["true"],
        &[("GRACE_INIT_STOP_DELAY", "abc")],
    );
    assert_eq!(e.code, Some(2), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn no_command_exits_2() {
    let (e, out, err) = run(Mode::Subreaper, &[] as &[&str]);
    assert_eq!(e.code, Some(2), "{err}");
    assert!(err.starts_with("grace-init: "), "{err}");
    assert!(err.to_lowercase().contains("command"), "{err}");
    assert!(!err.contains("panicked") && out.is_empty());
    let (e, _, err) = run(Mode::Subreaper, &["-v", "--"]);
    assert_eq!(e.code, Some(2), "{err}");
}

#[test]
fn help_mentions_every_option() {
    let (e, out, err) = run(Mode::Subreaper, &["--help"]);
    assert_eq!(e.code, Some(0), "{err}");
    let text = format!("{out}{err}");
    for opt in [
        "--single-child",
        "--rewrite",
        "-r",
        "--remap-exit",
        "--verbose",
        "--quiet",
        "--stop-signal",
        "--stop-delay",
        "--pre-stop",
        "--grace-period",
        "--kill-margin",
        "--cleanup-timeout",
        "--help",
        "--version",
    ] {
        assert!(text.contains(opt), "--help does not mention {opt}:\n{text}");
    }
}

#[test]
fn version_prints_version() {
    let (e, out, err) = run(Mode::Subreaper, &["--version"]);
    assert_eq!(e.code, Some(0), "{err}");
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "stdout: {out}");
}

#[test]
fn options_stop_at_command_without_double_dash() {
    // The command's own flags are not eaten: $# counts 3 arguments.
    let (e, _, err) = run(
        Mode::Subreaper,
        &["/bin/sh", "-c", "exit $#", "sh", "-v", "-q", "--help"],
    );
    assert_eq!(e.code, Some(3), "{err}");
    let (e, _, err) = run(Mode::Subreaper, &["-q", "--", "/bin/sh", "-c", "exit 4"]);
    assert_eq!(e.code, Some(4), "{err}");
}

#[test]
fn valid_durations_are_accepted() {
    let p = probe();
    for args in [
        vec!["--stop-delay", "500ms"],
        vec!["--stop-delay", "30"],
        vec!["--cleanup-timeout", "1m30s"],
        vec![
            "--grace-period",
            "1m30s",
            "--kill-margin",
            "5s",
            "--stop-delay",
            "1m",
        ],
        vec!["--stop-signal", "sigusr1"],
    ] {
        let mut a = args.clone();
        a.extend([p.as_str(), "exit", "9"]);
        let (e, _, err) = run(Mode::Subreaper, &a);
        assert_eq!(e.code, Some(9), "{args:?} rejected: {err}");
    }
}
