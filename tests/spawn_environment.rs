//! What grace-init and the processes it starts get from the environment it was started in:
//! an ignored SIGCHLD, socket activation variables, a start directory that went away, a signal
//! pending at exec, scripts without `#!`, GRACE_INIT_* variables, exit-code remaps of spawn
//! failures.
#[macro_use]
mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap()
}

/// Started with SIGCHLD ignored (the kernel then reaps children itself and sends no SIGCHLD),
/// grace-init must still learn the command's status, and give the command SIGCHLD ignored.
fn sigchld_ignored(mode: Mode) {
    let dir = TestDir::new("chld-ign");
    let out = dir.file("status");
    let wrapper = [
        probe(),
        "exec-with".into(),
        "--ignore".into(),
        "17".into(),
        "--".into(),
    ];
    let args = [
        probe(),
        "status".into(),
        out.display().to_string(),
        "--exit-code".into(),
        "3".into(),
    ];
    let mut init = Init::start_with(mode, &dir, &wrapper, &args, |_| {});
    let e = init.wait(Duration::from_secs(10));
    assert_eq!(
        e.code,
        Some(3),
        "{e:?}: started with SIGCHLD ignored, grace-init did not exit with the command's 3; \
         stderr:\n{}",
        init.stderr()
    );
    let kvs = read_kv(&out);
    let ign = hex(kv(&kvs, "start_ign"));
    assert!(
        ign & sigmask_of(&[libc::SIGCHLD]) != 0,
        "the command did not get SIGCHLD ignored as grace-init was started: ignored {ign:016x}"
    );
}
both_modes!(
    started_with_sigchld_ignored_exits_with_command_code_and_passes_the_disposition_on,
    sigchld_ignored
);

/// Socket activation: LISTEN_PID naming grace-init is rewritten to the command's own pid, the
/// passed descriptor works in the command, and the pre-stop hook gets no LISTEN_* at all.
fn socket_activation(mode: Mode) {
    let dir = TestDir::new("listen");
    let passed = dir.file("passed");
    std::fs::write(&passed, "from-fd-3\n").unwrap();
    let out = dir.s("cmd-out");
    let hook_env = dir.s("hook-env");
    let ready = dir.file("cmd-out.ready");
    let wrapper = [
        "sh".to_string(),
        "-c".into(),
        format!(
            "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web; exec \"$0\" \"$@\" 3< '{}'",
            passed.display()
        ),
    ];
    let command = format!(
        "echo \"pid=$$ listen_pid=$LISTEN_PID fds=$LISTEN_FDS names=$LISTEN_FDNAMES\" > {out}; \
         cat <&3 >> {out}; touch {r}; exec sleep 30",
        r = ready.display()
    );
    let hook = format!("sh -c 'env > {hook_env}'");
    let args = s(&["--pre-stop", &hook, "sh", "-c", &command]);
    let mut init = Init::start_with(mode, &dir, &wrapper, &args, |_| {});
    assert!(
        wait_file(&ready, T),
        "command never ran; stderr:\n{}",
        init.stderr()
    );
    let got = std::fs::read_to_string(&out).unwrap();
    let first = got.lines().next().unwrap_or("");
    let pid = first
        .split_whitespace()
        .next()
        .and_then(|w| w.strip_prefix("pid="))
        .unwrap();
    assert_eq!(
        first,
        format!("pid={pid} listen_pid={pid} fds=1 names=web"),
        "the command must see LISTEN_PID = its own pid, LISTEN_FDS and LISTEN_FDNAMES unchanged"
    );
    assert!(
        got.contains("from-fd-3"),
        "the passed fd 3 was not usable by the command: {got:?}"
    );
    init.signal(libc::SIGTERM);
    let e = init.wait(T);
    assert_eq!(e.code, Some(143), "{e:?}; stderr:\n{}", init.stderr());
    let env = std::fs::read_to_string(&hook_env).expect("the pre-stop hook did not run");
    let listen: Vec<&str> = env.lines().filter(|l| l.starts_with("LISTEN_")).collect();
    assert!(
        listen.is_empty(),
        "the pre-stop hook got socket activation variables: {listen:?}"
    );
}
both_modes!(
    socket_activation_command_sees_its_own_listen_pid_and_fd_hook_sees_no_listen_vars,
    socket_activation
);

