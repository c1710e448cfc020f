//! Signal forwarding: every signal to the child's process group, --single-child, --rewrite,
//! and a signal sent right after start is not lost.
#[macro_use]
mod common;

use common::*;
use std::time::Duration;

const SIGS_STD_NO_TERM: &[i32] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
    31,
];

/// Every signal 1..31 except KILL/STOP/CHLD, and every real-time signal 34..64 (TERM last).
fn all_forwardable() -> Vec<i32> {
    let mut v: Vec<i32> = SIGS_STD_NO_TERM.to_vec();
    v.extend(34..=64);
    v.push(15);
    v
}

fn start_recorder(mode: Mode, dir: &TestDir, extra: &[&str], env: &[(&str, &str)]) -> (Init, Rec) {
    let rec = Rec::new(dir, "rec");
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend([
        probe(),
        "record".into(),
        rec.arg(),
        "--grand-args".into(),
        "--pdeathsig".into(),
    ]);
    let init = Init::start_with_env(mode, dir, &args, env);
    rec.wait_ready(T);
    (init, rec)
}

fn finish_by_killing_child(mut init: Init) {
    kill(init.child_pid(), libc::SIGKILL);
    assert_eq!(init.wait_code(T), 137, "stderr:\n{}", init.stderr());
}

fn every_signal_reaches_grandchild_in_group(mode: Mode) {
    let dir = TestDir::new("fwd-all");
    let (init, rec) = start_recorder(mode, &dir, &[], &[]);
    let grand = rec.grand();
    let mut missing = vec![];
    let mut timeout = Duration::from_secs(5);
    for sig in all_forwardable() {
        let (nc, ng) = (rec.len(), grand.len());
        init.signal(sig);
        let child_got = rec.wait_sig_from(nc, sig, timeout).is_some();
        let grand_got = grand.wait_sig_from(ng, sig, timeout).is_some();
        if !child_got || !grand_got {
            missing.push(format!(
                "{sig} (child: {child_got}, grandchild: {grand_got})"
            ));
            timeout = Duration::from_millis(500);
        }
    }
    assert!(
        missing.is_empty(),
        "signals not forwarded to the process group: {missing:?}\nstderr:\n{}",
        init.stderr()
    );
    assert!(init.pid() > 0 && alive(init.pid()));
    finish_by_killing_child(init);
}
both_modes!(
    forwards_every_signal_1_to_64_to_process_group,
    every_signal_reaches_grandchild_in_group
);

fn tstp_stops_group_cont_resumes(mode: Mode) {
    let dir = TestDir::new("tstp");
    let rec = Rec::new(&dir, "rec");
    let init = Init::start(
        mode,
        &dir,
        &[
            probe(),
            "record".into(),
            rec.arg(),
            "--default".into(),
            "20".into(),
            "--grand-args".into(),
            "--pdeathsig --default 20".into(),
        ],
    );
    rec.wait_ready(T);
    let gi = init.pid();
    let child = init.child_pid();
    let grand = children_of(child).first().expect("grandchild").pid;
    init.signal(libc::SIGTSTP);
    let stopped = wait_until(T, || {
        (stat(child)?.state == 'T' && stat(grand)?.state == 'T').then_some(())
    });
    assert!(
        stopped.is_some(),
        "TSTP did not stop the group: child {:?} grandchild {:?}\nstderr:\n{}",
        stat(child),
        stat(grand),
        init.stderr()
    );
    sleep_ms(300);
    let st = stat(gi).unwrap();
    assert_ne!(st.state, 'T', "grace-init itself got stopped: {st:?}");
    init.signal(libc::SIGCONT);
    let resumed = wait_until(T, || {
        (stat(child)?.state != 'T' && stat(grand)?.state != 'T').then_some(())
    });
    assert!(
        resumed.is_some(),
        "CONT did not resume the group: {:?} {:?}",
        stat(child),
        stat(grand)
    );
    assert!(
        rec.wait_sig(libc::SIGCONT, T).is_some(),
        "child did not record CONT"
    );
    assert!(
        rec.grand().wait_sig(libc::SIGCONT, T).is_some(),
        "grandchild did not record CONT"
    );
    // grace-init still forwards afterwards.
    init.signal(libc::SIGUSR1);
    assert!(
        rec.wait_sig(libc::SIGUSR1, T).is_some(),
        "USR1 not forwarded after TSTP/CONT"
    );
    finish_by_killing_child(init);
}
both_modes!(
    tstp_stops_child_group_not_init_and_cont_resumes,
    tstp_stops_group_cont_resumes
);

fn single_child_only(mode: Mode, extra: &[&str], env: &[(&str, &str)]) {
    let dir = TestDir::new("single");
    let (init, rec) = start_recorder(mode, &dir, extra, env);
    for sig in [libc::SIGUSR1, libc::SIGHUP, libc::SIGWINCH] {
        init.signal(sig);
        assert!(
            rec.wait_sig(sig, T).is_some(),
            "child did not get {sig}; stderr:\n{}",
            init.stderr()
        );
    }
    sleep_ms(500);
    assert!(
        rec.grand().sigs().is_empty(),
        "grandchild got {:?} with --single-child",
        rec.grand().sigs()
    );
    finish_by_killing_child(init);
}
fn single_child_flag(mode: Mode) {
    single_child_only(mode, &["--single-child"], &[]);
}
both_modes!(
    single_child_flag_signals_child_not_grandchild,
    single_child_flag
);

