//! Logging to stderr, never stdout, as `grace-init: 1.234s LEVEL message key=value` lines.
//!
//! Logging must never panic, block or kill the init: lines go to a private non-blocking
//! description of stderr where one can be opened (pipes, FIFOs, terminals), else to fd 2 polled
//! for room first; a full stderr drops the line, a closed or broken one ends logging for good, and the formatter's own write errors are never reported (that report
//! would go through `eprintln!`, which panics on a broken stderr).

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Instant;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

pub use tracing::level_filters::LevelFilter;

use crate::sys::{self, LogWrite};

/// Set once stderr is found closed or broken; nothing is written after that.
static STDERR_BROKEN: AtomicBool = AtomicBool::new(false);
/// Set when a line went out only in part; the next line starts on a new line.
static LINE_TORN: AtomicBool = AtomicBool::new(false);
/// The descriptor log lines go to: fd 2, or a private non-blocking description of it.
static LOG_FD: AtomicI32 = AtomicI32::new(libc::STDERR_FILENO);

/// Switches logging to a private non-blocking description of stderr where there can be one;
/// returns its descriptor, which grace-init must keep open.
pub fn use_private_nonblocking_stderr() -> Option<i32> {
    let fd = sys::open_private_nonblocking_stderr()?;
    LOG_FD.store(fd, Ordering::Relaxed);
    Some(fd)
}

/// The stderr writer for the tracing formatter; it always reports success.
struct Stderr;

impl io::Write for Stderr {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        write_to_stderr(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_to_stderr(bytes: &[u8]) {
    if STDERR_BROKEN.load(Ordering::Relaxed) {
        return;
    }
    let fd = LOG_FD.load(Ordering::Relaxed);
    let nonblocking = fd != libc::STDERR_FILENO;
    let write = |bytes: &[u8]| sys::write_log_without_blocking(fd, nonblocking, bytes);
    if LINE_TORN.load(Ordering::Relaxed) {
        if write(b"\n") != LogWrite::Written {
            return;
        }
        LINE_TORN.store(false, Ordering::Relaxed);
    }
    match write(bytes) {
        LogWrite::Written | LogWrite::Dropped => {}
        LogWrite::Torn => LINE_TORN.store(true, Ordering::Relaxed),
        LogWrite::Broken => STDERR_BROKEN.store(true, Ordering::Relaxed),
    }
}

/// Formats one event as `grace-init: <seconds since start> <LEVEL> <message> <fields>`.
struct LineFormat {
    start: Instant,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let elapsed = self.start.elapsed();
        write!(
            writer,
            "grace-init: {}.{:03}s {} ",
            elapsed.as_secs(),
            elapsed.subsec_millis(),
            event.metadata().level()
        )?;
        context.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the stderr logger. `verbosity`: -1 errors only, 0 warnings (default), 1 info,
/// 2 debug, 3 and up trace.
pub fn init(verbosity: i8, start: Instant) {
    let level = match verbosity {
        i8::MIN..=-1 => LevelFilter::ERROR,
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(|| Stderr)
        .event_format(LineFormat { start })
        .log_internal_errors(false);
    let subscriber = tracing_subscriber::registry().with(level).with(lines);
    // Fails only if a logger is already installed, which nothing else does.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Prints a message that ends grace-init before its logger exists (usage errors) or that must
/// show whatever the log level (the command cannot run): `grace-init: <message>`.
pub fn print_fatal(message: fmt::Arguments<'_>) {
    write_to_stderr(format!("grace-init: {message}\n").as_bytes());
}