/// The directory grace-init was started in is removed while it runs: the pre-stop hook runs in
/// `/` and the stop still waits for it before forwarding.
fn hook_in_removed_directory(mode: Mode) {
    let dir = TestDir::new("gone-dir");
    let start_dir = dir.file("start-here");
    std::fs::create_dir(&start_dir).unwrap();
    let hook_out = dir.s("hook-pwd");
    let hook = format!("sh -c 'sleep 1; pwd > {hook_out}'");
    let rec = Rec::new(&dir, "rec");
    let args = s(&[
        "--pre-stop",
        &hook,
        &probe(),
        "record",
        &rec.arg(),
        "--exit-on",
        "15",
    ]);
    let sd = start_dir.clone();
    let mut init = Init::start_with(mode, &dir, &[] as &[&str], &args, move |c| {
        c.current_dir(sd);
    });
    rec.wait_ready(T);
    std::fs::remove_dir(&start_dir).unwrap();
    let t0 = mono_ns();
    init.signal(libc::SIGTERM);
    let term = rec
        .wait_sig(libc::SIGTERM, T)
        .unwrap_or_else(|| panic!("the command never got SIGTERM; stderr:\n{}", init.stderr()));
    let pwd = std::fs::read_to_string(&hook_out).unwrap_or_else(|_| {
        panic!(
            "the pre-stop hook did not run (start directory removed); stderr:\n{}",
            init.stderr()
        )
    });
    assert_eq!(pwd.trim(), "/", "the hook did not run in /");
    assert!(
        secs(term - t0) >= 0.9,
        "SIGTERM forwarded {:.3}s after the stop, without waiting for the hook",
        secs(term - t0)
    );
    assert_eq!(init.wait_code(T), 0, "stderr:\n{}", init.stderr());
}
both_modes!(
    pre_stop_hook_runs_in_root_when_start_directory_was_removed,
    hook_in_removed_directory
);

/// Spawn failure messages say which step failed.
#[test]
fn spawn_failure_message_names_the_exec_step() {
    let (e, _, err) = run(Mode::Subreaper, &["/nonexistent/grace-init-cmd"]);
    assert_eq!(e.code, Some(127), "{e:?}; stderr:\n{err}");
    assert!(
        err.contains("cannot run '/nonexistent/grace-init-cmd': exec: No such file or directory"),
        "the message does not name the failing step:\n{err}"
    );
}

