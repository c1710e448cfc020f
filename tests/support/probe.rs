//! Test helper for the grace-init integration tests (std + libc only).
//!
//! Subcommands (all signal numbers are raw numbers; 1..=64):
//!   record FILE [--exit-on SIG]... [--exit-code N] [--exit-after-ms MS] [--ignore SIG]...
//!               [--default SIG]... [--setsid] [--pdeathsig] [--timeout-s S]
//!               [--grandchild] [--grand-args "ARGS"]
//!       Blocks every signal except KILL/STOP/CHLD (and those given with --ignore/--default) and
//!       waits for them with rt_sigtimedwait (raw syscalls, so musl's reserved 32..34 work too).
//!       Appends "SIG MONOTONIC_NS\n" to FILE for each received signal. Writes FILE.ready (its pid)
//!       once set up. With --grandchild, first starts `record FILE.grand GRAND-ARGS` (fork + exec
//!       of itself, same process group unless --setsid is in GRAND-ARGS) and waits for it to be
//!       ready. Exits with --exit-code on an --exit-on signal or after --exit-after-ms, 124 after
//!       --timeout-s (default 60).
//!   status OUT [--linger-ms MS] [--exit-code N]
//!       Writes the signal state it was started with (captured before Rust's runtime touches
//!       SIGPIPE), pid/ppid/pgid/sid, cwd and open fds to OUT, then sleeps (default dispositions).
//!   orphans N PPIDFILE [--linger-ms MS]
//!       Forks N children, each forks a grandchild and exits at once. Each grandchild waits until
//!       it has been re-parented, appends its new parent pid to PPIDFILE, sleeps 50 ms and exits.
//!       Then writes PPIDFILE.done and sleeps (default 60 s).
//!   exec-with [--reset] [--block LIST] [--ignore LIST] [--raise LIST] -- CMD ARGS...
//!       Sets exactly the blocked mask LIST (comma separated numbers), ignores LIST, resets
//!       SIGPIPE (with --reset: every signal) to default unless ignored, sends itself each signal
//!       of --raise LIST (kill(getpid()): pending at exec when blocked), and execs CMD.
//!   exit N | kill-self SIG | sleep SECS [READYFILE] | mark FILE CODE
//!   stamp FILE [--sleep-ms MS] [WORDS...]   (writes "MONO_NS\nWORD\n..." after sleeping)
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static START_BLOCKED: AtomicU64 = AtomicU64::new(0);
static START_IGNORED: AtomicU64 = AtomicU64::new(0);

#[repr(C)]
struct KSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Runs before main (and before Rust's runtime sets SIGPIPE to ignored): record the signal mask
/// and ignored set this process was started with.
extern "C" fn capture_start_state() {
    unsafe {
        let mut old: u64 = 0;
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut old as *mut u64,
            8usize,
        );
        START_BLOCKED.store(old, Ordering::SeqCst);
        let mut ign: u64 = 0;
        for sig in 1..=64i64 {
            let mut act = KSigaction {
                handler: 0,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            let r = libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KSigaction>(),
                &mut act as *mut KSigaction,
                8usize,
            );
            if r == 0 && act.handler == libc::SIG_IGN {
                ign |= 1u64 << (sig - 1);
            }
        }
        START_IGNORED.store(ign, Ordering::SeqCst);
    }
}

#[used]
#[link_section = ".init_array"]
static CAPTURE: extern "C" fn() = capture_start_state;

fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

fn set_mask(mask: u64) {
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    assert_eq!(r, 0, "rt_sigprocmask failed");
}

/// Set SIG_DFL or SIG_IGN with the raw syscall (works for 32..34 too; no handler, no restorer).
fn set_disposition(sig: i32, handler: usize) {
    let act = KSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig as i64,
            &act as *const KSigaction,
            std::ptr::null_mut::<KSigaction>(),
            8usize,
        );
    }
}

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn write_atomic(path: &Path, content: &str) {
    let tmp = PathBuf::from(format!("{}.tmp{}", path.display(), std::process::id()));
    std::fs::write(&tmp, content).expect("write tmp");
    std::fs::rename(&tmp, path).expect("rename");
}

