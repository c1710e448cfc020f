//! Logging to stderr, never stdout, as `grace-init: 1.234s LEVEL message key=value` lines, or
//! with `--log-format json` as one JSON object per line (time, level, event, every field).
//!
//! Logging must never panic, block or kill the init: every write is non-blocking (see
//! [`LogChannel`]); a full stderr or a failed write (a full disk) drops that line only, a closed
//! or broken one ends logging for good, and the formatter's own write errors are never reported
//! (that report would go through `eprintln!`, which panics on a broken stderr). Control
//! characters in a line (a newline in a command name) are escaped, so every line is one line.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
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
/// Set when lines are JSON objects rather than text.
static JSON: AtomicBool = AtomicBool::new(false);

/// The shape of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `grace-init: 1.234s INFO event key=value`
    Text,
    /// `{"time":"2026-11-23T10:00:00.123Z","uptime":1.234,"level":"INFO","event":"...",...}`
    Json,
}

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
pub fn escape_control_characters(line: &[u8]) -> Cow<'_, [u8]> {
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

/// One event as a JSON object: `time` (RFC 3339, UTC), `uptime` (seconds since grace-init
/// started), `level`, `event` (the message) and every field as a member, numbers and booleans
/// as such, everything else as an escaped string.
struct JsonFormat {
    start: Instant,
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = event.metadata().level();
        write_json_head(&mut writer, self.start, level.as_str())?;
        let mut members = JsonMembers {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut members);
        members.result?;
        writeln!(writer, "}}")
    }
}

/// `{"time":...,"uptime":...,"level":...` (the object is left open for the members).
fn write_json_head(out: &mut dyn fmt::Write, start: Instant, level: &str) -> fmt::Result {
    let elapsed = start.elapsed();
    write!(
        out,
        "{{\"time\":\"{}\",\"uptime\":{}.{:03},\"level\":\"{level}\"",
        Rfc3339(SystemTime::now()),
        elapsed.as_secs(),
        elapsed.subsec_millis()
    )
}

/// Writes each field as `,"name":value`; the message is the member `event`.
struct JsonMembers<'a> {
    out: &'a mut dyn fmt::Write,
    result: fmt::Result,
}

impl JsonMembers<'_> {
    fn member(&mut self, field: &Field, value: fmt::Arguments<'_>, quoted: bool) {
        if self.result.is_err() {
            return;
        }
        let name = match field.name() {
            "message" => "event",
            name => name,
        };
        self.result = (|| {
            write!(self.out, ",\"{name}\":")?;
            if quoted {
                self.out.write_char('"')?;
                write!(JsonEscaped(&mut *self.out), "{value}")?;
                self.out.write_char('"')
            } else {
                write!(self.out, "{value}")
            }
        })();
    }
}

impl Visit for JsonMembers<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, format_args!("{value:?}"), true);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, format_args!("{value}"), true);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, format_args!("{value}"), false);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, format_args!("{value}"), false);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, format_args!("{value}"), false);
    }
}

/// A writer that escapes what passes through it for a JSON string: quotes, backslashes and
/// every control character.
struct JsonEscaped<'a>(&'a mut dyn fmt::Write);

impl fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for c in text.chars() {
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                '\n' => self.0.write_str("\\n")?,
                c if (c as u32) < 0x20 || c == '\u{7f}' => write!(self.0, "\\u{:04x}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A wall-clock time as RFC 3339 in UTC with milliseconds: `2026-11-23T10:00:00.123Z`.
struct Rfc3339(SystemTime);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since_epoch = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_epoch.as_secs();
        let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
        let of_day = seconds % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60,
            since_epoch.subsec_millis()
        )
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Installs the stderr logger. `verbosity`: -1 errors only, 0 warnings (default), 1 info,
/// 2 debug, 3 and up trace.
pub fn init(verbosity: i8, start: Instant, format: LogFormat) {
    let level = match verbosity {
        i8::MIN..=-1 => LevelFilter::ERROR,
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| Stderr)
        .log_internal_errors(false);
    // Fails only if a logger is already installed, which nothing else does.
    let _ = match format {
        LogFormat::Text => tracing::subscriber::set_global_default(
            tracing_subscriber::registry()
                .with(level)
                .with(layer.event_format(LineFormat { start })),
        ),
        LogFormat::Json => {
            JSON.store(true, Ordering::Relaxed);
            START.get_or_init(|| start);
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry()
                    .with(level)
                    .with(layer.event_format(JsonFormat { start })),
            )
        }
    };
}

/// When grace-init started, for JSON lines written without the logger.
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Prints a message that ends grace-init before its logger exists (usage errors) or that must
/// show whatever the log level (the command cannot run): `grace-init: <message>`.
pub fn print_fatal(message: fmt::Arguments<'_>) {
    let mut line = String::new();
    let written = match START.get().filter(|_| JSON.load(Ordering::Relaxed)) {
        Some(&start) => write_json_head(&mut line, start, "ERROR").and_then(|()| {
            line.push_str(",\"event\":\"");
            write!(JsonEscaped(&mut line), "{message}")?;
            line.push_str("\"}\n");
            Ok(())
        }),
        None => writeln!(line, "grace-init: {message}"),
    };
    if written.is_ok() {
        write_to_stderr(line.as_bytes());
    }
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
    fn json_strings_escape_quotes_backslashes_and_control_characters() {
        let mut out = String::new();
        write!(JsonEscaped(&mut out), "a\"b\\c\nd\u{1b}e\u{7f}é").unwrap();
        assert_eq!(out, "a\\\"b\\\\c\\nd\\u001be\\u007fé");
    }

    #[test]
    fn wall_clock_times_are_rfc_3339_in_utc() {
        let at = |secs: u64, millis: u64| {
            Rfc3339(UNIX_EPOCH + std::time::Duration::from_millis(secs * 1000 + millis)).to_string()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_435_200, 999), "2026-11-23T12:00:00.999Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23:59:59.000Z");
    }

    #[test]
    fn ordinary_lines_are_written_as_they_are() {
        let line = b"grace-init: 1.000s INFO exiting code=0\tx\n";
        assert!(matches!(escape_control_characters(line), Cow::Borrowed(_)));
    }
}
