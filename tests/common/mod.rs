//! Shared helpers for the grace-init integration tests.
#![allow(dead_code)]

pub mod containers;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use std::os::unix::process::ExitStatusExt;

// ---------------------------------------------------------------- binaries

pub fn grace_init_bin() -> PathBuf {
    match std::env::var_os("GRACE_INIT_TEST_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_grace-init")),
    }
}

pub fn probe_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/probe");
    assert!(
        p.exists(),
        "probe helper not built at {} (cargo test builds it)",
        p.display()
    );
    p
}

pub fn probe() -> String {
    probe_bin().display().to_string()
}

// ---------------------------------------------------------------- modes

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// grace-init is PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`).
    Pid1,
    /// grace-init is a plain child of the test, not PID 1 (must act as a child subreaper).
    Subreaper,
}

fn ns_check() -> &'static Result<(), String> {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    CHECK.get_or_init(|| {
        match Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child", "true"])
            .stdin(Stdio::null())
            .output()
        {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "`unshare --pid --fork --mount-proc true` failed: {:?} {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("cannot run unshare: {e}")),
        }
    })
}

/// True when the mode can run here. PID-namespace tests fail under CI=true when namespaces are
/// unavailable, and are skipped (with a message) elsewhere.
pub fn supported(mode: Mode) -> bool {
    if mode == Mode::Subreaper {
        return true;
    }
    match ns_check() {
        Ok(()) => true,
        Err(why) => {
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("PID namespaces are required under CI=true: {why}");
            }
            eprintln!("SKIPPED (no PID namespace support): {why}");
            false
        }
    }
}

/// Generates `mod $name { #[test] fn pid1(); #[test] fn subreaper(); }` calling `$body(mode)`.
#[allow(unused_macros)]
macro_rules! both_modes {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn pid1() {
                if $crate::common::supported($crate::common::Mode::Pid1) {
                    super::$body($crate::common::Mode::Pid1);
                }
            }
            #[test]
            fn subreaper() {
                super::$body($crate::common::Mode::Subreaper);
            }
        }
    };
}

// ---------------------------------------------------------------- temp dirs

pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "grace-init-test-{}-{}-{}",
            name,
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TestDir { path }
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
    pub fn s(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            eprintln!("test files kept in {}", self.path.display());
        }
    }
}

// ---------------------------------------------------------------- time

pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Poll `f` every few ms until it returns Some or the timeout passes.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

// ---------------------------------------------------------------- /proc

#[derive(Clone, Debug)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
}

pub fn stat(pid: i32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
    Some(Stat {
        pid,
        comm,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
    })
}

pub fn all_procs() -> Vec<Stat> {
    let mut v = vec![];
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) {
                if let Some(st) = stat(pid) {
                    v.push(st);
                }
            }
        }
    }
    v
}

pub fn children_of(pid: i32) -> Vec<Stat> {
    all_procs().into_iter().filter(|s| s.ppid == pid).collect()
}

pub fn descendants_of(pid: i32) -> Vec<i32> {
    let procs = all_procs();
    let mut out = vec![];
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for s in procs.iter().filter(|s| s.ppid == p) {
            if !out.contains(&s.pid) {
                out.push(s.pid);
                todo.push(s.pid);
            }
        }
    }
    out
}

pub fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some(s) if s.state != 'Z' && s.state != 'X')
}

pub fn exists(pid: i32) -> bool {
    stat(pid).is_some()
}

pub fn proc_status_field(pid: i32, field: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .map(|l| l[field.len() + 1..].trim().to_string())
}

pub fn sigmask_of(sigs: &[i32]) -> u64 {
    sigs.iter().fold(0u64, |m, s| m | (1u64 << (s - 1)))
}

pub fn kill(pid: i32, sig: i32) -> bool {
    assert!(pid > 0, "refusing to signal pid {pid}");
    unsafe { libc::kill(pid, sig) == 0 }
}

// ---------------------------------------------------------------- exit

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// exit code, if it exited normally
    pub code: Option<i32>,
    /// signal, if it was killed by one (in Pid1 mode: unshare re-raises grace-init's death signal)
    pub signal: Option<i32>,
}

