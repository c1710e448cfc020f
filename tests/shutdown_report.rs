//! What grace-init tells the operator: the shutdown report in the termination-message file,
//! JSON log lines (checked with a real JSON parser), and the plan stated at start.
#[macro_use]
mod common;

use common::*;

fn lines_as_json(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect()
}

#[test]
fn json_lines_are_objects_with_time_level_event_and_escaped_values() {
    let name = "no \"such\"\ncommand\u{1b}[2J\\";
    let (exit, stdout, stderr) = run(
        Mode::Subreaper,
        &["--log-format", "json", "-vv", "--remap-exit", "127:9", name],
    );
    assert_eq!(exit.code, Some(9), "{stderr}");
    assert_eq!(stdout, "");
    let objects = lines_as_json(&stderr);
    assert!(objects.len() >= 2, "{stderr}");
    for object in &objects {
        for member in ["time", "uptime", "level", "event"] {
            assert!(!object[member].is_null(), "{member} missing: {object}");
        }
        assert!(object["time"].as_str().unwrap().ends_with('Z'), "{object}");
    }
    let fatal = objects
        .iter()
        .find(|o| o["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR line: {stderr}"));
    assert_eq!(
        fatal["event"].as_str().unwrap(),
        format!("cannot run '{name}': exec: No such file or directory")
    );
}

fn json_stop(mode: Mode) {
    let dir = TestDir::new("json-stop");
    let rec = Rec::new(&dir, "rec");
    let mut init = Init::start(
        mode,
        &dir,
        &[
            "--log-format".to_string(),
            "json".into(),
            "-v".into(),
            "--stop-delay".into(),
            "300ms".into(),
            probe(),
            "record".into(),
            rec.arg(),
            "--exit-on".into(),
            "15".into(),
            "--exit-code".into(),
            "0".into(),
        ],
    );
    rec.wait_ready(T);
    init.signal(libc::SIGTERM);
    assert_eq!(init.wait_code(T), 0, "{}", init.stderr());
    let objects = lines_as_json(&init.stderr());
    let forwarded = objects
        .iter()
        .find(|o| o["event"] == "stop delay over: forwarded")
        .unwrap_or_else(|| panic!("{}", init.stderr()));
    assert_eq!(forwarded["signal"], "SIGTERM");
    assert!(forwarded["to"].as_str().unwrap().starts_with("group:"));
    let exiting = objects.iter().find(|o| o["event"] == "exiting").unwrap();
    assert_eq!(exiting["code"], 0, "numbers stay numbers: {exiting}");
}
both_modes!(json_lines_describe_a_stop_with_typed_members, json_stop);

fn plan_line(args: &[&str]) -> String {
    let mut all = vec!["-v"];
    all.extend_from_slice(args);
    all.push("true");
    let (exit, _, stderr) = run(Mode::Subreaper, &all);
    assert_eq!(exit.code, Some(0), "{stderr}");
    stderr
}

#[test]
fn the_plan_at_start_states_the_timeline_and_warns_only_when_risky() {
    let stderr = plan_line(&[
        "--stop-signal",
        "TERM",
        "-r",
        "TERM:QUIT",
        "--stop-delay",
        "5s",
        "--pre-stop",
        "sleep 1",
        "--grace-period",
        "30s",
    ]);
    let plan = stderr
        .lines()
        .find(|l| l.contains("INFO shutdown plan"))
        .unwrap_or_else(|| panic!("{stderr}"));
    for field in [
        "stop_signal=SIGTERM",
        "forwarded=SIGQUIT",
        "stop_delay=5s",
        "pre_stop=\"sleep 1\"",
        "pre_stop_timeout=14s",
        "kill_after_stop=28s",
        "cleanup_timeout=2s",
    ] {
        assert!(plan.contains(field), "{field} missing: {plan}");
    }
    assert!(!stderr.contains("WARN"), "a safe plan warned:\n{stderr}");

    let stderr = plan_line(&["--stop-delay", "5s"]);
    assert!(
        stderr.contains("WARN") && stderr.contains("--grace-period is not set"),
        "{stderr}"
    );
    let stderr = plan_line(&["--grace-period", "10s", "--kill-margin", "500ms"]);
    assert!(
        stderr.contains("WARN") && stderr.contains("kill margin under 1s"),
        "{stderr}"
    );
    let (_, _, quiet) = run(Mode::Subreaper, &["true"]);
    assert!(
        !quiet.contains("shutdown plan"),
        "plan shown without -v: {quiet}"
    );
}

