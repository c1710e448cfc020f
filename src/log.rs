//! Logging to stderr, never stdout, as `grace-init: 1.234s LEVEL message key=value` lines.
//!
//! Logging must never panic, block or kill the init: every write is non-blocking (see
//! [`LogChannel`]); a full stderr or a failed write (a full disk) drops that line only, a closed
//! or broken one ends logging for good, and the formatter's own write errors are never reported
//! (that report would go through `eprintln!`, which panics on a broken stderr). Control
//! characters in a line (a newline in a command name) are escaped, so every line is one line.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

pub use tracing::level_filters::LevelFilter;

use crate::sys::{self, LogChannel, LogWrite};

/// Set once stderr is found closed or broken; nothing is written after that.
static STDERR_BROKEN: AtomicBool = AtomicBool::new(false);
/// Set when a line went out only in part; the next line starts on a new line.
static LINE_TORN: AtomicBool = AtomicBool::new(false);
/// How log lines are written (grace-init has one thread: the lock is never contended).
static CHANNEL: Mutex<LogChannel> = Mutex::new(LogChannel::Polled);

/// Chooses how to write log lines without blocking; returns the private descriptor of stderr
/// if one was opened, which grace-init must keep open.
pub fn choose_log_channel() -> Option<i32> {
    let channel = sys::open_log_channel();
    if let Ok(mut current) = CHANNEL.lock() {
        *current = channel;
    }
    match channel {
        LogChannel::Private(fd) => Some(fd),
        _ => None,
    }
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

fn write_to_stderr(line: &[u8]) {
    if STDERR_BROKEN.load(Ordering::Relaxed) {
        return;
    }
    let Ok(mut channel) = CHANNEL.lock() else {
        return;
    };
    let bytes = &escape_control_characters(line);
    let mut write = |bytes: &[u8]| match sys::write_log_without_blocking(*channel, bytes) {
        LogWrite::Unsupported => {
            *channel = LogChannel::Polled;
            sys::write_log_without_blocking(*channel, bytes)
        }
        done => done,
    };
    if LINE_TORN.load(Ordering::Relaxed) {
        if write(b"\n") != LogWrite::Written {
            return;
        }
        LINE_TORN.store(false, Ordering::Relaxed);
    }
    match write(bytes) {
        LogWrite::Written | LogWrite::Dropped | LogWrite::Unsupported => {}
        LogWrite::Torn => LINE_TORN.store(true, Ordering::Relaxed),
        LogWrite::Broken => STDERR_BROKEN.store(true, Ordering::Relaxed),
    }
}

/// `line` with every control character but its final newline escaped (`\n`, `\r`, `\x1b`,
/// ...), so that no value in it (a command name, a path) can end the line early, forge another
/// one, or send escape sequences to a terminal. Borrowed when there is nothing to escape.
fn escape_control_characters(line: &[u8]) -> Cow<'_, [u8]> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let is_control = |b: &u8| *b < 0x20 && *b != b'\t' || *b == 0x7f;
    if !body.iter().any(is_control) {
        return Cow::Borrowed(line);
    }
    let mut escaped = Vec::with_capacity(line.len() + 16);
    for &byte in body {
        match byte {
            b'\n' => escaped.extend_from_slice(b"\\n"),
            b'\r' => escaped.extend_from_slice(b"\\r"),
            b if is_control(&b) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                escaped.extend_from_slice(b"\\x");
                escaped.push(HEX[usize::from(b >> 4)]);
                escaped.push(HEX[usize::from(b & 15)]);
            }
            b => escaped.push(b),
        }
    }
    if body.len() < line.len() {
        escaped.push(b'\n');
    }
    Cow::Owned(escaped)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_so_a_value_cannot_forge_a_line() {
        let line = b"grace-init: cannot run 'nope\ngrace-init: 0.000s WARN x\x1b[2J'\n";
        let escaped = escape_control_characters(line);
        assert_eq!(
            std::str::from_utf8(&escaped).unwrap(),
            "grace-init: cannot run 'nope\\ngrace-init: 0.000s WARN x\\x1b[2J'\n"
        );
        assert_eq!(escaped.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn ordinary_lines_are_written_as_they_are() {
        let line = b"grace-init: 1.000s INFO exiting code=0\tx\n";
        assert!(matches!(escape_control_characters(line), Cow::Borrowed(_)));
    }
}