impl From<ExitStatus> for Exit {
    fn from(s: ExitStatus) -> Exit {
        Exit {
            code: s.code(),
            signal: s.signal(),
        }
    }
}

// ---------------------------------------------------------------- grace-init under test

pub struct Init {
    child: Child,
    pub mode: Mode,
    out: PathBuf,
    err: PathBuf,
    pid: OnceLock<i32>,
    exit: Option<Exit>,
    pub started: Instant,
}

impl Init {
    /// Start `grace-init ARGS...` with stdout/stderr captured to files in `dir`.
    pub fn start<S: AsRef<OsStr>>(mode: Mode, dir: &TestDir, args: &[S]) -> Init {
        Init::start_with(mode, dir, &[] as &[&str], args, |_| {})
    }

    /// Like `start`, with `wrapper` put before the grace-init binary (it must exec grace-init)
    /// and `customize` applied to the Command (env, stdio, pre_exec...).
    /// Starts grace-init with `args` and these variables added to its environment.
    pub fn start_with_env<S: AsRef<OsStr>>(
        mode: Mode,
        dir: &TestDir,
        args: &[S],
        env: &[(&str, &str)],
    ) -> Init {
        Init::start_with(mode, dir, &[] as &[&str], args, |c| {
            for (k, v) in env {
                c.env(k, v);
            }
        })
    }

