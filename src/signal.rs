//! Signals by name and number: parsing what users write (`TERM`, `SIGQUIT`, `winch`, `15`,
//! `RTMIN+3`), naming them in logs, and which of them grace-init forwards.
//!
//! Real-time signals use the numbering of glibc, bash, procps and Docker: `RTMIN` is 34 and
//! `RTMAX` is 64 (musl reserves one more, but users type these names into bash and `docker kill`).

use std::fmt;

/// The highest signal number on Linux.
pub const MAX_SIGNAL: u8 = 64;
/// `SIGRTMIN` as glibc, bash and Docker count it.
pub const RTMIN: u8 = 34;

/// A Linux signal number, always in `1..=64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signal(u8);

impl Signal {
    #[cfg(test)]
    pub const HUP: Signal = Signal(libc::SIGHUP as u8);
    pub const INT: Signal = Signal(libc::SIGINT as u8);
    pub const KILL: Signal = Signal(libc::SIGKILL as u8);
    #[cfg(test)]
    pub const USR1: Signal = Signal(libc::SIGUSR1 as u8);
    pub const TERM: Signal = Signal(libc::SIGTERM as u8);
    pub const CHLD: Signal = Signal(libc::SIGCHLD as u8);
    pub const STOP: Signal = Signal(libc::SIGSTOP as u8);
    pub const CONT: Signal = Signal(libc::SIGCONT as u8);
    pub const TSTP: Signal = Signal(libc::SIGTSTP as u8);
    pub const TTIN: Signal = Signal(libc::SIGTTIN as u8);
    pub const TTOU: Signal = Signal(libc::SIGTTOU as u8);

    /// The signal with this number, if it is one.
    pub fn from_number(number: i64) -> Option<Signal> {
        (1..=i64::from(MAX_SIGNAL))
            .contains(&number)
            .then_some(Signal(number as u8))
    }

    pub fn number(self) -> i32 {
        i32::from(self.0)
    }

    /// Every signal number, 1 to 64.
    #[cfg(test)]
    pub fn all() -> impl Iterator<Item = Signal> {
        (1..=MAX_SIGNAL).map(Signal)
    }

    /// Whether grace-init can receive this signal and pass it on: everything but SIGKILL and
    /// SIGSTOP (which nobody can catch) and SIGCHLD (which is grace-init's own business).
    pub fn is_forwardable(self) -> bool {
        self != Signal::KILL && self != Signal::STOP && self != Signal::CHLD
    }

    /// The stops of job control: Ctrl-Z, and a background job using the terminal.
    pub fn is_job_control_stop(self) -> bool {
        self == Signal::TSTP || self == Signal::TTIN || self == Signal::TTOU
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= RTMIN => match MAX_SIGNAL - n {
                0 => f.write_str("SIGRTMAX"),
                below_max if below_max <= 15 => write!(f, "SIGRTMAX-{below_max}"),
                _ if n == RTMIN => f.write_str("SIGRTMIN"),
                _ => write!(f, "SIGRTMIN+{}", n - RTMIN),
            },
            n => match nix::sys::signal::Signal::try_from(i32::from(n)) {
                Ok(known) => f.write_str(known.as_str()),
                Err(_) => write!(f, "SIG{n}"),
            },
        }
    }
}

/// Why a signal name was not understood; the message names the value.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownSignal(pub String);

impl fmt::Display for UnknownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown signal '{}' (use a name like TERM or SIGQUIT, a number 1-64, or RTMIN+N)",
            self.0
        )
    }
}

impl std::error::Error for UnknownSignal {}

impl std::str::FromStr for Signal {
    type Err = UnknownSignal;

