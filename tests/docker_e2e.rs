//! End-to-end tests: grace-init as PID 1 of real Docker containers, stopped and signalled the way
//! Docker and Kubernetes do it (`docker stop -t N`, `docker kill -s SIG`, `docker run -it`).
//!
//! Needs a Docker engine. When `docker info` fails the tests are skipped with a message, except
//! with `CI=true`, where they fail. The images come from `docker/build-images.sh`, run once per
//! test binary with `GRACE_INIT_BIN` set to the binary under test: `GRACE_INIT_TEST_BIN` if set,
//! else the release binary when it is newer than the sources (`cargo build --release`), else the
//! binary cargo built for this test run (static musl as well). Nothing is pulled: every image is
//! `FROM scratch` with grace-init and busybox-static.
//!
//! Every scenario that takes options runs twice: once with flags, once with the same options as
//! `GRACE_INIT_*` environment variables (`-e`), and must behave the same.

mod common;

use common::containers::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const TESTKIT: &str = "testkit";
const SCRIPT_EXAMPLE: &str = "script-entrypoint";
const REWRITE_EXAMPLE: &str = "httpd-rewrite";
const ENV_EXAMPLE: &str = "env-config";

/// True when the test should run (see `images_ready`): the images of docker/build-images.sh.
fn setup() -> bool {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    images_ready(&BUILT, "docker/build-images.sh", "docker_e2e")
}

/// One HTTP GET from the host to ADDR; Ok when the answer is `200`.
fn http_get(addr: &str, timeout: Duration) -> Result<(), String> {
    let sock: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut s = TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let status = text.lines().next().unwrap_or("");
    if status.contains(" 200") {
        Ok(())
    } else {
        Err(format!("answer {status:?}"))
    }
}

