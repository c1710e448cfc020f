//! Once the command is reaped its pid (and process group id) may belong to anybody: grace-init
//! must never signal that number again, nor take a later child with that number for the command.
//! The number is handed to a stranger on purpose with /proc/sys/kernel/ns_last_pid inside a PID
//! namespace of the test's own (so no other process can take it first).
#[macro_use]
mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `sh -c script` as PID 1 of a new PID namespace (`--mount-proc` when `own_proc`), with
/// `GI` naming grace-init; returns (exit, stdout, stderr), killing it after `timeout`.
fn in_namespace(script: &str, own_proc: bool, timeout: Duration) -> (Exit, String, String) {
    let dir = TestDir::new("stale");
    let out = dir.file("out");
    let err = dir.file("err");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--kill-child"]);
    if own_proc {
        cmd.arg("--mount-proc");
    }
    cmd.args(["sh", "-c", script])
        .env("GI", grace_init_bin())
        .env("D", &dir.path)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str() {
            if k.starts_with("GRACE_INIT_") {
                cmd.env_remove(k);
            }
        }
    }
    let mut child = cmd.spawn().expect("spawn unshare");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Exit::from(st);
        }
        if start.elapsed() > timeout {
            let mut victims = descendants_of(child.id() as i32);
            victims.push(child.id() as i32);
            for p in victims {
                kill(p, libc::SIGKILL);
            }
            let _ = child.wait();
            panic!(
                "the namespace script did not end within {timeout:?}; stdout:\n{}\nstderr:\n{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        sleep_ms(10);
    };
    (
        status,
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    )
}

/// `key=value` from the script's output (the last one).
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

/// The shell part shared by both stranger tests: starts grace-init (not PID 1: `sh` is) as a
/// subreaper whose command leaves a TERM-ignoring `setsid sleep 30` behind and exits 0; once the
/// command is reaped, makes `setsid sleep 100` (a stranger: a child of PID 1, not of
/// grace-init) take the command's old pid, which is then also its process group id.
const STRANGER_TAKES_THE_COMMANDS_PID: &str = r#"
"$GI" -vv --cleanup-timeout "$CLEANUP" sh -c 'trap "" TERM; setsid sleep 30 & echo $! > "$D/left"; echo $$ > "$D/cmd"; exec sleep 0.3' 2> "$D/gi.err" &
gi=$!
while [ ! -s "$D/cmd" ] || [ ! -s "$D/left" ]; do sleep 0.02; done
cmd=$(cat "$D/cmd"); left=$(cat "$D/left")
# `kill -0` succeeds on a zombie: this waits until grace-init has reaped the command.
while kill -0 "$cmd" 2>/dev/null; do sleep 0.02; done
echo $((cmd - 1)) > /proc/sys/kernel/ns_last_pid
setsid sleep 100 &
stranger=$!
echo cmd=$cmd
echo stranger=$stranger
echo left=$left
"#;

/// Issue 8 §1a: group forwarding after the command was reaped used kill(-old pid).
#[test]
fn signal_after_command_reaped_reaches_leftover_never_stranger_with_recycled_pgid() {
    if !supported(Mode::Pid1) {
        return;
    }
    let script = format!(
        "CLEANUP=30s\n{STRANGER_TAKES_THE_COMMANDS_PID}\
         sleep 0.3\n\
         kill -USR1 $gi\n\
         i=0; while [ $i -lt 100 ] && [ -e /proc/$left ]; do sleep 0.05; i=$((i+1)); done\n\
         [ -e /proc/$left ] && echo left_alive=yes || echo left_alive=no\n\
         gone() {{ [ ! -e /proc/$1 ] || [ \"$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)\" = Z ]; }}\n\
         i=0; while [ $i -lt 100 ] && ! gone $gi; do sleep 0.05; i=$((i+1)); done\n\
         gone $gi && {{ wait $gi; echo gi_exit=$?; }} || echo gi_exit=running\n\
         kill -HUP $stranger 2>/dev/null; wait $stranger; echo stranger_status=$?\n\
         cat \"$D/gi.err\" >&2\n"
    );
    let (e, out, err) = in_namespace(&script, true, Duration::from_secs(30));
    assert_eq!(e.code, Some(0), "{e:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        field(&out, "stranger"),
        field(&out, "cmd"),
        "set-up: the stranger did not get the command's old pid\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(
        field(&out, "stranger_status"),
        Some("129"),
        "SIGUSR1 sent to grace-init after the command was reaped killed the stranger that now \
         holds the command's old pid as its process group\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(
        field(&out, "left_alive"),
        Some("no"),
        "the leftover descendant (own session) never got the SIGUSR1 sent to grace-init after \
         the command was reaped\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(
        field(&out, "gi_exit"),
        Some("0"),
        "grace-init did not exit with the command's 0 once the leftover was gone\n\
         stdout:\n{out}\nstderr:\n{err}"
    );
}

