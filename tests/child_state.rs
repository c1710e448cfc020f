//! What the child starts with: the caller's signal mask and ignored set (not grace-init's),
//! SIGPIPE default, the caller's fds and cwd, its own process group; grace-init drops the
//! inherited fds and sits in `/`.
#[macro_use]
mod common;

use common::*;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::time::Duration;

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim(), 16).unwrap()
}

fn callers_signal_state_restored(mode: Mode) {
    let dir = TestDir::new("sigstate");
    let out = dir.file("status");
    let blocked = [libc::SIGUSR1, libc::SIGWINCH, 40];
    let list = blocked
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut init = Init::start_with(
        mode,
        &dir,
        &[
            probe(),
            "exec-with".into(),
            "--reset".into(),
            "--block".into(),
            list,
            "--ignore".into(),
            "1".into(),
            "--".into(),
        ],
        &[probe(), "status".into(), out.display().to_string()],
        |_| {},
    );
    assert_eq!(init.wait_code(T), 0, "stderr:\n{}", init.stderr());
    let kvs = read_kv(&out);
    let blk = hex(kv(&kvs, "start_blk"));
    let ign = hex(kv(&kvs, "start_ign"));
    assert_eq!(
        blk,
        sigmask_of(&blocked),
        "child's blocked mask {blk:016x} is not the caller's"
    );
    assert_eq!(
        ign,
        sigmask_of(&[libc::SIGHUP]),
        "child's ignored set {ign:016x} is not the caller's (HUP only)"
    );
    assert_eq!(
        ign & sigmask_of(&[libc::SIGPIPE]),
        0,
        "SIGPIPE ignored in the child"
    );
    assert_eq!(
        blk & sigmask_of(&[libc::SIGTERM, libc::SIGINT, libc::SIGCHLD]),
        0,
        "child got grace-init's blocked set"
    );
}
both_modes!(
    child_gets_callers_mask_and_ignored_set,
    callers_signal_state_restored
);

fn plain_signal_state(mode: Mode) {
    let dir = TestDir::new("sigstate-plain");
    // Baseline: what a command started directly by this test (no grace-init) starts with.
    let base = dir.file("baseline");
    assert_eq!(
        run_plain(
            mode,
            &[probe(), "status".into(), base.display().to_string()]
        )
        .code,
        Some(0)
    );
    let base = read_kv(&base);
    let (base_blk, base_ign) = (hex(kv(&base, "start_blk")), hex(kv(&base, "start_ign")));
    let out = dir.file("status");
    let mut init = Init::start(
        mode,
        &dir,
        &[probe(), "status".into(), out.display().to_string()],
    );
    assert_eq!(init.wait_code(T), 0, "stderr:\n{}", init.stderr());
    let kvs = read_kv(&out);
    let (blk, ign) = (hex(kv(&kvs, "start_blk")), hex(kv(&kvs, "start_ign")));
    assert_eq!(
        blk, base_blk,
        "child's blocked mask {blk:016x} differs from the caller's {base_blk:016x}"
    );
    assert_eq!(
        ign, base_ign,
        "child's ignored set {ign:016x} differs from the caller's {base_ign:016x}"
    );
    let job = sigmask_of(&[
        libc::SIGPIPE,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGTSTP,
        libc::SIGTERM,
    ]);
    assert_eq!(
        (blk | ign) & job,
        0,
        "PIPE/TTIN/TTOU/TSTP/TERM blocked or ignored in the child"
    );
}
both_modes!(
    child_starts_with_nothing_blocked_or_ignored,
    plain_signal_state
);