fn wait_for_http(addr: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        match http_get(addr, Duration::from_secs(1)) {
            Ok(()) => return,
            Err(e) if start.elapsed() > timeout => panic!("{addr} never answered: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// options as flags or as GRACE_INIT_* variables

#[derive(Clone, Copy, Debug)]
enum Mode {
    Flags,
    Env,
}

/// Generates `mod $name { #[test] fn flags(); #[test] fn env(); }` calling `$body(mode)`: each
/// scenario with its options given as flags and as `-e GRACE_INIT_*` variables.
macro_rules! flags_and_env {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn flags() {
                super::$body(super::Mode::Flags);
            }
            #[test]
            fn env() {
                super::$body(super::Mode::Env);
            }
        }
    };
}

/// grace-init options, e.g. `[("stop-delay", Some("4s")), ("single-child", None)]`.
type Opts<'a> = &'a [(&'a str, Option<&'a str>)];

/// `docker run` arguments: `[-e VAR=..]... IMAGE [--opt val]... [--] CMD...` for an image whose
/// entrypoint is `/grace-init` (else pass `--entrypoint /grace-init` in `pre`).
fn run_args(mode: Mode, pre: &[&str], image: &str, opts: Opts, cmd: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = pre.iter().map(|s| s.to_string()).collect();
    let mut after: Vec<String> = Vec::new();
    for (opt, val) in opts {
        match mode {
            Mode::Flags => {
                after.push(format!("--{opt}"));
                if let Some(v) = val {
                    after.push(v.to_string());
                }
            }
            Mode::Env => {
                let var = format!("GRACE_INIT_{}", opt.to_uppercase().replace('-', "_"));
                args.push("-e".into());
                args.push(format!("{var}={}", val.unwrap_or("1")));
            }
        }
    }
    args.push(image.into());
    args.extend(after);
    if matches!(mode, Mode::Flags) {
        args.push("--".into());
    }
    args.extend(cmd.iter().map(|s| s.to_string()));
    args
}

fn run_with(
    test: &str,
    mode: Mode,
    pre: &[&str],
    image: &str,
    opts: Opts,
    cmd: &[&str],
) -> Container {
    let args = run_args(mode, pre, image, opts, cmd);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Container::run(&format!("{test}-{mode:?}").to_lowercase(), &refs)
}

// ---------------------------------------------------------------------------------------------
// docker stop: the signal reaches a grandchild behind a shell script; the exit code is the app's

#[test]
fn docker_stop_reaches_app_behind_script_and_exit_code_is_the_apps() {
    if !setup() {
        return;
    }
    // docker/examples/script-entrypoint: grace-init -> /start.sh (sh) -> /app.sh (traps TERM, exit 42)
    let c = Container::run("script-entrypoint", &[&image(SCRIPT_EXAMPLE)]);
    c.wait_for_log("app: started", Duration::from_secs(10));
    let took = c.stop(30);
    let logs = c.logs();
    assert_eq!(
        c.exit_code(),
        42,
        "the app's status is the container's; logs:\n{logs}"
    );
    assert!(
        logs.contains("app: got SIGTERM"),
        "the app got SIGTERM; logs:\n{logs}"
    );
    assert!(
        took < Duration::from_secs(15),
        "stopped gracefully, not by docker's SIGKILL: {took:?}"
    );
}

/// The same script as PID 1 (no grace-init) swallows SIGTERM: the app never hears of it and
/// Docker SIGKILLs after its timeout. This is what the test above would see without grace-init.
#[test]
fn without_grace_init_the_script_swallows_sigterm() {
    if !setup() {
        return;
    }
    let c = Container::run(
        "script-as-pid1",
        &["--entrypoint", "/start.sh", &image(SCRIPT_EXAMPLE)],
    );
    c.wait_for_log("app: started", Duration::from_secs(10));
    let took = c.stop(3);
    let logs = c.logs();
    assert_eq!(c.exit_code(), 137, "logs:\n{logs}");
    assert!(!logs.contains("app: got SIGTERM"), "logs:\n{logs}");
    assert!(took >= Duration::from_millis(2900), "{took:?}");
}

// ---------------------------------------------------------------------------------------------
// docker kill -s SIG reaches the app; --rewrite TERM:QUIT applies to docker stop

fn signals_and_rewrite(mode: Mode) {
    if !setup() {
        return;
    }
    // docker/examples/httpd-rewrite: its entrypoint carries the flags; replace them by the same
    // options as flags or variables so both spellings are tested on the same image.
    let opts: Opts = &[("single-child", None), ("rewrite", Some("TERM:QUIT"))];
    let c = run_with(
        "rewrite",
        mode,
        &["--entrypoint", "/grace-init"],
        &image(REWRITE_EXAMPLE),
        opts,
        &["/app.sh"],
    );
    c.wait_for_log("app: serving", Duration::from_secs(10));
    wait_for_http(&format!("{}:8080", c.ip()), Duration::from_secs(10));
    for (signal, line) in [
        ("HUP", "app: got SIGHUP"),
        ("USR1", "app: got SIGUSR1"),
        ("WINCH", "app: got SIGWINCH"),
        ("SIGUSR2", "app: got SIGUSR2"),
    ] {
        c.kill(signal);
        c.wait_for_log(line, Duration::from_secs(10));
    }
    assert!(c.running(), "still running after HUP/USR1/WINCH/USR2");
    http_get(&format!("{}:8080", c.ip()), Duration::from_secs(2)).expect("still serving");
    let took = c.stop(30);
    let logs = c.logs();
    assert_eq!(c.exit_code(), 0, "graceful stop exits 0; logs:\n{logs}");
    assert!(
        logs.contains("app: got SIGQUIT: graceful stop"),
        "TERM was rewritten to QUIT; logs:\n{logs}"
    );
    assert!(
        !logs.contains("app: got SIGTERM"),
        "TERM itself must not arrive; logs:\n{logs}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
}

flags_and_env!(
    docker_kill_signals_reach_app_and_rewrite_applies,
    signals_and_rewrite
);

/// The example image as shipped (options in its ENTRYPOINT).
#[test]
fn httpd_rewrite_example_as_shipped() {
    if !setup() {
        return;
    }
    let c = Container::run("rewrite-shipped", &[&image(REWRITE_EXAMPLE)]);
    c.wait_for_log("app: serving", Duration::from_secs(10));
    c.kill("HUP");
    c.wait_for_log("app: got SIGHUP", Duration::from_secs(10));
    c.stop(30);
    let logs = c.logs();
    assert_eq!(c.exit_code(), 0, "logs:\n{logs}");
    assert!(logs.contains("app: got SIGQUIT"), "logs:\n{logs}");
}

/// Group forwarding (the default): a signal from `docker kill` reaches a grandchild too.
#[test]
fn docker_kill_reaches_grandchild() {
    if !setup() {
        return;
    }
    // The wrapper shell traps USR1 (a handler, so the app can still trap it) to stay alive; the
    // shell runs its trap only once the app exits.
    let script = "trap 'echo wrapper: got SIGUSR1' USR1; /testkit/signals.sh; exit $?";
    let c = Container::run(
        "kill-grandchild",
        &[&image(TESTKIT), "--", "/bin/sh", "-c", script],
    );
    c.wait_for_log("ready", Duration::from_secs(10));
    c.kill("USR1");
    c.wait_for_log("] got SIGUSR1", Duration::from_secs(10));
    assert!(c.running(), "{}", c.logs());
}

// ---------------------------------------------------------------------------------------------
// zombies

/// (pid, state, comm) of every process in the container, from /proc/<pid>/stat.
fn processes(c: &Container) -> Vec<(u32, char, String)> {
    let out = docker_ok(&[
        "exec",
        &c.name,
        "sh",
        "-c",
        "cat /proc/[0-9]*/stat 2>/dev/null; true",
    ]);
    out.lines()
        .filter_map(|line| {
            let open = line.find('(')?;
            let close = line.rfind(')')?;
            let pid = line[..open].trim().parse().ok()?;
            let comm = line[open + 1..close].to_string();
            let state = line[close + 1..].trim().chars().next()?;
            Some((pid, state, comm))
        })
        .collect()
}

#[test]
fn orphans_are_reaped() {
    if !setup() {
        return;
    }
    // /testkit/orphans.sh leaves 5 orphaned `sleep 1`, then execs `sleep 300`, which never waits.
    let c = Container::run("orphans", &[&image(TESTKIT), "/testkit/orphans.sh"]);
    c.wait_for_log("left 5 orphans", Duration::from_secs(10));
    thread::sleep(Duration::from_secs(3));
    let procs = processes(&c);
    let zombies: Vec<_> = procs.iter().filter(|p| p.1 == 'Z').collect();
    assert!(
        zombies.is_empty(),
        "zombies under grace-init: {zombies:?} (all: {procs:?})"
    );
    assert!(
        procs.iter().any(|p| p.2 == "sleep"),
        "the app still runs: {procs:?}"
    );

    // Control: the same app as PID 1 leaves its zombies, so the check above can see them.
    let control = Container::run(
        "orphans-control",
        &["--entrypoint", "/testkit/orphans.sh", &image(TESTKIT)],
    );
    control.wait_for_log("left 5 orphans", Duration::from_secs(10));
    thread::sleep(Duration::from_secs(3));
    let procs = processes(&control);
    assert!(
        procs.iter().filter(|p| p.1 == 'Z').count() >= 5,
        "control should have zombies: {procs:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// stop delay: still serving from outside during the delay, SIGTERM after it

fn stop_delay(mode: Mode) {
    if !setup() {
        return;
    }
    let opts: Opts = &[
        ("stop-delay", Some("4s")),
        ("grace-period", Some("30s")),
        ("verbose", None),
    ];
    let c = run_with(
        "stop-delay",
        mode,
        &["-e", "PORT=8080"],
        &image(TESTKIT),
        opts,
        &["/testkit/signals.sh"],
    );
    let addr = format!("{}:8080", c.ip());
    wait_for_http(&addr, Duration::from_secs(10));
    let t0 = Instant::now();
    let mut stop = c.stop_in_background(30);
    // Give `docker stop` time to deliver SIGTERM, then check the app serves throughout the delay.
    thread::sleep(Duration::from_millis(500));
    let mut served = 0;
    while t0.elapsed() < Duration::from_millis(3300) {
        if let Err(e) = http_get(&addr, Duration::from_secs(1)) {
            panic!(
                "request at {:?} after docker stop failed during the stop delay: {e}\n{}",
                t0.elapsed(),
                c.logs()
            );
        }
        served += 1;
        thread::sleep(Duration::from_millis(100));
    }
    assert!(served >= 10, "{served}");
    let logs = c.logs();
    assert!(
        !logs.contains("got SIGTERM"),
        "SIGTERM came before the delay ended:\n{logs}"
    );
    assert!(stop.wait().expect("docker stop").success());
    let took = t0.elapsed();
    let logs = c.logs();
    assert!(
        logs.contains("app: ") && logs.contains("got SIGTERM"),
        "the app got SIGTERM after the delay:\n{logs}"
    );
    assert_eq!(c.exit_code(), 42, "logs:\n{logs}");
    assert!(
        took >= Duration::from_millis(3900),
        "the delay was 4 s, the stop took {took:?}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(
        logs.contains("stop delay"),
        "grace-init -v logs the stop delay:\n{logs}"
    );
}

flags_and_env!(stop_delay_keeps_serving_then_forwards_sigterm, stop_delay);

/// docker/examples/env-config as shipped: configured by ENV only (delay 3 s, pre-stop hook,
/// 143 remapped to 0, grace period 10 s = docker stop's default timeout).
#[test]
fn env_config_example_as_shipped() {
    if !setup() {
        return;
    }
    let c = Container::run("env-config", &[&image(ENV_EXAMPLE)]);
    let addr = format!("{}:8080", c.ip());
    wait_for_http(&addr, Duration::from_secs(10));
    let t0 = Instant::now();
    let mut stop = c.stop_in_background(10);
    thread::sleep(Duration::from_millis(500));
    while t0.elapsed() < Duration::from_millis(2500) {
        http_get(&addr, Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("failed during the delay: {e}\n{}", c.logs()));
        thread::sleep(Duration::from_millis(100));
    }
    assert!(stop.wait().expect("docker stop").success());
    let took = t0.elapsed();
    let logs = c.logs();
    assert_eq!(c.exit_code(), 0, "143 remapped to 0; logs:\n{logs}");
    assert!(
        logs.contains("got SIGTERM (pre-stop hook: finished)"),
        "logs:\n{logs}"
    );
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(9),
        "{took:?}\n{logs}"
    );
}

// ---------------------------------------------------------------------------------------------
// the deadline: grace-init kills an app that ignores SIGTERM before Docker does

fn deadline(mode: Mode) {
    if !setup() {
        return;
    }
    let opts: Opts = &[("grace-period", Some("6s")), ("kill-margin", Some("1s"))];
    let c = run_with(
        "deadline",
        mode,
        &["-e", "IGNORE_TERM=1"],
        &image(TESTKIT),
        opts,
        &["/testkit/signals.sh"],
    );
    c.wait_for_log("ready", Duration::from_secs(10));
    let took = c.stop(30);
    let logs = c.logs();
    assert_eq!(c.exit_code(), 137, "logs:\n{logs}");
    assert!(
        logs.contains("ignoring SIGTERM"),
        "the app got and ignored SIGTERM:\n{logs}"
    );
    assert!(
        logs.contains("did not exit within"),
        "grace-init's deadline line:\n{logs}"
    );
    assert!(
        took >= Duration::from_millis(4500),
        "killed at 6 s - 1 s, not before: {took:?}"
    );
    assert!(
        took < Duration::from_secs(15),
        "killed by grace-init, well before docker's 30 s: {took:?}"
    );
}

flags_and_env!(deadline_kills_before_docker_does, deadline);

// ---------------------------------------------------------------------------------------------
// pre-stop hook: runs inside the container, before the app is signalled

fn pre_stop(mode: Mode) {
    if !setup() {
        return;
    }
    // /testkit/pre-stop.sh takes 2 s, then creates /tmp/pre-stop.done; the app reports on SIGTERM
    // whether the file exists.
    let opts: Opts = &[
        ("pre-stop", Some("/testkit/pre-stop.sh")),
        ("grace-period", Some("30s")),
    ];
    let c = run_with(
        "pre-stop",
        mode,
        &[],
        &image(TESTKIT),
        opts,
        &["/testkit/signals.sh"],
    );
    c.wait_for_log("ready", Duration::from_secs(10));
    let took = c.stop(30);
    let logs = c.logs();
    assert_eq!(c.exit_code(), 42, "logs:\n{logs}");
    assert!(
        logs.contains("got SIGTERM (pre-stop hook: finished)"),
        "the hook finished before the app was signalled:\n{logs}"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

flags_and_env!(pre_stop_hook_runs_before_app_is_signalled, pre_stop);

// ---------------------------------------------------------------------------------------------
// docker run -it: a shell through a pseudo-terminal (util-linux `script` provides the pty)

#[test]
fn interactive_shell_through_a_tty() {
    if !setup() {
        return;
    }
    let name = Container::name_for("tty");
    let guard = Container { name: name.clone() };
    let _ = docker(&["rm", "-f", &name]);
    let cmd = format!(
        "docker run -it --rm --name {name} {} /bin/sh",
        image(TESTKIT)
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run `script` (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let mut stdin = child.stdin.take().unwrap();
    let t0 = Instant::now();
    let mut send = |bytes: &[u8], then: u64| {
        stdin.write_all(bytes).expect("write to the pty");
        stdin.flush().ok();
        thread::sleep(Duration::from_millis(then));
    };
    thread::sleep(Duration::from_secs(3)); // container start
    send(b"echo tty-$((40+2))\n", 700);
    send(b"sleep 30\n", 1500);
    send(b"\x03", 700); // Ctrl-C: SIGINT to the foreground job
    send(b"echo int-status=$?\n", 700);
    send(b"exit 3\n", 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait script") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    drop(stdin);
    let output = reader.join().unwrap();
    drop(guard);
    let status = status.unwrap_or_else(|| panic!("the shell did not exit; output:\n{output}"));
    assert!(
        output.contains("tty-42"),
        "the shell ran a command:\n{output}"
    );
    assert!(
        output.contains("int-status=130"),
        "Ctrl-C interrupted `sleep 30`:\n{output}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(25),
        "sleep 30 did not run to its end"
    );
    assert_eq!(
        status.code(),
        Some(3),
        "`exit 3` is docker run's exit code; output:\n{output}"
    );
}

// ---------------------------------------------------------------------------------------------
// the shutdown report in the termination-message file the kubelet shows in `kubectl describe`

/// An empty file standing for the kubelet's termination-message file, bind-mounted at
/// `/dev/termination-log` by the tests (as the kubelet does).
struct TerminationLogFile(PathBuf);

impl TerminationLogFile {
    fn new(test: &str) -> TerminationLogFile {
        let path = std::env::temp_dir().join(format!(
            "grace-init-e2e-termination-log-{test}-{}",
            std::process::id()
        ));
        std::fs::write(&path, "").expect("create the termination-log file");
        TerminationLogFile(path)
    }

    fn mount(&self, options: &str) -> String {
        format!("{}:/dev/termination-log{options}", self.0.display())
    }

    fn content(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
}

impl Drop for TerminationLogFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn termination_message_tells_what_the_deadline_kill_did() {
    if !setup() {
        return;
    }
    let file = TerminationLogFile::new("deadline");
    let mount = file.mount("");
    let c = Container::run(
        "termination-deadline",
        &[
            "-v",
            &mount,
            "-e",
            "IGNORE_TERM=1",
            "-e",
            "GRACE_INIT_STOP_DELAY=1s",
            "-e",
            "GRACE_INIT_GRACE_PERIOD=5s",
            "-e",
            "GRACE_INIT_KILL_MARGIN=1s",
            &image(TESTKIT),
            "/testkit/signals.sh",
        ],
    );
    c.wait_for_log("ready", Duration::from_secs(10));
    c.stop(30);
    let logs = c.logs();
    assert_eq!(c.exit_code(), 137, "logs:\n{logs}");
    let message = file.content();
    for needle in [
        "grace-init shutdown report",
        "+0s SIGTERM received",
        "held back for the stop delay of 1s",
        "hold over: forwarded SIGTERM to group:",
        "deadline (grace period - kill margin): grace-init SIGKILLed",
        "exit code 137",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from the termination message:\n{message}\nlogs:\n{logs}"
        );
    }
    assert!(message.len() <= 4096);
}

#[test]
fn termination_message_the_app_wrote_is_never_overwritten() {
    if !setup() {
        return;
    }
    let file = TerminationLogFile::new("app-wrote");
    let mount = file.mount("");
    let c = Container::run(
        "termination-app-wrote",
        &[
            "-v",
            &mount,
            &image(TESTKIT),
            "/bin/sh",
            "-c",
            "echo app-says-goodbye > /dev/termination-log; exit 3",
        ],
    );
    assert_eq!(c.exit_code(), 3, "logs:\n{}", c.logs());
    assert_eq!(file.content(), "app-says-goodbye\n");
}

#[test]
fn read_only_termination_message_file_changes_nothing_but_a_warning() {
    if !setup() {
        return;
    }
    let file = TerminationLogFile::new("read-only");
    let mount = file.mount(":ro");
    let c = Container::run(
        "termination-read-only",
        &["-v", &mount, &image(TESTKIT), "/bin/sh", "-c", "exit 4"],
    );
    assert_eq!(c.exit_code(), 4, "logs:\n{}", c.logs());
    assert_eq!(file.content(), "", "a read-only file was written");
    let logs = c.logs();
    assert!(
        logs.contains("cannot write the shutdown report") && logs.contains("Read-only"),
        "{logs}"
    );
}

#[test]
fn missing_termination_message_file_is_not_created_and_not_mentioned() {
    if !setup() {
        return;
    }
    let c = Container::run(
        "termination-missing",
        &[
            &image(TESTKIT),
            "/bin/sh",
            "-c",
            "ls /dev/termination-log; exit 5",
        ],
    );
    assert_eq!(c.exit_code(), 5, "logs:\n{}", c.logs());
    let logs = c.logs();
    assert!(logs.contains("No such file"), "the file existed:\n{logs}");
    assert!(!logs.contains("shutdown report"), "{logs}");
}

#[test]
fn json_logs_and_the_plan_come_out_of_a_stopped_container() {
    if !setup() {
        return;
    }
    let c = Container::run(
        "json-logs",
        &[
            "-e",
            "GRACE_INIT_LOG_FORMAT=json",
            "-e",
            "GRACE_INIT_VERBOSE=1",
            "-e",
            "GRACE_INIT_GRACE_PERIOD=10s",
            &image(TESTKIT),
            "/testkit/signals.sh",
        ],
    );
    c.wait_for_log("ready", Duration::from_secs(10));
    c.stop(10);
    let logs = c.logs();
    let ours: Vec<serde_json::Value> = logs
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let events: Vec<&str> = ours.iter().filter_map(|o| o["event"].as_str()).collect();
    assert!(events.contains(&"shutdown plan"), "{logs}");
    assert!(events.contains(&"forwarded the stop signal"), "{logs}");
    let plan = ours.iter().find(|o| o["event"] == "shutdown plan").unwrap();
    assert_eq!(plan["kill_after_stop"], "8s", "{plan}");
    let exiting = ours.iter().find(|o| o["event"] == "exiting").unwrap();
    assert!(exiting["code"].is_u64(), "{exiting}");
}

// ---------------------------------------------------------------------------------------------
// Docker's own `--init` running grace-init: a second dockerd, started by the test with its own
// socket, data root and exec root, whose `--init-path` is grace-init installed as `docker-init`.
// The machine's engine is not touched.

/// A dockerd of the test's own; stopped and its directory removed when dropped.
struct InitPathDaemon {
    dir: PathBuf,
    host: String,
    bridge: String,
    dockerd: Child,
}

impl InitPathDaemon {
    fn start() -> InitPathDaemon {
        let dir = std::env::temp_dir().join(format!("grace-init-dockerd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        // dockerd runs `<init-path> --version` and wants tini's line: the name docker-init gives
        // it (inside containers it is always mounted as /sbin/docker-init).
        let init = dir.join("bin/docker-init");
        std::fs::copy(binary_under_test(), &init).expect("install grace-init as docker-init");
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let host = format!("unix://{}", dir.join("docker.sock").display());
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        // A bridge of its own: with `--bridge none` dockerd deletes the machine's docker0.
        let bridge = format!("gi-br{}", std::process::id() % 100_000);
        let ip = |args: &[&str]| Command::new("ip").args(args).status().map(|s| s.success());
        assert!(
            matches!(ip(&["link", "add", &bridge, "type", "bridge"]), Ok(true)),
            "cannot create the bridge {bridge} (iproute2, root)"
        );
        let d = |name: &str| dir.join(name).display().to_string();
        let dockerd = Command::new("dockerd")
            .args([
                "--host",
                &host,
                "--data-root",
                &d("data"),
                "--exec-root",
                &d("exec"),
            ])
            .args([
                "--pidfile",
                &d("dockerd.pid"),
                "--config-file",
                &d("daemon.json"),
            ])
            .args(["--init-path", &init.display().to_string()])
            .args(["--bridge", &bridge, "--iptables=false", "--ip6tables=false"])
            .args(["--storage-driver", "vfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start a second dockerd");
        let daemon = InitPathDaemon {
            dir,
            host,
            bridge,
            dockerd,
        };
        let start = Instant::now();
        while !daemon
            .docker(&["info", "--format", "{{.ServerVersion}}"])
            .status
            .success()
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the test's dockerd did not come up:\n{}",
                daemon.log()
            );
            thread::sleep(Duration::from_millis(200));
        }
        // The test image, from the machine's engine.
        let mut save = Command::new("docker")
            .args(["save", &image(TESTKIT)])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let load = Command::new("docker")
            .args(["-H", &daemon.host, "load", "-q"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        let _ = save.wait();
        assert!(
            load.status.success(),
            "{}",
            String::from_utf8_lossy(&load.stderr)
        );
        daemon
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["-H", &self.host])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("docker")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for InitPathDaemon {
    fn drop(&mut self) {
        let _ = self.docker(&["rm", "-f", "grace-init-under-docker-init"]);
        // SIGTERM: dockerd stops its containers and its containerd, then exits.
        unsafe { libc::kill(self.dockerd.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while matches!(self.dockerd.try_wait(), Ok(None))
            && start.elapsed() < Duration::from_secs(30)
        {
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.dockerd.kill();
        let _ = self.dockerd.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .status();
    }
}

#[test]
fn docker_run_init_with_grace_init_as_init_path_adds_the_stop_delay() {
    if !setup() {
        return;
    }
    let daemon = InitPathDaemon::start();
    // dockerd ran `docker-init --version` and read tini's line: the commit part is ours.
    let info = daemon.docker(&["info", "--format", "{{.InitBinary}} {{.InitCommit.ID}}"]);
    let info_text = String::from_utf8_lossy(&info.stdout);
    assert!(
        info_text.trim().ends_with("docker-init grace-init"),
        "docker info: {info_text}"
    );
    assert!(
        !daemon.log().contains("failed to parse"),
        "dockerd could not parse the init version:\n{}",
        daemon.log()
    );

    let name = "grace-init-under-docker-init";
    let run = daemon.docker(&[
        "run",
        "-d",
        "--init",
        "--network",
        "none",
        "--name",
        name,
        "-e",
        "GRACE_INIT_STOP_DELAY=2s",
        "-e",
        "GRACE_INIT_VERBOSE=1",
        "--entrypoint",
        "/testkit/signals.sh",
        &image(TESTKIT),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let logs = || {
        let out = daemon.docker(&["logs", name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let start = Instant::now();
    while !logs().contains("ready") {
        assert!(start.elapsed() < Duration::from_secs(20), "{}", logs());
        thread::sleep(Duration::from_millis(100));
    }
    let ps = daemon.docker(&["exec", name, "ps", "-o", "pid,args"]);
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        ps.contains("/sbin/docker-init -- /testkit/signals.sh"),
        "{ps}"
    );
    // Signals as with tini: to the app.
    assert!(daemon
        .docker(&["kill", "-s", "USR1", name])
        .status
        .success());
    let start = Instant::now();
    while !logs().contains("got SIGUSR1") {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", logs());
        thread::sleep(Duration::from_millis(50));
    }
    // The stop delay from the variable: docker stop takes about 2 s, the app exits 42 on TERM.
    let started = Instant::now();
    assert!(daemon.docker(&["stop", "-t", "20", name]).status.success());
    let took = started.elapsed();
    let logs = logs();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(15),
        "docker stop took {took:?}:\n{logs}"
    );
    assert!(logs.contains("stop delay over: forwarded"), "{logs}");
    let code = daemon.docker(&["inspect", "-f", "{{.State.ExitCode}}", name]);
    assert_eq!(String::from_utf8_lossy(&code.stdout).trim(), "42", "{logs}");
    // Exit codes pass through.
    let run = daemon.docker(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        &image(TESTKIT),
        "/bin/sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(run.status.code(), Some(7));
}

#[test]
fn images_naming_tini_or_dumb_init_work_unchanged_with_grace_init_copied_in() {
    if !setup() {
        return;
    }
    for (entrypoint, stop_exit) in [("/tini", "42"), ("/usr/bin/dumb-init", "42")] {
        let name = format!("peer-entrypoint{}", entrypoint.replace('/', "-"));
        // The image's grace-init, under the peer's name, as `COPY grace-init /tini` would put it.
        let script = format!(
            "mkdir -p /usr/bin && cp /grace-init {entrypoint} && exec {entrypoint} -- /testkit/signals.sh"
        );
        let c = Container::run(
            &name,
            &[
                "-e",
                "GRACE_INIT_STOP_DELAY=1s",
                "--entrypoint",
                "/bin/sh",
                &image(TESTKIT),
                "-c",
                &script,
            ],
        );
        c.wait_for_log("ready", Duration::from_secs(10));
        c.kill("USR1");
        c.wait_for_log("got SIGUSR1", Duration::from_secs(10));
        let took = c.stop(20);
        assert!(
            took >= Duration::from_millis(900),
            "{entrypoint}: {took:?}\n{}",
            c.logs()
        );
        assert_eq!(
            c.exit_code().to_string(),
            stop_exit,
            "{entrypoint}:\n{}",
            c.logs()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// podman's `--init` running grace-init: `--init-path` to grace-init, which podman mounts as
// /run/podman-init (the catatonit personality). Storage and run state in a directory of the
// test's own.

fn podman_available() -> bool {
    match Command::new("podman").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but podman is not installed (scripts/setup.sh installs it)")
        }
        _ => {
            eprintln!("docker_e2e: SKIPPED podman test, podman is not installed");
            false
        }
    }
}

#[test]
fn podman_run_init_with_grace_init_as_init_path_adds_the_stop_delay() {
    if !setup() || !podman_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("grace-init-podman-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let init = dir.join("catatonit");
    std::fs::copy(binary_under_test(), &init).unwrap();
    let root = dir.join("root").display().to_string();
    let runroot = dir.join("run").display().to_string();
    let podman = |args: &[&str]| {
        Command::new("podman")
            .args([
                "--root",
                &root,
                "--runroot",
                &runroot,
                "--storage-driver",
                "vfs",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman")
    };
    struct Cleanup<F: Fn()>(F);
    impl<F: Fn()> Drop for Cleanup<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _cleanup = Cleanup(|| {
        let _ = podman(&["rm", "-a", "-f"]);
        let _ = std::fs::remove_dir_all(&dir);
    });
    let testkit = image(TESTKIT);
    let tar = dir.join("testkit.tar");
    assert!(
        docker(&["save", "-o", &tar.display().to_string(), &testkit])
            .status
            .success()
    );
    let load = podman(&["load", "-q", "-i", &tar.display().to_string()]);
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let init_path = init.display().to_string();
    // This sandbox refuses podman's default RLIMIT_NOFILE; any real machine takes the default.
    let common = [
        "--init",
        "--init-path",
        &init_path,
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
    ];
    let name = "grace-init-under-podman-init";
    let mut run = vec!["run", "-d", "--name", name];
    run.extend_from_slice(&common);
    run.extend_from_slice(&[
        "-e",
        "GRACE_INIT_STOP_DELAY=2s",
        "-e",
        "GRACE_INIT_VERBOSE=1",
        "--entrypoint",
        "/testkit/signals.sh",
        &testkit,
    ]);
    let out = podman(&run);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = || {
        let out = podman(&["logs", name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let start = Instant::now();
    while !logs().contains("ready") {
        assert!(start.elapsed() < Duration::from_secs(20), "{}", logs());
        thread::sleep(Duration::from_millis(100));
    }
    let ps = podman(&["exec", name, "ps", "-o", "pid,args"]);
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        ps.contains("/run/podman-init -- /testkit/signals.sh"),
        "{ps}"
    );
    let started = Instant::now();
    assert!(podman(&["stop", "-t", "20", name]).status.success());
    let took = started.elapsed();
    let logs = logs();
    assert!(
        took >= Duration::from_millis(1900),
        "podman stop took {took:?}:\n{logs}"
    );
    assert!(logs.contains("stop delay over: forwarded"), "{logs}");
    let code = podman(&["inspect", "-f", "{{.State.ExitCode}}", name]);
    assert_eq!(String::from_utf8_lossy(&code.stdout).trim(), "42", "{logs}");
    let mut run = vec!["run", "--rm"];
    run.extend_from_slice(&common);
    run.extend_from_slice(&[&testkit, "/bin/sh", "-c", "exit 7"]);
    assert_eq!(podman(&run).status.code(), Some(7));
}

// ---------------------------------------------------------------------------------------------
// the adaptive hold in a container: busybox httpd (a new connection per request), `docker stop`

#[test]
fn adaptive_hold_in_a_container_lasts_while_requests_come_then_one_quiet_period() {
    if !setup() {
        return;
    }
    let c = Container::run(
        "adaptive-hold",
        &[
            "-e",
            "GRACE_INIT_STOP_DELAY=500ms",
            "-e",
            "GRACE_INIT_DRAIN_QUIET=1s",
            "-e",
            "GRACE_INIT_GRACE_PERIOD=20s",
            "-e",
            "GRACE_INIT_VERBOSE=1",
            &image(TESTKIT),
            "/bin/sh",
            "-c",
            "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www",
        ],
    );
    let addr = format!("{}:8080", c.ip());
    wait_for_http(&addr, Duration::from_secs(10));
    let started = Instant::now();
    let mut stop = c.stop_in_background(30);
    let mut last = Duration::ZERO;
    while started.elapsed() < Duration::from_millis(2500) {
        thread::sleep(Duration::from_millis(200));
        http_get(&addr, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("a request during the hold failed: {e}\n{}", c.logs()));
        last = started.elapsed();
    }
    assert!(stop.wait().unwrap().success());
    let took = started.elapsed();
    let logs = c.logs();
    assert!(
        logs.contains("adaptive hold over: no traffic for 1s"),
        "{logs}"
    );
    assert!(
        took >= last + Duration::from_millis(800) && took <= last + Duration::from_secs(4),
        "stopped {:?} after the last request, not about the 1s quiet period:\n{logs}",
        took - last
    );
}