fn wait_file(path: &Path, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn num(s: &str) -> i64 {
    s.parse()
        .unwrap_or_else(|_| die(&format!("not a number: {s}")))
}

fn die(msg: &str) -> ! {
    eprintln!("probe: {msg}");
    std::process::exit(250)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        die("no subcommand")
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "record" => record(rest),
        "status" => status(rest),
        "orphans" => orphans(rest),
        "exec-with" => exec_with(rest),
        "exit" => std::process::exit(num(&rest[0]) as i32),
        "kill-self" => kill_self(num(&rest[0]) as i32),
        "sleep" => {
            if let Some(ready) = rest.get(1) {
                write_atomic(Path::new(ready), &format!("{}\n", std::process::id()));
            }
            std::thread::sleep(Duration::from_secs_f64(rest[0].parse().unwrap()));
        }
        "mark" => {
            write_atomic(Path::new(&rest[0]), "marked\n");
            std::process::exit(num(&rest[1]) as i32);
        }
        "stamp" => stamp(rest),
        other => die(&format!("unknown subcommand {other}")),
    }
}

fn kill_self(sig: i32) -> ! {
    unsafe {
        // No core dumps for ABRT/SEGV: be quick and leave nothing behind.
        let lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &lim);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        set_disposition(sig, libc::SIG_DFL);
        set_mask(0);
        libc::kill(libc::getpid(), sig);
    }
    std::thread::sleep(Duration::from_secs(5));
    die("still alive after kill-self")
}

fn stamp(rest: &[String]) {
    let file = PathBuf::from(&rest[0]);
    let mut i = 1;
    if rest.get(1).map(String::as_str) == Some("--sleep-ms") {
        std::thread::sleep(Duration::from_millis(num(&rest[2]) as u64));
        i = 3;
    }
    let mut out = format!("{}\n", mono_ns());
    for w in &rest[i..] {
        out.push_str(w);
        out.push('\n');
    }
    write_atomic(&file, &out);
}

struct RecordCfg {
    file: PathBuf,
    exit_on: Vec<i32>,
    exit_code: i32,
    exit_after_ms: Option<u64>,
    /// Drain time: exit (with exit_code) this long after the first signal recorded.
    exit_after_signal_ms: Option<u64>,
    ignore: Vec<i32>,
    default: Vec<i32>,
    setsid: bool,
    pdeathsig: bool,
    timeout_s: u64,
    grandchild: bool,
    grand_args: Vec<String>,
}