#[test]
fn single_child_env_signals_child_not_grandchild() {
    single_child_only(Mode::Subreaper, &[], &[("GRACE_INIT_SINGLE_CHILD", "1")]);
}

/// Send `from`; expect exactly `to` to be recorded next (None = dropped, checked with a sentinel).
fn expect_translation(init: &Init, rec: &Rec, from: i32, to: Option<i32>) {
    const SENTINEL: i32 = libc::SIGPWR;
    let n = rec.len();
    init.signal(from);
    match to {
        Some(to) => {
            assert!(
                rec.wait_sig_from(n, to, T).is_some(),
                "sent {from}, expected {to}, recorded {:?}; stderr:\n{}",
                &rec.sigs()[n..],
                init.stderr()
            );
            sleep_ms(200);
            assert_eq!(
                rec.sigs()[n..].to_vec(),
                vec![to],
                "sent {from}, expected only {to}"
            );
        }
        None => {
            sleep_ms(300);
            init.signal(SENTINEL);
            assert!(
                rec.wait_sig_from(n, SENTINEL, T).is_some(),
                "sentinel not forwarded"
            );
            sleep_ms(200);
            assert_eq!(
                rec.sigs()[n..].to_vec(),
                vec![SENTINEL],
                "sent {from}, expected it dropped"
            );
        }
    }
}

fn rewrite_flags(mode: Mode) {
    let dir = TestDir::new("rewrite");
    let (init, rec) = start_recorder(
        mode,
        &dir,
        &[
            "--rewrite",
            "TERM:QUIT",
            "-r",
            "usr1:NONE",
            "-r",
            "SIGHUP:sigusr2",
            "-r",
            "28:Int",
            "-r",
            "RTMIN+3:RTMAX-2",
            "-r",
            "ALRM:0,SigUrg:rtmin",
        ],
        &[],
    );
    expect_translation(&init, &rec, libc::SIGTERM, Some(libc::SIGQUIT));
    expect_translation(&init, &rec, libc::SIGUSR1, None);
    expect_translation(&init, &rec, libc::SIGHUP, Some(libc::SIGUSR2));
    expect_translation(&init, &rec, libc::SIGWINCH, Some(libc::SIGINT));
    expect_translation(&init, &rec, 37, Some(62));
    expect_translation(&init, &rec, libc::SIGALRM, None);
    expect_translation(&init, &rec, libc::SIGURG, Some(34));
    // not rewritten: passes unchanged
    expect_translation(&init, &rec, libc::SIGUSR2, Some(libc::SIGUSR2));
    finish_by_killing_child(init);
}
both_modes!(
    rewrite_translates_and_drops_by_name_number_and_rt,
    rewrite_flags
);

#[test]
fn rewrite_from_env_comma_list() {
    let dir = TestDir::new("rewrite-env");
    let (init, rec) = start_recorder(
        Mode::Subreaper,
        &dir,
        &[],
        &[("GRACE_INIT_REWRITE", "TERM:QUIT,HUP:USR1")],
    );
    expect_translation(&init, &rec, libc::SIGTERM, Some(libc::SIGQUIT));
    expect_translation(&init, &rec, libc::SIGHUP, Some(libc::SIGUSR1));
    finish_by_killing_child(init);
}

#[test]
fn rewrite_flag_wins_over_env() {
    let dir = TestDir::new("rewrite-flag-wins");
    let (init, rec) = start_recorder(
        Mode::Subreaper,
        &dir,
        &["-r", "TERM:INT"],
        &[("GRACE_INIT_REWRITE", "TERM:QUIT")],
    );
    expect_translation(&init, &rec, libc::SIGTERM, Some(libc::SIGINT));
    finish_by_killing_child(init);
}

/// Pitfalls 1 and 4: a TERM sent as soon as grace-init has blocked (or caught) it, typically
/// before the child exists or has its own group, still reaches the child (which dies of it).
fn early_signal_not_lost(mode: Mode) {
    let dir = TestDir::new("early");
    for round in 0..6 {
        let mut init = Init::start(mode, &dir, &[probe(), "sleep".into(), "30".into()]);
        let gi = init.pid();
        let start = std::time::Instant::now();
        loop {
            let hex = |f: &str| {
                proc_status_field(gi, f)
                    .and_then(|v| u64::from_str_radix(&v, 16).ok())
                    .unwrap_or(0)
            };
            // While grace-init sleeps in rt_sigtimedwait the kernel shows the waited-for signals
            // as unblocked, so that state counts as "blocked" too.
            let in_sigtimedwait = std::fs::read_to_string(format!("/proc/{gi}/syscall"))
                .map(|s| s.split_whitespace().next() == Some("128"))
                .unwrap_or(false);
            if in_sigtimedwait
                || (hex("SigBlk") | hex("SigCgt")) & sigmask_of(&[libc::SIGTERM]) != 0
            {
                break;
            }
            assert!(
                start.elapsed() < T,
                "round {round}: grace-init never blocked or caught SIGTERM: {:?}; stderr:\n{}",
                stat(gi),
                init.stderr()
            );
            std::thread::yield_now();
        }
        init.signal(libc::SIGTERM);
        let e = init.wait(Duration::from_secs(15));
        assert_eq!(
            e.code,
            Some(143),
            "round {round}: {e:?}; stderr:\n{}",
            init.stderr()
        );
    }
}
both_modes!(term_right_after_start_reaches_child, early_signal_not_lost);