    fn from_str(text: &str) -> Result<Signal, UnknownSignal> {
        let unknown = || UnknownSignal(text.to_string());
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            // A number, or `SIG32`/`SIG33` as signals without a name are shown.
            return name
                .parse::<i64>()
                .ok()
                .and_then(Signal::from_number)
                .ok_or_else(unknown);
        }
        if let Some(signal) = parse_realtime(name) {
            return signal.ok_or_else(unknown);
        }
        let number = match name {
            "IOT" => libc::SIGIOT,
            "POLL" => libc::SIGPOLL,
            "CLD" => libc::SIGCHLD,
            _ => format!("SIG{name}")
                .parse::<nix::sys::signal::Signal>()
                .map_err(|_| unknown())? as i32,
        };
        Ok(Signal(number as u8))
    }
}

/// `RTMIN`, `RTMIN+N`, `RTMAX`, `RTMAX-N`: `None` if `name` is not real-time notation at all,
/// `Some(None)` if it is but names no signal.
fn parse_realtime(name: &str) -> Option<Option<Signal>> {
    let offset = |rest: &str, sign: char| -> Option<u8> {
        match rest.strip_prefix(sign) {
            None if rest.is_empty() => Some(0),
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse().ok()
            }
            _ => None,
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let n = offset(rest, '+').and_then(|o| RTMIN.checked_add(o));
        return Some(n.filter(|&n| n <= MAX_SIGNAL).map(Signal));
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let n = offset(rest, '-').and_then(|o| MAX_SIGNAL.checked_sub(o));
        return Some(n.filter(|&n| n >= RTMIN).map(Signal));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<i32, UnknownSignal> {
        text.parse::<Signal>().map(Signal::number)
    }

    #[test]
    fn names_parse_with_or_without_sig_prefix_in_any_case() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("SIGQUIT"), Ok(3));
        assert_eq!(parse("winch"), Ok(28));
        assert_eq!(parse("sigUsr1"), Ok(10));
        assert_eq!(parse("STKFLT"), Ok(16));
        assert_eq!(parse("PWR"), Ok(30));
        assert_eq!(parse("IOT"), Ok(6));
    }

    #[test]
    fn numbers_parse_within_one_to_sixty_four() {
        assert_eq!(parse("15"), Ok(15));
        assert_eq!(parse("1"), Ok(1));
        assert_eq!(parse("64"), Ok(64));
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        assert!(parse("99999").is_err());
        assert!(parse("99999999999999999999999").is_err());
    }

    #[test]
    fn realtime_signals_use_glibc_numbering() {
        assert_eq!(parse("RTMIN"), Ok(34));
        assert_eq!(parse("RTMIN+3"), Ok(37));
        assert_eq!(parse("sigrtmin+30"), Ok(64));
        assert_eq!(parse("RTMAX"), Ok(64));
        assert_eq!(parse("RTMAX-2"), Ok(62));
        assert!(parse("RTMIN+31").is_err());
        assert!(parse("RTMAX-31").is_err());
        assert!(parse("RTMIN+").is_err());
        assert!(parse("RTMIN-1").is_err());
        assert!(parse("RTMIN+x").is_err());
    }

    #[test]
    fn garbage_is_rejected_and_named() {
        for bad in ["", "FOO", "SIG", "TERM ", "-15", "1.5", "SIGTERM2", "é"] {
            let err = bad.parse::<Signal>().unwrap_err();
            assert_eq!(err.0, bad);
            assert!(err.to_string().contains(&format!("'{bad}'")));
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        for signal in Signal::all() {
            let shown = signal.to_string();
            assert_eq!(shown.parse::<Signal>(), Ok(signal), "{shown}");
        }
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(Signal(37).to_string(), "SIGRTMIN+3");
        assert_eq!(Signal(62).to_string(), "SIGRTMAX-2");
    }

    #[test]
    fn kill_stop_and_chld_are_not_forwardable() {
        let not: Vec<i32> = Signal::all()
            .filter(|s| !s.is_forwardable())
            .map(Signal::number)
            .collect();
        assert_eq!(not, vec![9, 17, 19]);
    }
}