fn record(rest: &[String]) {
    let mut cfg = RecordCfg {
        file: PathBuf::from(&rest[0]),
        exit_on: vec![],
        exit_code: 0,
        exit_after_ms: None,
        exit_after_signal_ms: None,
        ignore: vec![],
        default: vec![],
        setsid: false,
        pdeathsig: false,
        timeout_s: 60,
        grandchild: false,
        grand_args: vec![],
    };
    let mut i = 1;
    while i < rest.len() {
        let a = rest[i].as_str();
        let mut val = || {
            i += 1;
            rest.get(i)
                .cloned()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a {
            "--exit-on" => cfg.exit_on.push(num(&val()) as i32),
            "--exit-code" => cfg.exit_code = num(&val()) as i32,
            "--exit-after-ms" => cfg.exit_after_ms = Some(num(&val()) as u64),
            "--exit-after-signal-ms" => cfg.exit_after_signal_ms = Some(num(&val()) as u64),
            "--ignore" => cfg.ignore.push(num(&val()) as i32),
            "--default" => cfg.default.push(num(&val()) as i32),
            "--timeout-s" => cfg.timeout_s = num(&val()) as u64,
            "--grand-args" => {
                cfg.grand_args = val().split_whitespace().map(String::from).collect();
                cfg.grandchild = true;
            }
            "--setsid" => cfg.setsid = true,
            "--pdeathsig" => cfg.pdeathsig = true,
            "--grandchild" => cfg.grandchild = true,
            other => die(&format!("record: unknown option {other}")),
        }
        i += 1;
    }
    let start = Instant::now();
    if cfg.setsid {
        unsafe { libc::setsid() };
    }
    if cfg.pdeathsig {
        unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
    }
    let mut mask = 0u64;
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        if cfg.ignore.contains(&sig) {
            set_disposition(sig, libc::SIG_IGN);
            continue;
        }
        set_disposition(sig, libc::SIG_DFL);
        if sig == libc::SIGCHLD || cfg.default.contains(&sig) {
            continue;
        }
        mask |= bit(sig);
    }
    set_mask(mask);

    if cfg.grandchild {
        let gfile = format!("{}.grand", cfg.file.display());
        let exe = CString::new(
            std::fs::read_link("/proc/self/exe")
                .unwrap()
                .as_os_str()
                .as_bytes(),
        )
        .unwrap();
        let mut argv: Vec<CString> = vec![
            CString::new("probe").unwrap(),
            CString::new("record").unwrap(),
            CString::new(gfile.clone()).unwrap(),
        ];
        argv.extend(
            cfg.grand_args
                .iter()
                .map(|a| CString::new(a.as_str()).unwrap()),
        );
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::execv(exe.as_ptr(), ptrs.as_ptr());
                libc::_exit(251);
            }
        }
        if !wait_file(
            Path::new(&format!("{gfile}.ready")),
            Duration::from_secs(20),
        ) {
            die("grandchild not ready");
        }
    }

    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.file)
        .expect("open record file");
    write_atomic(
        Path::new(&format!("{}.ready", cfg.file.display())),
        &format!("{}\n", std::process::id()),
    );

    let deadline = Duration::from_secs(cfg.timeout_s);
    let mut first_signal_at: Option<Instant> = None;
    loop {
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let sig = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &mask as *const u64,
                &mut info as *mut libc::siginfo_t,
                &ts as *const libc::timespec,
                8usize,
            )
        } as i32;
        if sig > 0 {
            let line = format!("{} {}\n", sig, mono_ns());
            out.write_all(line.as_bytes()).expect("write record");
            if cfg.exit_on.contains(&sig) {
                std::process::exit(cfg.exit_code);
            }
            first_signal_at.get_or_insert_with(Instant::now);
        }
        if let (Some(ms), Some(at)) = (cfg.exit_after_signal_ms, first_signal_at) {
            if at.elapsed() >= Duration::from_millis(ms) {
                std::process::exit(cfg.exit_code);
            }
        }
        if let Some(ms) = cfg.exit_after_ms {
            if start.elapsed() >= Duration::from_millis(ms) {
                std::process::exit(cfg.exit_code);
            }
        }
        if start.elapsed() >= deadline {
            std::process::exit(124);
        }
    }
}

fn status(rest: &[String]) {
    // Scan fds first, before this process opens anything itself.
    let mut fds = vec![];
    for fd in 0..4096 {
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            fds.push(fd);
        }
    }
    let out = PathBuf::from(&rest[0]);
    let mut linger_ms = 0u64;
    let mut exit_code = 0;
    let mut i = 1;
    while i < rest.len() {
        match rest[i].as_str() {
            "--linger-ms" => {
                linger_ms = num(&rest[i + 1]) as u64;
                i += 1;
            }
            "--exit-code" => {
                exit_code = num(&rest[i + 1]) as i32;
                i += 1;
            }
            other => die(&format!("status: unknown option {other}")),
        }
        i += 1;
    }
    let mut s = String::new();
    s.push_str(&format!(
        "start_blk {:016x}\n",
        START_BLOCKED.load(Ordering::SeqCst)
    ));
    s.push_str(&format!(
        "start_ign {:016x}\n",
        START_IGNORED.load(Ordering::SeqCst)
    ));
    unsafe {
        s.push_str(&format!("pid {}\n", libc::getpid()));
        s.push_str(&format!("ppid {}\n", libc::getppid()));
        s.push_str(&format!("pgid {}\n", libc::getpgrp()));
        s.push_str(&format!("sid {}\n", libc::getsid(0)));
    }
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    s.push_str(&format!("cwd {cwd}\n"));
    let list: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
    s.push_str(&format!("fds {}\n", list.join(" ")));
    for fd in &fds {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        s.push_str(&format!("fd {fd} {target}\n"));
    }
    write_atomic(&out, &s);
    if linger_ms > 0 {
        std::thread::sleep(Duration::from_millis(linger_ms));
    }
    std::process::exit(exit_code);
}

