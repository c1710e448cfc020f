//! bench-workload: the child processes and the timing loops behind `bench/run.sh`.
//!
//! Child modes (run under the init being measured):
//!   idle                      sleep until killed
//!   sigack                    block every signal, write 'R' to stdout, then write one byte (the signal
//!                             number) to stdout per signal received; exit 0 after SIGTERM
//!   ignore-term               ignore SIGTERM, write 'R' to stdout, sleep until killed
//!   orphans N [BATCH]         (as the init's child in a fresh PID namespace with /proc mounted)
//!                             create N short-lived orphans as fast as possible, wait until all are
//!                             reaped, print one line `RESULT {json}` on stdout
//!
//! Measuring modes (run by the orchestrator):
//!   spawn-time RUNS WARMUP CMD... [:: CMD...]...
//!                             posix_spawn + waitpid each command RUNS times, round-robin
//!                             interleaved (start rotated every round), stdout/stderr to /dev/null;
//!                             prints JSON with per-command wall-time statistics in ns
//!   sig-latency N ROUNDS PID:FD [PID:FD...]
//!                             send SIGUSR1 to each PID N times, one at a time, each time waiting for
//!                             the ack byte on its FD (targets interleaved round-robin); then ROUNDS
//!                             bursts of 5 distinct signals sent back to back; prints JSON
//!
//! Only libc calls between fork and _exit in the children of the orphan storm.

use std::ffi::CString;
use std::io::Write;
use std::time::{Duration, Instant};

fn die(msg: &str) -> ! {
    eprintln!("bench-workload: {msg}");
    std::process::exit(3)
}

fn arg_num<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| die(&format!("missing or bad {what}")))
}

fn write_byte(fd: i32, b: u8) {
    unsafe {
        libc::write(fd, &b as *const u8 as *const libc::c_void, 1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("idle") => loop {
            unsafe { libc::pause() };
        },
        Some("sigack") => sigack(),
        Some("ignore-term") => {
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            write_byte(1, b'R');
            loop {
                unsafe { libc::pause() };
            }
        }
        Some("orphans") => {
            let n: usize = arg_num(&args, 2, "N");
            let batch: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
            orphans(n, batch.max(1));
        }
        Some("spawn-time") => spawn_time(&args[2..]),
        Some("sig-latency") => sig_latency(&args[2..]),
        _ => {
            die("usage: bench-workload idle|sigack|ignore-term|orphans|spawn-time|sig-latency ...")
        }
    }
}

// ---------------------------------------------------------------- sigack

fn sigack() -> ! {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        write_byte(1, b'R');
        loop {
            let sig = libc::sigwaitinfo(&set, std::ptr::null_mut());
            if sig <= 0 {
                continue;
            }
            if sig == libc::SIGCHLD {
                continue;
            }
            write_byte(1, sig as u8);
            if sig == libc::SIGTERM {
                libc::_exit(0);
            }
        }
    }
}

// ---------------------------------------------------------------- orphan storm

