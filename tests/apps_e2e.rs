//! End-to-end tests with real servers from Debian's packages under grace-init: nginx, PostgreSQL,
//! Apache httpd, gunicorn and Redis, each in its example image (docker/examples/<app>), stopped
//! the way Docker stops containers (`docker stop -t N`). Each test checks that the stop the
//! example's settings produce is graceful: requests in flight complete, data is kept.
//!
//! Needs a Docker engine. When `docker info` fails the tests are skipped with a message, except
//! with `CI=true`, where they fail. The images come from `docker/build-app-images.sh` (a Debian
//! base made offline with mmdebstrap, cached by its inputs), run once per test binary with
//! `GRACE_INIT_BIN` set to the binary under test (chosen as in tests/docker_e2e.rs). Image tag:
//! `GRACE_INIT_TAG`, default `test`.

mod common;

use common::containers::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The size of `/slow` in the nginx and Apache examples (sent at 100 KiB/s: about 10 s).
const SLOW_FILE_BYTES: usize = 1024 * 1024;
/// The `--stop-delay` in the examples' ENTRYPOINT (nginx, Apache, gunicorn).
const STOP_DELAY: Duration = Duration::from_secs(5);

/// True when the test should run (see `images_ready`): the images of docker/build-app-images.sh.
fn setup() -> bool {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    images_ready(&BUILT, "docker/build-app-images.sh", "apps_e2e")
}

// ---------------------------------------------------------------------------------------------
// HTTP from the host to the container

/// A complete HTTP answer: status code and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// One `GET PATH` (HTTP/1.1, `Connection: close`) to ADDR; the whole answer, or why not. A
/// `Content-Length` answer must be complete.
fn http_get(addr: &str, path: &str, timeout: Duration) -> Result<Answer, String> {
    let sock: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut s = TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete header in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    if let Some(length) = length {
        if body.len() != length {
            return Err(format!(
                "short answer: {} of {length} body bytes",
                body.len()
            ));
        }
    }
    Ok(Answer { status, body })
}