    pub fn start_with<W: AsRef<OsStr>, S: AsRef<OsStr>>(
        mode: Mode,
        dir: &TestDir,
        wrapper: &[W],
        args: &[S],
        customize: impl FnOnce(&mut Command),
    ) -> Init {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let out = dir.file(&format!("init-{n}.stdout"));
        let err = dir.file(&format!("init-{n}.stderr"));
        let mut argv: Vec<OsString> = wrapper.iter().map(|w| w.as_ref().to_owned()).collect();
        argv.push(grace_init_bin().into_os_string());
        argv.extend(args.iter().map(|a| a.as_ref().to_owned()));
        let mut cmd = match mode {
            Mode::Pid1 => {
                let mut c = Command::new("unshare");
                c.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
                    .args(&argv);
                c
            }
            Mode::Subreaper => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap());
        // Options come only from what each test sets, never from the environment of the run.
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str() {
                if k.starts_with("GRACE_INIT_") && k != "GRACE_INIT_TEST_BIN" {
                    cmd.env_remove(k);
                }
            }
        }
        customize(&mut cmd);
        let child = cmd.spawn().expect("spawn grace-init");
        Init {
            child,
            mode,
            out,
            err,
            pid: OnceLock::new(),
            exit: None,
            started: Instant::now(),
        }
    }

    /// Host pid of the grace-init process (waits until it has exec'd grace-init).
    pub fn pid(&self) -> i32 {
        *self.pid.get_or_init(|| {
            let want = std::fs::canonicalize(grace_init_bin()).unwrap();
            let top = self.child.id() as i32;
            let found = wait_until(Duration::from_secs(20), || {
                let cand = match self.mode {
                    Mode::Subreaper => top,
                    Mode::Pid1 => children_of(top).first()?.pid,
                };
                runs_binary(cand, &want).then_some(cand)
            });
            found.unwrap_or_else(|| {
                panic!("grace-init process not found; stderr: {}", self.stderr())
            })
        })
    }

    /// Host pid of grace-init's (first) child.
    pub fn child_pid(&self) -> i32 {
        let gi = self.pid();
        wait_until(Duration::from_secs(20), || {
            children_of(gi).first().map(|s| s.pid)
        })
        .unwrap_or_else(|| panic!("grace-init has no child; stderr: {}", self.stderr()))
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.pid();
        assert!(
            kill(pid, sig),
            "kill({pid}, {sig}) failed: {}",
            std::io::Error::last_os_error()
        );
    }

    pub fn try_exit(&mut self) -> Option<Exit> {
        if self.exit.is_none() {
            if let Some(st) = self.child.try_wait().unwrap() {
                self.exit = Some(st.into());
            }
        }
        self.exit
    }

    /// Wait for grace-init to exit; panics (after cleaning up) on timeout.
    pub fn wait(&mut self, timeout: Duration) -> Exit {
        match wait_until(timeout, || self.try_exit()) {
            Some(e) => e,
            None => {
                let err = self.stderr();
                self.cleanup();
                panic!("grace-init did not exit within {timeout:?}; stderr:\n{err}");
            }
        }
    }

    /// Wait and return the exit code, panicking with stderr if it was killed by a signal.
    pub fn wait_code(&mut self, timeout: Duration) -> i32 {
        let e = self.wait(timeout);
        match e.code {
            Some(c) => c,
            None => panic!(
                "grace-init was killed by signal {:?}; stderr:\n{}",
                e.signal,
                self.stderr()
            ),
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.out).unwrap_or_default()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.err).unwrap_or_default()).into_owned()
    }

    pub fn top_pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn cleanup(&mut self) {
        let top = self.child.id() as i32;
        if self.exit.is_none() {
            let mut victims = descendants_of(top);
            victims.push(top);
            for p in victims {
                kill(p, libc::SIGKILL);
            }
            let _ = self.child.wait();
            self.exit = Some(Exit {
                code: None,
                signal: Some(9),
            });
        }
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Whether process `pid` runs the executable `want` (a canonical path): natively, or through an
/// emulator such as qemu-user (`GRACE_INIT_TEST_BIN` set to a foreign binary run by binfmt_misc),
/// whose /proc/PID/exe is the emulator and whose command line is `EMULATOR BINARY ARGS...`.
pub fn runs_binary(pid: i32, want: &Path) -> bool {
    if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == want) {
        return true;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let binary = cmdline.split(|&b| b == 0).nth(1).unwrap_or_default();
    std::str::from_utf8(binary)
        .is_ok_and(|b| !b.is_empty() && std::fs::canonicalize(b).is_ok_and(|b| b == want))
}

/// Run `argv` (not grace-init) the way Init runs grace-init (under unshare for Pid1), with
/// stdin null and stdout/stderr discarded: a baseline of what a command started by the test sees.
pub fn run_plain<S: AsRef<OsStr>>(mode: Mode, argv: &[S]) -> Exit {
    let mut cmd = match mode {
        Mode::Pid1 => {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
                .args(argv);
            c
        }
        Mode::Subreaper => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.status().expect("spawn").into()
}

/// Fds >= 3 of this test process that are not close-on-exec (inherited from whoever started the
/// test run): every command the test spawns inherits them.
pub fn inherited_fds() -> Vec<i32> {
    let mut v = vec![];
    for fd in 3..4096 {
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            v.push(fd);
        }
    }
    v
}

/// Run grace-init to completion (for quick commands): (exit, stdout, stderr).
pub fn run<S: AsRef<OsStr>>(mode: Mode, args: &[S]) -> (Exit, String, String) {
    run_env(mode, args, &[])
}

pub fn run_env<S: AsRef<OsStr>>(
    mode: Mode,
    args: &[S],
    env: &[(&str, &str)],
) -> (Exit, String, String) {
    let dir = TestDir::new("run");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut init = Init::start_with(mode, &dir, &[] as &[&str], args, |c| {
        for (k, v) in &env {
            c.env(k, v);
        }
    });
    let e = init.wait(Duration::from_secs(20));
    (e, init.stdout(), init.stderr())
}

// ---------------------------------------------------------------- signal recordings

/// A file written by `probe record`: one "SIG MONO_NS" line per received signal.
#[derive(Clone)]
pub struct Rec {
    pub path: PathBuf,
}

impl Rec {
    pub fn new(dir: &TestDir, name: &str) -> Rec {
        Rec {
            path: dir.file(name),
        }
    }
    pub fn arg(&self) -> String {
        self.path.display().to_string()
    }
    pub fn grand(&self) -> Rec {
        Rec {
            path: PathBuf::from(format!("{}.grand", self.path.display())),
        }
    }
    pub fn entries(&self) -> Vec<(i32, u64)> {
        let s = std::fs::read_to_string(&self.path).unwrap_or_default();
        s.lines()
            .filter(|l| l.ends_with(|c: char| c.is_ascii_digit()))
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
            })
            .collect()
    }
    pub fn sigs(&self) -> Vec<i32> {
        self.entries().into_iter().map(|e| e.0).collect()
    }
    pub fn len(&self) -> usize {
        self.entries().len()
    }
    /// Wait for the probe's `.ready` file; returns the pid it wrote (in its own namespace).
    pub fn wait_ready(&self, timeout: Duration) -> i32 {
        let ready = PathBuf::from(format!("{}.ready", self.path.display()));
        wait_until(timeout, || {
            std::fs::read_to_string(&ready).ok()?.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("{} never became ready", self.path.display()))
    }
    /// Timestamp of the first `sig` recorded at index >= `from`.
    pub fn find_from(&self, from: usize, sig: i32) -> Option<u64> {
        self.entries()
            .into_iter()
            .skip(from)
            .find(|e| e.0 == sig)
            .map(|e| e.1)
    }
    pub fn wait_sig_from(&self, from: usize, sig: i32, timeout: Duration) -> Option<u64> {
        wait_until(timeout, || self.find_from(from, sig))
    }
    pub fn wait_sig(&self, sig: i32, timeout: Duration) -> Option<u64> {
        self.wait_sig_from(0, sig, timeout)
    }
    pub fn has(&self, sig: i32) -> bool {
        self.sigs().contains(&sig)
    }
}