/// (on-CPU ns from /proc/1/schedstat, utime+stime ticks, voluntary+involuntary ctxt switches)
fn init_cpu() -> (u64, u64, u64) {
    let sched = std::fs::read_to_string("/proc/1/schedstat").unwrap_or_default();
    let ns = sched
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string("/proc/1/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // after ')' field 0 is state (field 3 overall); utime/stime are fields 14/15 overall
    let ticks = f.get(11).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string("/proc/1/status").unwrap_or_default();
    let mut ctxt = 0;
    for line in status.lines() {
        if line.starts_with("voluntary_ctxt_switches")
            || line.starts_with("nonvoluntary_ctxt_switches")
        {
            ctxt += line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    (ns, ticks, ctxt)
}

/// Processes in this PID namespace other than PID 1 and us: (alive, zombies).
fn others() -> (usize, usize) {
    let me = std::process::id();
    let (mut alive, mut zombies) = (0, 0);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        die("cannot read /proc")
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == 1 || pid == me {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        match stat
            .rsplit_once(')')
            .and_then(|x| x.1.trim_start().chars().next())
        {
            Some('Z') => zombies += 1,
            Some(_) => alive += 1,
            None => {}
        }
    }
    (alive, zombies)
}

fn fork_retry() -> libc::pid_t {
    loop {
        let pid = unsafe { libc::fork() };
        if pid >= 0 {
            return pid;
        }
        // EAGAIN: too many processes; let the init catch up
        unsafe { libc::usleep(100) };
    }
}

fn orphans(n: usize, batch: usize) -> ! {
    if std::process::id() == 1 {
        die("orphans must run as the init's child, not as PID 1");
    }
    let (ns0, ticks0, ctxt0) = init_cpu();
    let t0 = Instant::now();
    let mut made = 0;
    while made < n {
        let b = batch.min(n - made);
        let middle = fork_retry();
        if middle == 0 {
            // middle: fork b children that exit at once, then exit so they become orphans
            unsafe {
                for _ in 0..b {
                    let mut g = libc::fork();
                    while g < 0 {
                        libc::usleep(100);
                        g = libc::fork();
                    }
                    if g == 0 {
                        libc::_exit(0);
                    }
                }
                libc::_exit(0);
            }
        }
        let mut st = 0;
        unsafe { libc::waitpid(middle, &mut st, 0) };
        made += b;
    }
    // The last orphan, the marker: its parent (a middle) hands us its pid and exits; it waits on a
    // pipe until we close our end, so it exits after all the others, at a time we see on a pidfd.
    let (mut hold, mut pidpipe) = ([0i32; 2], [0i32; 2]);
    unsafe {
        libc::pipe2(hold.as_mut_ptr(), libc::O_CLOEXEC);
        libc::pipe2(pidpipe.as_mut_ptr(), libc::O_CLOEXEC);
    }
    let middle = fork_retry();
    if middle == 0 {
        unsafe {
            libc::close(hold[1]);
            let marker = libc::fork();
            if marker == 0 {
                let mut b = 0u8;
                libc::read(hold[0], &mut b as *mut u8 as *mut libc::c_void, 1);
                libc::_exit(0);
            }
            libc::write(pidpipe[1], &marker as *const i32 as *const libc::c_void, 4);
            libc::_exit(0);
        }
    }
    let mut marker: libc::pid_t = 0;
    unsafe {
        libc::close(hold[0]);
        libc::close(pidpipe[1]);
        let mut st = 0;
        libc::waitpid(middle, &mut st, 0);
        libc::read(pidpipe[0], &mut marker as *mut i32 as *mut libc::c_void, 4);
    }
    if marker <= 0 {
        die("marker orphan not created");
    }
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, marker, 0) } as i32;
    if pidfd < 0 {
        die("pidfd_open failed");
    }
    let t_forked = Instant::now();
    unsafe { libc::close(hold[1]) }; // release the marker
    let mut p = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    if unsafe { libc::poll(&mut p, 1, 10_000) } != 1 {
        die("marker orphan did not exit");
    }
    let t_last_exit = Instant::now();
    // Spin until nothing but PID 1 and us is left (or 10 s pass).
    let mut t_reaped = None;
    let limit = Duration::from_secs(10);
    let (mut alive, mut zombies);
    loop {
        (alive, zombies) = others();
        let now = Instant::now();
        if alive == 0 && zombies == 0 {
            t_reaped = Some(now);
            break;
        }
        if now - t_forked > limit {
            break;
        }
        unsafe { libc::sched_yield() };
    }
    let (ns1, ticks1, ctxt1) = init_cpu();
    let us = |d: Duration| d.as_micros() as u64;
    let reap_lag = t_reaped
        .map(|t| us(t - t_last_exit).to_string())
        .unwrap_or_else(|| "null".into());
    let line = format!(
        "RESULT {{\"orphans\":{n},\"batch\":{batch},\"zombies_left\":{zombies},\"alive_left\":{alive},\
         \"storm_us\":{},\"reap_lag_us\":{reap_lag},\"init_cpu_ns\":{},\"init_cpu_ticks\":{},\
         \"init_ctxt\":{}}}\n",
        us(t_last_exit - t0),
        ns1.saturating_sub(ns0),
        ticks1.saturating_sub(ticks0),
        ctxt1.saturating_sub(ctxt0)
    );
    let _ = std::io::stdout().write_all(line.as_bytes());
    let _ = std::io::stdout().flush();
    std::process::exit(if zombies == 0 && alive == 0 { 0 } else { 1 })
}

// ---------------------------------------------------------------- spawn-time

fn stats_json(mut v: Vec<u64>) -> String {
    v.sort_unstable();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let mean = v.iter().sum::<u64>() / v.len() as u64;
    format!(
        "{{\"n\":{},\"min\":{},\"p10\":{},\"median\":{},\"p90\":{},\"p99\":{},\"max\":{},\"mean\":{}}}",
        v.len(),
        v[0],
        q(0.10),
        q(0.50),
        q(0.90),
        q(0.99),
        v[v.len() - 1],
        mean
    )
}

extern "C" {
    static environ: *const *mut libc::c_char;
}

fn spawn_time(args: &[String]) {
    let runs: usize = arg_num(args, 0, "RUNS");
    let warmup: usize = arg_num(args, 1, "WARMUP");
    let cmds: Vec<Vec<CString>> = args[2..]
        .split(|a| a == "::")
        .map(|c| {
            c.iter()
                .map(|a| CString::new(a.as_str()).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    if cmds.iter().any(|c| c.is_empty()) {
        die("spawn-time: empty command");
    }
    let argvs: Vec<Vec<*mut libc::c_char>> = cmds
        .iter()
        .map(|c| {
            let mut v: Vec<*mut libc::c_char> = c.iter().map(|a| a.as_ptr() as *mut _).collect();
            v.push(std::ptr::null_mut());
            v
        })
        .collect();
    unsafe {
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut fa);
        libc::posix_spawn_file_actions_adddup2(&mut fa, devnull, 1);
        libc::posix_spawn_file_actions_adddup2(&mut fa, devnull, 2);
        let mut times: Vec<Vec<u64>> = vec![Vec::with_capacity(runs); cmds.len()];
        for round in 0..warmup + runs {
            for k in 0..cmds.len() {
                let i = (round + k) % cmds.len();
                let t0 = Instant::now();
                let mut pid = 0;
                let rc = libc::posix_spawn(
                    &mut pid,
                    argvs[i][0],
                    &fa,
                    std::ptr::null(),
                    argvs[i].as_ptr(),
                    environ,
                );
                if rc != 0 {
                    die(&format!("posix_spawn {:?}: error {rc}", cmds[i][0]));
                }
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
                let dt = t0.elapsed().as_nanos() as u64;
                if !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
                    die(&format!("{:?} exited with wait status {st:#x}", cmds[i]));
                }
                if round >= warmup {
                    times[i].push(dt);
                }
            }
        }
        let body: Vec<String> = times.into_iter().map(stats_json).collect();
        println!("{{\"results\":[{}]}}", body.join(","));
    }
}

// ---------------------------------------------------------------- sig-latency

/// Wait up to `ms` for one byte on `fd`.
fn read_byte(fd: i32, ms: i32) -> Option<u8> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if r <= 0 {
            return None;
        }
        let mut b = 0u8;
        let n = unsafe { libc::read(fd, &mut b as *mut u8 as *mut libc::c_void, 1) };
        return if n == 1 { Some(b) } else { None };
    }
}

