//! grace-init: a PID-1 init for containers. See the README for what it does and why.
//!
//! `main` is the C entry point itself (`no_main`), so that the very first thing the process
//! does is block every signal: nothing of Rust's runtime set-up runs before it, and a signal
//! that arrives while arguments are parsed or the command is started stays pending until the
//! event loop takes it.

#![cfg_attr(not(test), no_main)]
// The entry point is compiled out of unit tests, and with it every caller of the OS side.
#![cfg_attr(test, allow(dead_code))]

mod cli;
mod duration;
mod exit_status;
mod log;
mod personality;
mod processes;
mod report;
mod rewrite;
mod signal;
mod spawn;
mod supervisor;
mod sys;
mod timeline;
mod traffic;
mod words;

/// The C entry point and its arguments; the test harness brings its own `main`.
#[cfg(not(test))]
mod entry {
    use crate::personality::{self, Personality};
    use crate::{cli, log, supervisor, sys};
    use std::ffi::{CStr, OsString};
    use std::io::Write;
    use std::os::raw::{c_char, c_int};
    use std::os::unix::ffi::OsStringExt;
    use std::time::Instant;

    use crate::spawn::InheritedSignals;
    use crate::sys::SignalSet;

    #[no_mangle]
    pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
        let original_mask = sys::set_signal_mask(SignalSet::ALL);
        // Ignored SIGCHLD would have the kernel reap the command and lose its status.
        let original_sigchld = sys::take_default_sigchld();
        let start = Instant::now();
        sys::open_missing_standard_fds();
        // SAFETY: argc and argv are exactly what the C runtime passed to main.
        let args = unsafe { arguments(argc, argv) };
        let personality = Personality::of_program(args.first().map(OsString::as_os_str));
        let config = match personality::parse(personality, args) {
            Ok(config) => config,
            Err(cli::Exit::Info(text)) => {
                let mut stdout = std::io::stdout();
                // Help goes where it was asked for; a closed stdout is not worth an error.
                let _ = stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush());
                return 0;
            }
            Err(cli::Exit::Usage(message)) => {
                log::print_fatal(format_args!("{message}"));
                log::print_fatal(format_args!("{}", personality.usage_hint()));
                return c_int::from(personality.usage_exit_code());
            }
        };
        let log_fd = log::choose_log_channel();
        log::init(config.verbosity, start, config.log_format);
        let inherited = InheritedSignals {
            mask: original_mask,
            sigchld: original_sigchld,
        };
        c_int::from(supervisor::run(config, inherited, start, log_fd))
    }

    /// The program's arguments as the C runtime passed them.
    ///
    /// # Safety
    /// `argv` must point to `argc` valid NUL-terminated strings.
    unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
        (0..usize::try_from(argc).unwrap_or(0))
            .map(|i| {
                // SAFETY: the caller guarantees argv[i] for i < argc is a valid C string.
                let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
                OsString::from_vec(arg.to_bytes().to_vec())
            })
            .collect()
    }
}
