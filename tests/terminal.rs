//! Interactive use through a pseudo-terminal (`docker run -it`): the child is the terminal's
//! foreground process group, reads typed lines, Ctrl-C interrupts a foreground job, exit status.
#[macro_use]
mod common;

use common::*;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

struct Pty {
    master: OwnedFd,
    seen: String,
}

impl Pty {
    fn write(&self, s: &str) {
        let n = unsafe { libc::write(self.master.as_raw_fd(), s.as_ptr() as *const _, s.len()) };
        assert_eq!(n as usize, s.len(), "write to pty master");
    }
    /// Read until `needle` appears in the output seen so far (from `from` on).
    fn expect(&mut self, needle: &str, timeout: Duration, init: &Init) {
        let start = Instant::now();
        loop {
            if self.seen.contains(needle) {
                return;
            }
            let left = timeout.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "`{needle}` not shown on the terminal within {timeout:?}; screen:\n{}\nstderr:\n{}",
                self.seen,
                init.stderr()
            );
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
    }
}

fn interactive_shell(mode: Mode) {
    let dir = TestDir::new("pty");
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = pty.slave;
    let stdin = slave.try_clone().unwrap();
    let stdout = slave.try_clone().unwrap();
    let stderr = slave.try_clone().unwrap();
    let shell = if std::path::Path::new("/bin/sh").exists() {
        "/bin/sh"
    } else {
        "/usr/bin/busybox"
    };
    let mut args = vec![shell.to_string()];
    if shell.ends_with("busybox") {
        args.push("sh".into());
    }
    let mut init = Init::start_with(mode, &dir, &[] as &[&str], &args, |c| {
        c.stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        c.env("PS1", "$ ").env("TERM", "dumb").env_remove("ENV");
        unsafe {
            c.pre_exec(|| {
                // New session with the pty as controlling terminal, as a container runtime does.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    drop(slave);
    let mut t = Pty {
        master: pty.master,
        seen: String::new(),
    };

    t.write("echo hi-$((1+2))\n");
    t.expect("hi-3", Duration::from_secs(20), &init);

    // grace-init's child (the shell) is the terminal's foreground process group.
    let sh = init.child_pid();
    let fg = unsafe { libc::tcgetpgrp(t.master.as_raw_fd()) };
    assert_eq!(
        fg,
        sh,
        "foreground group {fg} is not the child {sh} (grace-init {})",
        init.pid()
    );

    // Ctrl-C interrupts a foreground job, the shell keeps running.
    t.write("sleep 30\n");
    let sleeping = wait_until(T, || {
        descendants_of(sh)
            .into_iter()
            .find(|p| stat(*p).map(|s| s.comm == "sleep").unwrap_or(false))
    });
    assert!(
        sleeping.is_some(),
        "sleep never started; screen:\n{}",
        t.seen
    );
    sleep_ms(200);
    t.write("\x03");
    t.write("echo alive-$((2+2))\n");
    t.expect("alive-4", Duration::from_secs(10), &init);
    assert!(alive(sh), "shell died on Ctrl-C");

    t.write("exit 3\n");
    let e = init.wait(T);
    assert_eq!(e.code, Some(3), "{e:?}; screen:\n{}", t.seen);
}
both_modes!(
    interactive_shell_on_pty_reads_input_ctrl_c_and_exit_status,
    interactive_shell
);
