//! The adaptive hold (`--drain-quiet`): after the stop signal grace-init holds it while the
//! command's listening port still gets traffic, and forwards it once the port was quiet for the
//! quiet period, or at the cap. The command is Python's HTTP server (HTTP/1.1, keep-alive) on a
//! loopback port; the client is this test, with one keep-alive connection: traffic that opens no
//! new connection, which only the received-data time of the socket shows.
#[macro_use]
mod common;

use common::*;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A port nobody listens on: bind to 0 and give it back.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start_server(mode: Mode, dir: &TestDir, options: &[&str]) -> (Init, u16) {
    let port = free_port();
    let mut args: Vec<String> = vec!["-v".into()];
    args.extend(options.iter().map(|o| o.to_string()));
    args.extend(
        [
            "python3",
            "-m",
            "http.server",
            "--protocol",
            "HTTP/1.1",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ]
        .iter()
        .map(|a| a.to_string()),
    );
    let init = Init::start(mode, dir, &args);
    let up = wait_until(T, || TcpStream::connect(("127.0.0.1", port)).ok());
    assert!(up.is_some(), "the server never listened: {}", init.stderr());
    (init, port)
}

/// The client: one keep-alive connection, a GET every 200 ms for SECONDS; prints the number of
/// answered requests, when the last one was answered (seconds from its start), and `all`, or
/// `failed` when a request got no answer.
const CLIENT: &str = r#"
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
start = time.monotonic(); answered = 0; last = 0.0
while time.monotonic() - start < seconds:
    time.sleep(0.2)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    status = f.readline(); length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""): break
        if line.lower().startswith(b"content-length:"): length = int(line.split(b":")[1])
    if not status.startswith(b"HTTP/1.1 200") or len(f.read(length)) != length:
        print(answered, last, "failed"); sys.exit(0)
    answered += 1; last = time.monotonic() - start
print(answered, last, "all")
"#;

/// Sends SIGTERM, keeps requesting every 200 ms on one keep-alive connection for `traffic`,
/// and returns when grace-init exited: (seconds from SIGTERM to the last answered request,
/// seconds from SIGTERM to the exit). Every request must be answered unless `may_be_cut`.
fn stop_under_traffic(
    init: &mut Init,
    port: u16,
    traffic: Duration,
    may_be_cut: bool,
) -> (f64, f64) {
    let mut client = std::process::Command::new("python3")
        .args([
            "-c",
            CLIENT,
            &port.to_string(),
            &traffic.as_secs_f64().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let sent = Instant::now();
    init.signal(libc::SIGTERM);
    let mut out = String::new();
    client
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(client.wait().unwrap().success());
    let words: Vec<&str> = out.split_whitespace().collect();
    assert!(
        may_be_cut || words.get(2) == Some(&"all"),
        "a request during the hold failed ({out}): {}",
        init.stderr()
    );
    let last: f64 = words.get(1).and_then(|t| t.parse().ok()).unwrap();
    let exit = init.wait(T);
    assert_eq!(
        exit.code,
        Some(143),
        "the server dies of the forwarded SIGTERM: {}",
        init.stderr()
    );
    (last, sent.elapsed().as_secs_f64())
}

fn holds_while_traffic_comes(mode: Mode) {
    let dir = TestDir::new("drain-traffic");
    let (mut init, port) = start_server(
        mode,
        &dir,
        &["--stop-delay", "500ms", "--drain-quiet", "1s"],
    );
    let (last, exited) = stop_under_traffic(&mut init, port, Duration::from_millis(2500), false);
    let err = init.stderr();
    assert!(
        err.contains("adaptive hold over: no traffic for 1s"),
        "{err}"
    );
    assert!(
        exited >= last + 0.8 && exited <= last + 3.0,
        "forwarded {:.2}s after the last request, not about the 1s quiet period:\n{err}",
        exited - last
    );
}
both_modes!(
    adaptive_hold_forwards_one_quiet_period_after_the_last_request,
    holds_while_traffic_comes
);

fn ends_quickly_without_traffic(mode: Mode) {
    let dir = TestDir::new("drain-idle");
    let (mut init, _) = start_server(
        mode,
        &dir,
        &["--stop-delay", "500ms", "--drain-quiet", "1s"],
    );
    let sent = Instant::now();
    eprintln!(
        "DEBUG grace-init pid {} child {}",
        init.pid(),
        init.child_pid()
    );
    init.signal(libc::SIGTERM);
    sleep_ms(300);
    eprintln!(
        "DEBUG after TERM: gi {:?} child {:?}\n{}",
        stat(init.pid()),
        stat(init.child_pid()),
        init.stderr()
    );
    assert_eq!(init.wait(T).code, Some(143));
    let took = sent.elapsed().as_secs_f64();
    assert!(
        (0.9..3.0).contains(&took),
        "no traffic: the hold is the quiet period, not {took:.2}s"
    );
}
both_modes!(
    adaptive_hold_without_traffic_ends_after_the_quiet_period,
    ends_quickly_without_traffic
);

#[test]
fn adaptive_hold_is_cut_at_drain_max_while_traffic_goes_on() {
    let dir = TestDir::new("drain-cap");
    let (mut init, port) = start_server(
        Mode::Subreaper,
        &dir,
        &["--drain-quiet", "1s", "--drain-max", "2s"],
    );
    let (_, exited) = stop_under_traffic(&mut init, port, Duration::from_millis(4000), true);
    let err = init.stderr();
    assert!(err.contains("adaptive hold cut at its cap of 2s"), "{err}");
    assert!(
        (1.9..4.0).contains(&exited),
        "cut at the 2s cap, not {exited:.2}s: {err}"
    );
}

#[test]
fn connections_from_ignored_addresses_are_not_traffic() {
    let dir = TestDir::new("drain-ignore");
    let (mut init, port) = start_server(
        Mode::Subreaper,
        &dir,
        &["--drain-quiet", "1s", "--drain-ignore-from", "127.0.0.0/8"],
    );
    let (_, exited) = stop_under_traffic(&mut init, port, Duration::from_millis(600), false);
    assert!(
        exited < 2.5,
        "probe-like traffic from 127.0.0.0/8 held the stop for {exited:.2}s: {}",
        init.stderr()
    );
}

#[test]
fn drain_options_are_validated_like_the_stop_delay() {
    for (args, needle) in [
        (
            &[
                "--drain-quiet",
                "1s",
                "--drain-max",
                "28s",
                "--grace-period",
                "30s",
            ][..],
            "--drain-max 28s does not fit",
        ),
        (
            &[
                "--drain-quiet",
                "1s",
                "--drain-max",
                "1s",
                "--stop-delay",
                "5s",
            ],
            "shorter than --stop-delay",
        ),
        (&["--drain-quiet", "0s"], "longer than zero"),
        (&["--drain-quiet", "1s", "--drain-ports", "0"], "'0'"),
        (
            &["--drain-quiet", "1s", "--drain-ignore-from", "10.0.0.0/40"],
            "'10.0.0.0/40'",
        ),
    ] {
        let mut all = args.to_vec();
        all.push("true");
        let (exit, _, err) = run(Mode::Subreaper, &all);
        assert_eq!(exit.code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
