//! An idle grace-init sleeps in the kernel until a signal or a deadline: no polling interval.
#[macro_use]
mod common;

use common::*;

/// Voluntary plus involuntary context switches of `pid` so far.
fn context_switches(pid: i32) -> u64 {
    ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
        .iter()
        .map(|field| {
            proc_status_field(pid, field)
                .and_then(|value| value.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {field} for pid {pid}"))
        })
        .sum()
}

/// Counts grace-init's wake-ups over 3 s while its child sleeps, with `args` before the child.
fn wake_ups_while_idle(mode: Mode, dir: &TestDir, args: &[&str]) -> u64 {
    let ready = dir.s("sleeping");
    let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    argv.extend([probe(), "sleep".into(), "30".into(), ready.clone()]);
    let mut init = Init::start(mode, dir, &argv);
    assert!(
        wait_file(std::path::Path::new(&ready), T),
        "child never started"
    );
    let pid = init.pid();
    sleep_ms(300); // let start-up settle
    let before = context_switches(pid);
    sleep_ms(3_000);
    let after = context_switches(pid);
    init.signal(libc::SIGINT); // forwarded at once in both tests: the child ends, then grace-init
    let _ = init.wait(T);
    after - before
}

fn idle(mode: Mode) {
    let dir = TestDir::new("idle");
    let woke = wake_ups_while_idle(mode, &dir, &[]);
    assert_eq!(
        woke, 0,
        "grace-init woke up {woke} times in 3 s with nothing to do"
    );
}
both_modes!(idle_init_never_wakes_up, idle);

/// A configured timeline (delay, grace period, adaptive hold) schedules nothing, and samples no
/// traffic, until a stop begins.
fn idle_configured(mode: Mode) {
    let dir = TestDir::new("idle-timeline");
    let args = [
        "--stop-delay",
        "5s",
        "--grace-period",
        "30s",
        "--cleanup-timeout",
        "1s",
        "--drain-quiet",
        "1s",
    ];
    let woke = wake_ups_while_idle(mode, &dir, &args);
    assert_eq!(
        woke, 0,
        "grace-init woke up {woke} times in 3 s with nothing to do"
    );
}
both_modes!(
    idle_init_with_timeline_options_never_wakes_up,
    idle_configured
);