fn wait_for_http(addr: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        match http_get(addr, "/", Duration::from_secs(2)) {
            Ok(a) if a.status == 200 => return,
            Ok(a) if start.elapsed() > timeout => panic!("{addr} answered {}", a.status),
            Err(e) if start.elapsed() > timeout => panic!("{addr} never answered: {e}"),
            _ => thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `GET PATH` in a thread; joins to the answer and how long it took.
fn get_in_background(addr: &str, path: &str) -> JoinHandle<(Result<Answer, String>, Duration)> {
    let (addr, path) = (addr.to_string(), path.to_string());
    thread::spawn(move || {
        let start = Instant::now();
        let answer = http_get(&addr, &path, Duration::from_secs(60));
        (answer, start.elapsed())
    })
}

/// Tries to connect every 100 ms until the connection is refused; returns when, measured from
/// SINCE. Panics after TIMEOUT.
fn wait_until_refused(addr: &str, since: Instant, timeout: Duration) -> Duration {
    let sock: SocketAddr = addr.parse().expect("address");
    loop {
        match TcpStream::connect_timeout(&sock, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return since.elapsed(),
            _ if since.elapsed() > timeout => panic!("{addr}: still accepting after {timeout:?}"),
            _ => thread::sleep(Duration::from_millis(100)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// nginx and Apache: a download in flight completes, new connections are refused after the delay

/// The example's own settings: stop delay 5 s, then the graceful stop signal (nginx QUIT,
/// Apache WINCH). A 10 s download starts, then `docker stop -t 30`: during the delay new requests
/// are still served; after it new connections are refused while the download goes on; the
/// download completes with 200 and every byte; the container exits 0.
fn slow_download_survives_docker_stop(app: &str, graceful_log: &str) {
    if !setup() {
        return;
    }
    let c = Container::run(app, &[&image(app)]);
    let addr = format!("{}:80", c.ip());
    wait_for_http(&addr, Duration::from_secs(60));

    let download = get_in_background(&addr, "/slow");
    thread::sleep(Duration::from_millis(500));
    let stop_began = Instant::now();
    let mut stop = c.stop_in_background(30);

    thread::sleep(Duration::from_secs(1));
    let during = http_get(&addr, "/", Duration::from_secs(5));
    assert!(
        matches!(&during, Ok(a) if a.status == 200),
        "{app} still serves new requests during the stop delay: {:?}",
        during.err()
    );

    let refused = wait_until_refused(&addr, stop_began, Duration::from_secs(25));
    assert!(
        !download.is_finished(),
        "the download was still in flight when new connections were refused (after {refused:?})"
    );
    assert!(
        refused >= STOP_DELAY - Duration::from_millis(500),
        "{app} kept accepting for the stop delay ({STOP_DELAY:?}); refused after {refused:?}"
    );

    let (answer, took) = download.join().expect("download thread");
    let answer = answer.unwrap_or_else(|e| panic!("the download in flight failed: {e}"));
    assert_eq!(answer.status, 200, "the download in flight");
    assert_eq!(answer.body.len(), SLOW_FILE_BYTES, "every byte ({took:?})");

    assert!(stop.wait().expect("docker stop").success());
    let logs = c.logs();
    assert_eq!(c.exit_code(), 0, "graceful stop exits 0; logs:\n{logs}");
    assert!(
        logs.contains(graceful_log),
        "{app} got its graceful stop signal ({graceful_log:?}); logs:\n{logs}"
    );
    assert!(
        stop_began.elapsed() < Duration::from_secs(28),
        "stopped by itself, not by docker's SIGKILL"
    );
}

#[test]
fn nginx_finishes_a_download_in_flight_and_refuses_new_connections_after_the_delay() {
    // --rewrite TERM:QUIT: nginx logs the signal it got.
    slow_download_survives_docker_stop("nginx", "signal 3 (SIGQUIT) received");
}

#[test]
fn apache_finishes_a_download_in_flight_and_refuses_new_connections_after_the_delay() {
    // --rewrite TERM:WINCH: Apache's graceful-stop.
    slow_download_survives_docker_stop("apache", "caught SIGWINCH, shutting down gracefully");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: fast shutdown keeps the data and the next start is clean; a shell wrapper is not

const PG_READY: &str = "database system is ready to accept connections";
const PG_BANNER: &str = "starting PostgreSQL";
const PG_RECOVERY: &str = "automatic recovery in progress";

fn psql(c: &Container, sql: &str) -> String {
    c.exec(&["psql", "-v", "ON_ERROR_STOP=1", "-tAc", sql])
}

/// Creates a table with 1000 committed rows.
fn commit_rows(c: &Container) {
    psql(
        c,
        "CREATE TABLE kept (x int); INSERT INTO kept SELECT generate_series(1, 1000);",
    );
}

#[test]
fn postgres_stops_fast_with_a_client_connected_keeps_rows_and_restarts_without_recovery() {
    if !setup() {
        return;
    }
    let c = Container::run("postgres", &[&image("postgres")]);
    c.wait_for_log_count(PG_READY, 1, Duration::from_secs(120));
    commit_rows(&c);

    // A client in the middle of a long query: PostgreSQL's SIGTERM ("smart" shutdown) would
    // wait for it; the SIGINT that --rewrite TERM:INT sends disconnects it.
    let mut client = Command::new("docker")
        .args(["exec", &c.name, "psql", "-c", "SELECT pg_sleep(600)"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker exec psql");
    let start = Instant::now();
    while psql(
        &c,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'",
    ) != "1"
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "client never connected"
        );
        thread::sleep(Duration::from_millis(200));
    }

    let took = c.stop(60);
    let _ = client.kill();
    let _ = client.wait();
    let logs = c.logs();
    assert_eq!(c.exit_code(), 0, "logs:\n{logs}");
    assert!(
        logs.contains("received fast shutdown request"),
        "logs:\n{logs}"
    );
    assert!(
        logs.contains("database system is shut down"),
        "logs:\n{logs}"
    );
    assert!(took < Duration::from_secs(30), "not SIGKILLed: {took:?}");

    c.start();
    c.wait_for_log_count(PG_READY, 2, Duration::from_secs(120));
    let restart = c.logs_since_last(PG_BANNER);
    assert!(
        restart.contains("database system was shut down at"),
        "clean shutdown seen at the next start:\n{restart}"
    );
    assert!(
        !restart.contains(PG_RECOVERY),
        "no crash recovery:\n{restart}"
    );
    assert_eq!(psql(&c, "SELECT count(*) FROM kept"), "1000");
}

/// The contrast: the same server behind `sh -c '…; exit $?'` as PID 1. The shell has no handler
/// for SIGTERM, so the kernel drops it; Docker SIGKILLs after the timeout and the next start has
/// to recover from the write-ahead log.
#[test]
fn postgres_behind_a_shell_wrapper_is_sigkilled_and_recovers_at_the_next_start() {
    if !setup() {
        return;
    }
    let c = Container::run(
        "postgres-sh",
        &[
            "--entrypoint",
            "sh",
            &image("postgres"),
            "-c",
            "pg-start; exit $?",
        ],
    );
    c.wait_for_log_count(PG_READY, 1, Duration::from_secs(120));
    commit_rows(&c);

    let took = c.stop(5);
    let logs = c.logs();
    assert_eq!(c.exit_code(), 137, "SIGKILLed; logs:\n{logs}");
    assert!(took >= Duration::from_millis(4900), "{took:?}");
    assert!(!logs.contains("shutdown request"), "logs:\n{logs}");

    c.start();
    c.wait_for_log_count(PG_READY, 2, Duration::from_secs(120));
    let restart = c.logs_since_last(PG_BANNER);
    assert!(restart.contains(PG_RECOVERY), "crash recovery:\n{restart}");
    assert_eq!(psql(&c, "SELECT count(*) FROM kept"), "1000");
}

// ---------------------------------------------------------------------------------------------
// gunicorn: TERM is graceful; the request in flight completes, the workers exit first

#[test]
fn gunicorn_finishes_the_request_in_flight_and_its_workers_exit_before_grace_init() {
    if !setup() {
        return;
    }
    // -vv: grace-init logs every process it reaps; a worker left behind by the master would be
    // reparented to grace-init and show up as "reaped".
    let c = Container::run(
        "gunicorn",
        &["-e", "GRACE_INIT_VERBOSE=2", &image("gunicorn")],
    );
    let addr = format!("{}:8000", c.ip());
    wait_for_http(&addr, Duration::from_secs(60));
    c.wait_for_log_count("Booting worker with pid:", 2, Duration::from_secs(30));
    let workers: Vec<String> = c
        .logs()
        .lines()
        .filter_map(|l| l.split("Booting worker with pid: ").nth(1))
        .map(|pid| pid.trim().to_string())
        .collect();

    // 8 s: longer than the 5 s stop delay, so SIGTERM arrives while it is being served.
    let request = get_in_background(&addr, "/slow?8");
    thread::sleep(Duration::from_millis(500));
    let mut stop = c.stop_in_background(30);
    thread::sleep(Duration::from_secs(1));
    let during = http_get(&addr, "/", Duration::from_secs(5));
    assert!(
        matches!(&during, Ok(a) if a.status == 200),
        "served during the stop delay: {:?}",
        during.err()
    );

    let (answer, took) = request.join().expect("request thread");
    let answer = answer.unwrap_or_else(|e| panic!("the request in flight failed: {e}"));
    assert_eq!(answer.status, 200);
    assert!(answer.body.starts_with(b"ok "), "{:?}", answer.body);
    assert!(took >= Duration::from_secs(8), "{took:?}");

    assert!(stop.wait().expect("docker stop").success());
    let logs = c.logs();
    assert_eq!(c.exit_code(), 0, "logs:\n{logs}");
    let exited = logs
        .find("command exited with 0")
        .unwrap_or_else(|| panic!("grace-init logged the command's exit; logs:\n{logs}"));
    for pid in &workers {
        let gone = logs
            .find(&format!("Worker exiting (pid: {pid})"))
            .unwrap_or_else(|| panic!("worker {pid} exited; logs:\n{logs}"));
        assert!(
            gone < exited,
            "worker {pid} before the master; logs:\n{logs}"
        );
    }
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("grace-init") && l.contains("reaped")),
        "no worker was left to grace-init; logs:\n{logs}"
    );
}

// ---------------------------------------------------------------------------------------------
// Redis: TERM saves the data set

#[test]
fn redis_saves_on_docker_stop_and_the_key_is_there_after_restart() {
    if !setup() {
        return;
    }
    let c = Container::run("redis", &[&image("redis")]);
    c.wait_for_log_count("Ready to accept connections", 1, Duration::from_secs(60));
    assert_eq!(c.exec(&["redis-cli", "SET", "greeting", "kept"]), "OK");
    // Only the stop can have saved it: the save point is an hour away.
    assert!(!c.logs().contains("DB saved on disk"));

    let took = c.stop(30);
    let logs = c.logs();
    assert_eq!(c.exit_code(), 0, "logs:\n{logs}");
    assert!(logs.contains("DB saved on disk"), "logs:\n{logs}");
    assert!(took < Duration::from_secs(25), "{took:?}");

    c.start();
    c.wait_for_log_count("Ready to accept connections", 2, Duration::from_secs(60));
    assert_eq!(c.exec(&["redis-cli", "GET", "greeting"]), "kept");
}

// ---------------------------------------------------------------------------------------------
// A JVM: SIGTERM runs the shutdown hooks and exits 143; --remap-exit 143:0 makes it a success

/// Starts the JVM example with ARGS, waits until it serves, stops it; returns the exit code and
/// the logs.
fn stop_jvm(test: &str, args: &[&str]) -> (i32, String) {
    let c = Container::run(test, args);
    c.wait_for_log_count("listening on :8080", 1, Duration::from_secs(180));
    wait_for_http(&format!("{}:8080", c.ip()), Duration::from_secs(30));
    let took = c.stop(30);
    assert!(took < Duration::from_secs(25), "not SIGKILLed: {took:?}");
    (c.exit_code(), c.logs())
}

#[test]
fn jvm_exits_143_after_its_shutdown_hooks_on_sigterm() {
    if !setup() {
        return;
    }
    // The example's command under grace-init without its --remap-exit.
    let (code, logs) = stop_jvm(
        "jvm-plain",
        &[
            "--entrypoint",
            "grace-init",
            &image("jvm"),
            "java",
            "/app/Server.java",
        ],
    );
    assert_eq!(code, 143, "logs:\n{logs}");
    assert!(logs.contains("shutdown hook: done"), "logs:\n{logs}");
}

#[test]
fn jvm_with_remap_exit_143_to_0_stops_with_success() {
    if !setup() {
        return;
    }
    // The image as it is: --remap-exit 143:0, stop delay 5 s.
    let (code, logs) = stop_jvm("jvm-remap", &[&image("jvm")]);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert!(logs.contains("shutdown hook: done"), "logs:\n{logs}");
}
