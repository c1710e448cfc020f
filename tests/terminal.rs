//! Interactive use through a pseudo-terminal (`docker run -it`): the child is the terminal's
//! foreground process group, reads typed lines, Ctrl-C interrupts a foreground job, exit status.
#[macro_use]
mod common;

use common::*;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

fn interactive_shell(mode: Mode) {
    let dir = TestDir::new("pty");
    let (mut t, slave) = Pty::open();
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

    t.write("echo hi-$((1+2))\n");
    t.expect("hi-3", Duration::from_secs(20), || init.stderr());

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
    t.expect("alive-4", Duration::from_secs(10), || init.stderr());
    assert!(alive(sh), "shell died on Ctrl-C");

    t.write("exit 3\n");
    let e = init.wait(T);
    assert_eq!(e.code, Some(3), "{e:?}; screen:\n{}", t.seen);
}
both_modes!(
    interactive_shell_on_pty_reads_input_ctrl_c_and_exit_status,
    interactive_shell
);
