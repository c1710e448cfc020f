//! The shutdown report: what happened at the end of the command's life, in a few plain lines,
//! for the termination-message file that Kubernetes shows in `kubectl describe pod` (at most
//! 4096 bytes are read). The supervisor notes each step as it happens; writing the file is the
//! OS layer's job ([`crate::sys::write_termination_message`]).

use std::fmt::{self, Write};
use std::time::Duration;

use crate::duration::Human;

/// What the kubelet reads of a termination-message file.
pub const MAX_TERMINATION_MESSAGE: usize = 4096;

/// How many steps the report keeps; a stop has a handful, so this only bounds a pathological run
/// (a signal flood) without allocating on every forwarded signal.
const MAX_STEPS: usize = 24;

/// The steps of the shutdown, each with its time since the stop signal (or since start, before
/// any stop).
#[derive(Debug, Default)]
pub struct ShutdownReport {
    steps: Vec<String>,
    dropped: usize,
}

impl ShutdownReport {
    /// Notes a step; `since_stop` is `None` when no stop signal has arrived (the command exited
    /// on its own), and `uptime` is then shown instead.
    pub fn note(
        &mut self,
        since_stop: Option<Duration>,
        uptime: Duration,
        step: fmt::Arguments<'_>,
    ) {
        if self.steps.len() >= MAX_STEPS {
            self.dropped += 1;
            return;
        }
        let mut line = String::new();
        let _ = match since_stop {
            Some(since) => write!(line, "+{} {step}", Human(since)),
            None => write!(line, "at {} after start: {step}", Human(uptime)),
        };
        // A value in the step (a command name) must not start a line of its own or reach the
        // operator's terminal as an escape sequence.
        let line = match crate::log::escape_control_characters(line.as_bytes()) {
            std::borrow::Cow::Owned(escaped) => String::from_utf8_lossy(&escaped).into_owned(),
            std::borrow::Cow::Borrowed(_) => line,
        };
        self.steps.push(line);
    }

    /// The message: a headline, the steps, the exit code; at most 4096 bytes (the steps in the
    /// middle give way first).
    pub fn render(&self, exit_code: u8) -> String {
        let mut text = String::from("grace-init shutdown report\n");
        for step in &self.steps {
            text.push_str(step);
            text.push('\n');
        }
        if self.dropped > 0 {
            let _ = writeln!(text, "({} more steps not shown)", self.dropped);
        }
        let _ = writeln!(text, "exit code {exit_code}");
        if text.len() <= MAX_TERMINATION_MESSAGE {
            return text;
        }
        // Keep the start and the end, which say what began the stop and how it ended.
        let tail_start = ceil_char_boundary(&text, text.len() - MAX_TERMINATION_MESSAGE / 2);
        let head_end = floor_char_boundary(&text, MAX_TERMINATION_MESSAGE / 2 - 8);
        format!("{}\n[...]\n{}", &text[..head_end], &text[tail_start..])
    }
}

fn ceil_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_stop_reads_as_steps_since_the_stop_signal() {
        let mut report = ShutdownReport::default();
        report.note(
            Some(Duration::ZERO),
            secs(41),
            format_args!("SIGTERM received"),
        );
        report.note(
            Some(secs(10)),
            secs(51),
            format_args!("forwarded SIGTERM to group 7"),
        );
        assert_eq!(
            report.render(0),
            "grace-init shutdown report\n+0s SIGTERM received\n+10s forwarded SIGTERM to group 7\nexit code 0\n"
        );
    }

    #[test]
    fn a_value_with_newlines_or_escapes_cannot_forge_a_line() {
        let mut report = ShutdownReport::default();
        report.note(
            None,
            secs(1),
            format_args!("cannot run 'app\nexit code 0\n\x1b[2J'"),
        );
        let text = report.render(127);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("exit code")).count(),
            1,
            "{text}"
        );
        assert!(!text.contains('\x1b'), "{text}");
    }

    #[test]
    fn without_a_stop_the_time_since_start_is_shown() {
        let mut report = ShutdownReport::default();
        report.note(None, secs(90), format_args!("command exited with 3"));
        assert!(report
            .render(3)
            .contains("at 90s after start: command exited with 3\nexit code 3"));
    }

    #[test]
    fn the_message_never_exceeds_what_the_kubelet_reads_and_keeps_both_ends() {
        let mut report = ShutdownReport::default();
        let long = format!("a{}", "😀".repeat(700));
        for _ in 0..40 {
            report.note(Some(secs(1)), secs(1), format_args!("{long}"));
        }
        let text = report.render(137);
        assert!(text.len() <= MAX_TERMINATION_MESSAGE, "{}", text.len());
        assert!(text.starts_with("grace-init shutdown report\n"));
        assert!(text.ends_with("exit code 137\n"));
    }
}