fn orphans(rest: &[String]) {
    let n = num(&rest[0]);
    let file = CString::new(rest[1].as_str()).unwrap();
    let mut linger_ms = 60_000u64;
    if rest.get(2).map(String::as_str) == Some("--linger-ms") {
        linger_ms = num(&rest[3]) as u64;
    }
    for _ in 0..n {
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            die("fork failed");
        }
        if pid == 0 {
            unsafe {
                let me = libc::getpid();
                let gp = libc::fork();
                if gp == 0 {
                    // Grandchild: wait to be re-parented, then report the new parent.
                    let mut waited = 0;
                    while libc::getppid() == me && waited < 20_000 {
                        libc::usleep(2_000);
                        waited += 2;
                    }
                    let ppid = libc::getppid();
                    let mut buf = [0u8; 24];
                    let mut len = 0;
                    let mut digits = [0u8; 12];
                    let mut nd = 0;
                    let mut v = ppid as u32;
                    loop {
                        digits[nd] = b'0' + (v % 10) as u8;
                        nd += 1;
                        v /= 10;
                        if v == 0 {
                            break;
                        }
                    }
                    while nd > 0 {
                        nd -= 1;
                        buf[len] = digits[nd];
                        len += 1;
                    }
                    buf[len] = b'\n';
                    len += 1;
                    let fd = libc::open(
                        file.as_ptr(),
                        libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
                        0o644,
                    );
                    libc::write(fd, buf.as_ptr() as *const libc::c_void, len);
                    libc::close(fd);
                    libc::usleep(50_000);
                    libc::_exit(0);
                }
                libc::_exit(0);
            }
        }
        let mut st = 0;
        unsafe { libc::waitpid(pid, &mut st, 0) };
    }
    write_atomic(Path::new(&format!("{}.done", rest[1])), "done\n");
    std::thread::sleep(Duration::from_millis(linger_ms));
}

fn exec_with(rest: &[String]) {
    let mut block = 0u64;
    let mut ignore: Vec<i32> = vec![];
    let mut raise: Vec<i32> = vec![];
    let mut reset = false;
    let mut i = 0;
    let parse_list = |s: &str| -> Vec<i32> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(|x| num(x) as i32)
            .collect()
    };
    while i < rest.len() {
        match rest[i].as_str() {
            "--block" => {
                for s in parse_list(&rest[i + 1]) {
                    block |= bit(s);
                }
                i += 2;
            }
            "--ignore" => {
                ignore.extend(parse_list(&rest[i + 1]));
                i += 2;
            }
            "--raise" => {
                raise.extend(parse_list(&rest[i + 1]));
                i += 2;
            }
            "--reset" => {
                reset = true;
                i += 1;
            }
            "--" => {
                i += 1;
                break;
            }
            other => die(&format!("exec-with: unknown option {other}")),
        }
    }
    let cmd = &rest[i..];
    if cmd.is_empty() {
        die("exec-with: no command");
    }
    set_disposition(libc::SIGPIPE, libc::SIG_DFL);
    if reset {
        for s in 1..=64 {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                set_disposition(s, libc::SIG_DFL);
            }
        }
    }
    for s in &ignore {
        set_disposition(*s, libc::SIG_IGN);
    }
    set_mask(block);
    for s in &raise {
        unsafe { libc::kill(libc::getpid(), *s) };
    }
    let argv: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap())
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    unsafe { libc::execvp(argv[0].as_ptr(), ptrs.as_ptr()) };
    die(&format!("exec-with: exec {} failed", cmd[0]));
}