/// Issue 8 §1b: without a /proc of its own PID namespace the cleanup fell back to
/// kill(-command) after the command was gone, and SIGKILLed a recycled group.
#[test]
fn without_own_proc_cleanup_kill_never_hits_a_stranger_with_the_recycled_pgid() {
    if !supported(Mode::Pid1) {
        return;
    }
    // No --mount-proc: /proc is the parent namespace's, so grace-init cannot list its
    // descendants. The cleanup timeout (1.5 s) passes while the stranger holds the old pid.
    let script = format!(
        "CLEANUP=1500ms\n{STRANGER_TAKES_THE_COMMANDS_PID}\
         sleep 3\n\
         kill -HUP $stranger 2>/dev/null; wait $stranger; echo stranger_status=$?\n\
         cat \"$D/gi.err\" >&2\n"
    );
    let (e, out, err) = in_namespace(&script, false, Duration::from_secs(30));
    assert_eq!(e.code, Some(0), "{e:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        field(&out, "stranger"),
        field(&out, "cmd"),
        "set-up: the stranger did not get the command's old pid\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(
        field(&out, "stranger_status"),
        Some("129"),
        "the cleanup (TERM, then KILL after the timeout) reached the stranger holding the \
         command's old pid as its group\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        err.contains("cannot be found"),
        "no warning that the leftovers cannot be found without /proc:\n{err}"
    );
}

/// Issue 8 §1c, the repro as written: a leftover forks a process that gets pid 2 (the command's
/// old pid) after the command exited 7; grace-init SIGKILLs it at the cleanup timeout and reaps
/// it. That must not replace the command's status.
#[test]
fn recycled_command_pid_reaped_later_does_not_replace_the_exit_code() {
    if !supported(Mode::Pid1) {
        return;
    }
    let dir = TestDir::new("stale-status");
    let mut init = Init::start(
        Mode::Pid1,
        &dir,
        &[
            "-vv",
            "--cleanup-timeout",
            "1s",
            "sh",
            "-c",
            "trap '' TERM; setsid sh -c 'sleep 0.3; echo 1 > /proc/sys/kernel/ns_last_pid; sleep 100 & wait' & exit 7",
        ],
    );
    let e = init.wait(T);
    let err = init.stderr();
    assert!(
        err.contains("command exited with 7"),
        "set-up: the command did not exit 7:\n{err}"
    );
    assert_eq!(
        e.code,
        Some(7),
        "{e:?}: a recycled pid reaped later overwrote the command's status 7:\n{err}"
    );
}

/// After the command exited, a signal sent to grace-init goes to the processes it left behind
/// (as PID 1 with kill(-1), as a subreaper to each descendant), not to the command's old
/// process group: here the leftover left that group with setsid.
fn signal_after_exit_reaches_leftovers(mode: Mode) {
    let dir = TestDir::new("after-exit-signal");
    let rec = Rec::new(&dir, "rec");
    let mut init = Init::start(
        mode,
        &dir,
        &[
            "--cleanup-timeout".to_string(),
            "30s".into(),
            probe(),
            "record".into(),
            rec.arg(),
            "--exit-after-ms".into(),
            "300".into(),
            "--exit-code".into(),
            "5".into(),
            "--grand-args".into(),
            "--setsid --ignore 15 --exit-on 12 --exit-code 0".into(),
        ],
    );
    let grand = rec.grand();
    grand.wait_ready(T);
    let command = init.child_pid();
    assert!(
        wait_until(T, || (!exists(command)).then_some(())).is_some(),
        "the command did not exit"
    );
    sleep_ms(100);
    init.signal(libc::SIGUSR1);
    let got = grand.wait_sig(libc::SIGUSR1, Duration::from_secs(5));
    init.signal(libc::SIGUSR2);
    assert!(
        got.is_some(),
        "SIGUSR1 sent to grace-init after the command exited never reached the leftover; it \
         got {:?}; stderr:\n{}",
        grand.sigs(),
        init.stderr()
    );
    let e = init.wait(T);
    assert_eq!(e.code, Some(5), "{e:?}; stderr:\n{}", init.stderr());
}

both_modes!(
    signal_after_command_exit_reaches_leftovers_outside_its_group,
    signal_after_exit_reaches_leftovers
);

/// §1c as a subreaper (grace-init is not PID 1 of the namespace it runs in): a leftover's child
/// gets the command's old pid and is killed and reaped by grace-init at the cleanup timeout.
#[test]
fn recycled_command_pid_reaped_later_by_a_subreaper_does_not_replace_the_exit_code() {
    if !supported(Mode::Pid1) {
        return;
    }
    let script = r#"
"$GI" -vv --cleanup-timeout 1s sh -c 'trap "" TERM; setsid sh -c "sleep 0.3; echo $(($$ - 1)) > /proc/sys/kernel/ns_last_pid; sleep 100 & echo \$! > $D/recycled; wait" & echo $$ > "$D/cmd"; exit 7'
echo gi_exit=$?
echo cmd=$(cat "$D/cmd")
echo recycled=$(cat "$D/recycled")
"#;
    let (e, out, err) = in_namespace(script, true, Duration::from_secs(30));
    assert_eq!(e.code, Some(0), "{e:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        field(&out, "recycled"),
        field(&out, "cmd"),
        "set-up: the leftover's child did not get the command's old pid\nstdout:\n{out}\n\
         stderr:\n{err}"
    );
    assert_eq!(
        field(&out, "gi_exit"),
        Some("7"),
        "a recycled pid reaped later overwrote the command's status 7\nstdout:\n{out}\n\
         stderr:\n{err}"
    );
}