struct Target {
    pid: libc::pid_t,
    fd: i32,
    lat: Vec<u64>,
    lost: usize,
    wrong: usize,
    last_ok: usize,
    sent: usize,
    delivered: usize,
}

fn sig_latency(args: &[String]) {
    let n: usize = arg_num(args, 0, "N");
    let rounds: usize = arg_num(args, 1, "ROUNDS");
    let mut targets: Vec<Target> = args[2..]
        .iter()
        .map(|a| {
            let (p, f) = a
                .split_once(':')
                .unwrap_or_else(|| die("targets are PID:FD"));
            let pid: libc::pid_t = p.parse().unwrap_or_else(|_| die("bad PID"));
            if pid <= 1 {
                die("refusing to signal pid <= 1");
            }
            let fd = f.parse().unwrap_or_else(|_| die("bad FD"));
            Target {
                pid,
                fd,
                lat: Vec::with_capacity(n),
                lost: 0,
                wrong: 0,
                last_ok: 0,
                sent: 0,
                delivered: 0,
            }
        })
        .collect();
    if targets.is_empty() {
        die("no targets");
    }
    let nt = targets.len();
    // 1. one at a time; targets interleaved round-robin, start rotated every round
    for i in 0..n {
        for k in 0..nt {
            let t = &mut targets[(i + k) % nt];
            if t.lost > 20 {
                continue;
            }
            let t0 = Instant::now();
            if unsafe { libc::kill(t.pid, libc::SIGUSR1) } != 0 {
                t.lost = usize::MAX / 2;
                continue;
            }
            match read_byte(t.fd, 1000) {
                Some(b) if b as i32 == libc::SIGUSR1 => t.lat.push(t0.elapsed().as_nanos() as u64),
                Some(_) => t.wrong += 1,
                None => t.lost += 1,
            }
        }
    }
    // 2. bursts of distinct signals sent back to back, order rotated every round
    let burst = [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGHUP,
        libc::SIGWINCH,
        libc::SIGALRM,
    ];
    for r in 0..rounds {
        let order: Vec<i32> = (0..burst.len())
            .map(|k| burst[(r + k) % burst.len()])
            .collect();
        let last = *order.last().unwrap();
        for k in 0..nt {
            let t = &mut targets[(r + k) % nt];
            for &s in &order {
                unsafe { libc::kill(t.pid, s) };
            }
            t.sent += order.len();
            let mut got = Vec::new();
            while got.len() < order.len() {
                match read_byte(t.fd, 300) {
                    Some(b) => got.push(b as i32),
                    None => break,
                }
            }
            if got.contains(&last) {
                t.last_ok += 1;
            }
            t.delivered += got.iter().filter(|s| order.contains(s)).count();
        }
    }
    let body: Vec<String> = targets
        .into_iter()
        .map(|t| {
            let lat = if t.lat.is_empty() {
                "null".to_string()
            } else {
                stats_json(t.lat)
            };
            format!(
                "{{\"latency\":{lat},\"lost\":{},\"wrong\":{},\"burst_rounds\":{rounds},\
                 \"burst_last_delivered\":{},\"burst_sent\":{},\"burst_delivered\":{}}}",
                t.lost.min(n),
                t.wrong,
                t.last_ok,
                t.sent,
                t.delivered
            )
        })
        .collect();
    println!("{{\"results\":[{}]}}", body.join(","));
}