/// A signal pending at exec, sent by the process that then exec'd grace-init (so with
/// grace-init's own pid as sender), is a real request and must be forwarded.
fn pending_at_exec(mode: Mode) {
    let dir = TestDir::new("pending-at-exec");
    let wrapper = [
        probe(),
        "exec-with".into(),
        "--block".into(),
        "10".into(),
        "--raise".into(),
        "10".into(),
        "--".into(),
    ];
    // The command unblocks everything (exec-with with an empty list) and sleeps: the forwarded
    // SIGUSR1 kills it.
    let args = [
        probe(),
        "exec-with".into(),
        "--".into(),
        "sleep".into(),
        "5".into(),
    ];
    let started = Instant::now();
    let mut init = Init::start_with(mode, &dir, &wrapper, &args, |_| {});
    let e = init.wait(T);
    assert_eq!(
        e.code,
        Some(128 + libc::SIGUSR1),
        "{e:?}: the SIGUSR1 pending at exec was not forwarded; stderr:\n{}",
        init.stderr()
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}
both_modes!(
    signal_pending_at_exec_from_the_execing_process_is_forwarded,
    pending_at_exec
);

/// `--remap-exit` applies to the codes of a command that cannot be run too.
fn remap_spawn_failures(mode: Mode) {
    let dir = TestDir::new("remap-spawn");
    let not_exec = dir.file("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (e, _, err) = run(
        mode,
        &["--remap-exit", "127:0", "/nonexistent/grace-init-cmd"],
    );
    assert_eq!(e.code, Some(0), "127:0 not applied: {e:?}; stderr:\n{err}");
    let (e, _, err) = run(
        mode,
        &["--remap-exit", "126:3", &not_exec.display().to_string()],
    );
    assert_eq!(e.code, Some(3), "126:3 not applied: {e:?}; stderr:\n{err}");
}
both_modes!(
    remap_exit_applies_to_spawn_failure_codes,
    remap_spawn_failures
);

/// An executable script without `#!` runs through /bin/sh, as POSIX execvp does.
fn script_without_shebang(mode: Mode) {
    let dir = TestDir::new("no-shebang");
    let script = dir.file("script");
    std::fs::write(&script, "echo script-ran-$((40+2))\nexit 5\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (e, out, err) = run(mode, &[script.display().to_string()]);
    assert_eq!(e.code, Some(5), "{e:?}; stderr:\n{err}");
    assert_eq!(out, "script-ran-42\n", "stderr:\n{err}");
}
both_modes!(
    script_without_shebang_runs_through_bin_sh_with_its_exit_code,
    script_without_shebang
);

/// grace-init's own configuration variables are not passed on (a nested grace-init would take
/// them for its own); other variables are.
fn grace_init_vars_not_passed(mode: Mode) {
    let dir = TestDir::new("env-strip");
    let cmd_env = dir.s("cmd-env");
    let hook_env = dir.s("hook-env");
    let ready = dir.s("cmd-env.ready");
    let hook = format!("sh -c 'env > {hook_env}'");
    let command = format!("env > {cmd_env}; touch {ready}; exec sleep 30");
    let mut init = Init::start_with_env(
        mode,
        &dir,
        &["sh", "-c", &command],
        &[
            ("GRACE_INIT_PRE_STOP", &hook),
            ("GRACE_INIT_STOP_DELAY", "100ms"),
            ("GRACE_INIT_VERBOSE", "1"),
            ("GRACE_INIT_CLEANUP_TIMEOUT", "3s"),
            ("SOME_APP_SETTING", "kept-42"),
        ],
    );
    assert!(
        wait_file(std::path::Path::new(&ready), T),
        "command never ran; stderr:\n{}",
        init.stderr()
    );
    init.signal(libc::SIGTERM);
    let e = init.wait(T);
    assert_eq!(e.code, Some(143), "{e:?}; stderr:\n{}", init.stderr());
    let hook_vars = std::fs::read_to_string(&hook_env).unwrap_or_else(|_| {
        panic!(
            "the hook from GRACE_INIT_PRE_STOP did not run; stderr:\n{}",
            init.stderr()
        )
    });
    for (who, vars) in [
        ("command", std::fs::read_to_string(&cmd_env).unwrap()),
        ("pre-stop hook", hook_vars),
    ] {
        for name in [
            "GRACE_INIT_PRE_STOP=",
            "GRACE_INIT_STOP_DELAY=",
            "GRACE_INIT_VERBOSE=",
            "GRACE_INIT_CLEANUP_TIMEOUT=",
        ] {
            let leaked: Vec<&str> = vars.lines().filter(|l| l.starts_with(name)).collect();
            assert!(leaked.is_empty(), "the {who} got {leaked:?}");
        }
        assert!(
            vars.lines().any(|l| l == "SOME_APP_SETTING=kept-42"),
            "the {who} lost the ordinary variable SOME_APP_SETTING"
        );
    }
}
both_modes!(
    grace_init_variables_do_not_reach_command_or_hook_others_do,
    grace_init_vars_not_passed
);