fn fds_and_cwd(mode: Mode) {
    let dir = TestDir::new("fds");
    let out = dir.file("status");
    let marker5 = dir.file("marker5");
    let marker7 = dir.file("marker7");
    let f5 = std::fs::File::create(&marker5).unwrap();
    let f7 = std::fs::File::create(&marker7).unwrap();
    // High close-on-exec copies, so dup2 onto 5 and 7 can neither be a no-op nor clobber.
    let hi = |fd: i32| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
    let (raw5, raw7) = (hi(f5.as_raw_fd()), hi(f7.as_raw_fd()));
    assert!(raw5 >= 100 && raw7 >= 100);
    let cwd = dir.path.clone();
    let init = Init::start_with(
        mode,
        &dir,
        &[] as &[&str],
        &[
            probe(),
            "status".into(),
            out.display().to_string(),
            "--linger-ms".into(),
            "30000".into(),
        ],
        |c| {
            c.current_dir(&cwd);
            unsafe {
                c.pre_exec(move || {
                    // dup2 leaves the new fds without FD_CLOEXEC: they are inherited.
                    if libc::dup2(raw5, 5) < 0 || libc::dup2(raw7, 7) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
    );
    assert!(
        wait_file(&out, T),
        "child never wrote its status; stderr:\n{}",
        init.stderr()
    );
    let kvs = read_kv(&out);
    let mut want = vec![0, 1, 2, 5, 7];
    want.extend(
        inherited_fds()
            .into_iter()
            .filter(|fd| *fd != 5 && *fd != 7),
    );
    want.sort();
    let want = want
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(kv(&kvs, "fds"), want, "child's fds: {kvs:?}");
    let fd5 = kvs
        .iter()
        .find(|(k, v)| k == "fd" && v.starts_with("5 "))
        .unwrap();
    assert!(fd5.1.ends_with("marker5"), "fd 5 in child is {}", fd5.1);
    let child_cwd = std::fs::canonicalize(kv(&kvs, "cwd")).unwrap();
    assert_eq!(
        child_cwd,
        std::fs::canonicalize(&dir.path).unwrap(),
        "child's cwd is not the caller's"
    );

    let gi = init.pid();
    let held: Vec<String> = std::fs::read_dir(format!("/proc/{gi}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        !held
            .iter()
            .any(|p| p.contains("marker5") || p.contains("marker7")),
        "grace-init still holds the inherited fds after spawning: {held:?}"
    );
    let init_cwd = std::fs::read_link(format!("/proc/{gi}/cwd")).unwrap();
    assert_eq!(init_cwd, std::path::PathBuf::from("/"), "grace-init's cwd");
    drop(f5);
    drop(f7);
    unsafe {
        libc::close(raw5);
        libc::close(raw7);
    }
    let mut init = init;
    init.signal(libc::SIGTERM);
    assert_eq!(init.wait_code(T), 143);
}
both_modes!(
    fds_passed_to_child_closed_in_init_and_init_cwd_is_root,
    fds_and_cwd
);

fn own_process_group(mode: Mode) {
    let dir = TestDir::new("pgrp");
    let out = dir.file("status");
    let mut init = Init::start(
        mode,
        &dir,
        &[
            probe(),
            "status".into(),
            out.display().to_string(),
            "--linger-ms".into(),
            "30000".into(),
        ],
    );
    assert!(wait_file(&out, T));
    let gi = stat(init.pid()).unwrap();
    let child = stat(init.child_pid()).unwrap();
    assert_eq!(
        child.pgrp, child.pid,
        "child is not a process group leader: {child:?}"
    );
    assert_ne!(child.pgrp, gi.pgrp, "child shares grace-init's group");
    assert_eq!(child.ppid, gi.pid);
    let kvs = read_kv(&out);
    assert_eq!(kv(&kvs, "pid"), kv(&kvs, "pgid"));
    if mode == Mode::Pid1 {
        assert_eq!(
            kv(&kvs, "ppid"),
            "1",
            "grace-init is not PID 1 in the namespace"
        );
    }
    init.signal(libc::SIGTERM);
    assert_eq!(init.wait_code(Duration::from_secs(20)), 143);
}
both_modes!(child_runs_in_its_own_process_group, own_process_group);