pub fn read_kv(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

pub fn kv<'a>(kvs: &'a [(String, String)], key: &str) -> &'a str {
    kvs.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("key {key} missing in {kvs:?}"))
}

pub fn wait_file(path: &Path, timeout: Duration) -> bool {
    wait_until(timeout, || path.exists().then_some(())).is_some()
}

pub const T: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- root-only tests

/// True when running as root. Otherwise prints why the test is skipped, or fails under CI=true
/// (CI runs as root, so a missing capability there is a broken set-up, not a reason to pass).
pub fn require_root(why: &str) -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("this test needs root under CI=true: {why}");
    }
    eprintln!("SKIPPED (not root): {why}");
    false
}

// ---------------------------------------------------------------- pseudo-terminals

/// The master side of a pseudo-terminal, and everything read from it so far.
pub struct Pty {
    pub master: std::os::fd::OwnedFd,
    pub seen: String,
}

impl Pty {
    /// A new pty: (master wrapper, slave fd to hand to the program under test).
    pub fn open() -> (Pty, std::os::fd::OwnedFd) {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        (
            Pty {
                master: pty.master,
                seen: String::new(),
            },
            pty.slave,
        )
    }

    /// Types `s` (as if at the keyboard).
    pub fn write(&self, s: &str) {
        use std::os::fd::AsRawFd;
        let n = unsafe { libc::write(self.master.as_raw_fd(), s.as_ptr() as *const _, s.len()) };
        assert_eq!(n as usize, s.len(), "write to pty master");
    }

    /// Reads whatever arrives within `timeout` into `seen`.
    pub fn read_for(&mut self, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            self.read_once(timeout.saturating_sub(start.elapsed()));
        }
    }

    fn read_once(&mut self, left: Duration) {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(200) as i32) };
        if r > 0 {
            let mut buf = [0u8; 4096];
            let n = unsafe {
                libc::read(
                    self.master.as_raw_fd(),
                    buf.as_mut_ptr() as *mut _,
                    buf.len(),
                )
            };
            if n > 0 {
                self.seen
                    .push_str(&String::from_utf8_lossy(&buf[..n as usize]));
            } else {
                sleep_ms(20); // EIO once every slave fd is closed
            }
        }
    }

    /// Whether `needle` shows on the screen within `timeout`.
    pub fn shows(&mut self, needle: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.seen.contains(needle) {
                return true;
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return false;
            }
            self.read_once(left);
        }
    }

    /// Like `shows`, panicking with the screen and `context()` when it does not.
    pub fn expect(&mut self, needle: &str, timeout: Duration, context: impl Fn() -> String) {
        if !self.shows(needle, timeout) {
            panic!(
                "`{needle}` not shown on the terminal within {timeout:?}; screen:\n{}\n{}",
                self.seen,
                context()
            );
        }
    }
}