fn report_after_stop(mode: Mode) {
    let dir = TestDir::new("report");
    let file = dir.file("termination-log");
    std::fs::write(&file, "").unwrap();
    let rec = Rec::new(&dir, "rec");
    let mut init = Init::start_with_env(
        mode,
        &dir,
        &[
            "--stop-delay".to_string(),
            "300ms".into(),
            "--pre-stop".into(),
            "true".into(),
            probe(),
            "record".into(),
            rec.arg(),
            "--exit-on".into(),
            "15".into(),
            "--exit-code".into(),
            "143".into(),
        ],
        &[("GRACE_INIT_TERMINATION_LOG", &file.display().to_string())],
    );
    rec.wait_ready(T);
    init.signal(libc::SIGTERM);
    assert_eq!(init.wait_code(T), 143, "{}", init.stderr());
    let report = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "grace-init shutdown report", "{report}");
    assert!(lines[1].starts_with("+0s SIGTERM received"), "{report}");
    for needle in [
        "pre-stop hook exited with 0",
        "hold over: forwarded SIGTERM to group:",
        "command exited with 143",
    ] {
        assert!(report.contains(needle), "{needle:?} missing:\n{report}");
    }
    assert_eq!(lines.last(), Some(&"exit code 143"), "{report}");
}
both_modes!(
    shutdown_report_is_written_to_the_termination_log,
    report_after_stop
);

#[test]
fn the_report_goes_only_into_an_existing_empty_file_and_never_when_turned_off() {
    let dir = TestDir::new("report-rules");
    let written_by_app = dir.file("app");
    std::fs::write(&written_by_app, "the app's own words\n").unwrap();
    let (exit, _, stderr) = run(
        Mode::Subreaper,
        &["--termination-log", &dir.s("app"), "sh", "-c", "exit 3"],
    );
    assert_eq!(exit.code, Some(3), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&written_by_app).unwrap(),
        "the app's own words\n"
    );

    let missing = dir.file("missing");
    let (exit, _, stderr) = run(
        Mode::Subreaper,
        &["--termination-log", &dir.s("missing"), "true"],
    );
    assert_eq!(exit.code, Some(0));
    assert!(!missing.exists(), "created a file that was not there");
    assert!(
        stderr.contains("cannot write the shutdown report") && stderr.contains("no such file"),
        "a named file that is missing deserves a warning: {stderr}"
    );

    let off = dir.file("off");
    std::fs::write(&off, "").unwrap();
    // `none` on the command line beats the variable naming a real, empty file.
    let (exit, _, _) = run_env(
        Mode::Subreaper,
        &["--termination-log", "none", "true"],
        &[("GRACE_INIT_TERMINATION_LOG", &dir.s("off"))],
    );
    assert_eq!(exit.code, Some(0));
    assert_eq!(std::fs::read_to_string(&off).unwrap(), "");
    let (exit, _, _) = run_env(
        Mode::Subreaper,
        &["true"],
        &[("GRACE_INIT_TERMINATION_LOG", &dir.s("off"))],
    );
    assert_eq!(exit.code, Some(0));
    assert!(
        std::fs::read_to_string(&off)
            .unwrap()
            .ends_with("exit code 0\n"),
        "the variable alone names the file"
    );
}

#[test]
fn a_command_that_cannot_start_is_reported_too() {
    let dir = TestDir::new("report-spawn");
    let file = dir.file("termination-log");
    std::fs::write(&file, "").unwrap();
    let (exit, _, stderr) = run(
        Mode::Subreaper,
        &[
            "--termination-log",
            &dir.s("termination-log"),
            "/nonexistent/app",
        ],
    );
    assert_eq!(exit.code, Some(127), "{stderr}");
    let report = std::fs::read_to_string(&file).unwrap();
    assert!(
        report.contains("cannot run '/nonexistent/app': exec: No such file or directory"),
        "{report}"
    );
    assert!(report.ends_with("exit code 127\n"), "{report}");
}
