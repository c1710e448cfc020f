//! Orphan reaping: orphans are re-parented to grace-init (PID 1 or child subreaper) and reaped,
//! even when SIGCHLD coalesces; the main child's exit is noticed in the middle of a storm.
#[macro_use]
mod common;

use common::*;
use std::time::Duration;

const ORPHANS: usize = 1000;

fn orphan_storm(mode: Mode) {
    let dir = TestDir::new("orphans");
    let ppids = dir.file("ppids");
    let mut init = Init::start(
        mode,
        &dir,
        &[
            probe(),
            "orphans".into(),
            ORPHANS.to_string(),
            ppids.display().to_string(),
        ],
    );
    let gi = init.pid();
    let main = init.child_pid();
    let done = dir.file("ppids.done");
    assert!(
        wait_file(&done, Duration::from_secs(90)),
        "probe never finished forking"
    );
    let lines = wait_until(Duration::from_secs(30), || {
        let s = std::fs::read_to_string(&ppids).unwrap_or_default();
        let v: Vec<i32> = s.lines().filter_map(|l| l.trim().parse().ok()).collect();
        (v.len() >= ORPHANS).then_some(v)
    })
    .unwrap_or_else(|| panic!("not every orphan reported its new parent"));
    // Orphans must be re-parented to grace-init: PID 1 in its namespace, or (as a subreaper)
    // grace-init itself, never the system init.
    let expected = if mode == Mode::Pid1 { 1 } else { gi };
    let wrong: Vec<&i32> = lines.iter().filter(|p| **p != expected).collect();
    assert!(
        wrong.is_empty(),
        "{} of {} orphans were re-parented to someone else than grace-init ({expected}): e.g. {:?}",
        wrong.len(),
        lines.len(),
        &wrong[..wrong.len().min(5)]
    );
    // Every orphan has exited by itself; grace-init must have reaped them all (no zombies),
    // while it still runs.
    let leftover = wait_until(Duration::from_secs(20), || {
        let kids: Vec<Stat> = children_of(gi)
            .into_iter()
            .filter(|s| s.pid != main)
            .collect();
        kids.is_empty().then_some(())
    });
    if leftover.is_none() {
        let kids: Vec<Stat> = children_of(gi)
            .into_iter()
            .filter(|s| s.pid != main)
            .collect();
        let zombies = kids.iter().filter(|s| s.state == 'Z').count();
        panic!(
            "{} processes left under grace-init, {zombies} of them zombies; stderr:\n{}",
            kids.len(),
            init.stderr()
        );
    }
    assert!(
        init.try_exit().is_none(),
        "grace-init exited early: {:?}",
        init.try_exit()
    );
    let zombies = children_of(gi).iter().filter(|s| s.state == 'Z').count();
    assert_eq!(zombies, 0);
    init.signal(libc::SIGTERM);
    assert_eq!(init.wait_code(T), 143, "stderr:\n{}", init.stderr());
}
both_modes!(orphan_storm_1000_leaves_no_zombies, orphan_storm);

/// Pitfall 2: the main child exits while hundreds of orphans exit around it (coalesced SIGCHLD):
/// grace-init must still notice and exit with the main child's status.
fn main_exit_during_storm(mode: Mode) {
    let dir = TestDir::new("storm-exit");
    let ppids = dir.s("ppids");
    let mut init = Init::start(
        mode,
        &dir,
        &[
            probe(),
            "orphans".into(),
            "300".into(),
            ppids,
            "--linger-ms".into(),
            "0".into(),
        ],
    );
    let e = init.wait(Duration::from_secs(40));
    assert_eq!(e.code, Some(0), "{e:?}; stderr:\n{}", init.stderr());
}
both_modes!(
    main_child_exit_noticed_during_orphan_storm,
    main_exit_during_storm
);
