//! `--rewrite FROM:TO`: translating a signal before it is forwarded, or dropping it.

use crate::signal::Signal;

/// One rule: `from` becomes `to`, or is dropped when `to` is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub from: Signal,
    pub to: Option<Signal>,
}

/// Parses `FROM:TO`; `TO` may be `0` or `NONE` (any case) to drop the signal.
pub fn parse_rewrite(text: &str) -> Result<Rewrite, String> {
    let (from, to) = text
        .split_once(':')
        .filter(|(from, to)| !from.is_empty() && !to.is_empty())
        .ok_or_else(|| format!("'{text}' is not FROM:TO (e.g. TERM:QUIT, or USR1:NONE to drop)"))?;
    let from: Signal = from.parse().map_err(|e| format!("{e}"))?;
    if !from.is_forwardable() {
        return Err(format!(
            "'{text}': {from} never reaches grace-init, so it cannot be rewritten"
        ));
    }
    let to: Option<Signal> = match to {
        "0" => None,
        none if none.eq_ignore_ascii_case("NONE") => None,
        to => Some(to.parse().map_err(|e| format!("{e}"))?),
    };
    if let Some(reserved) = to.filter(|to| RESERVED_BY_THREADING.contains(&to.number())) {
        return Err(format!(
            "'{text}': signal {} is used internally by the C library's threads (glibc and musl reserve 32 and 33); sending it breaks the program",
            reserved.number()
        ));
    }
    Ok(Rewrite { from, to })
}

/// Signals glibc and musl keep for their own threading (cancellation, set*id broadcast).
const RESERVED_BY_THREADING: [i32; 2] = [32, 33];

impl std::fmt::Display for Rewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to {
            Some(to) => write!(f, "{}:{}", self.from, to),
            None => write!(f, "{}:NONE", self.from),
        }
    }
}

/// What `signal` becomes: the first matching rule's target, else itself. `None`: drop it.
pub fn rewrite_signal(signal: Signal, rules: &[Rewrite]) -> Option<Signal> {
    rules
        .iter()
        .find(|rule| rule.from == signal)
        .map_or(Some(signal), |rule| rule.to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_translate_drop_and_leave_others_alone() {
        let rules = [
            parse_rewrite("TERM:QUIT").unwrap(),
            parse_rewrite("sigusr1:0").unwrap(),
            parse_rewrite("28:none").unwrap(),
            parse_rewrite("RTMIN+3:HUP").unwrap(),
        ];
        let name = |s: &str| s.parse::<Signal>().unwrap();
        assert_eq!(rewrite_signal(Signal::TERM, &rules), Some(name("QUIT")));
        assert_eq!(rewrite_signal(Signal::USR1, &rules), None);
        assert_eq!(rewrite_signal(name("WINCH"), &rules), None);
        assert_eq!(rewrite_signal(name("RTMIN+3"), &rules), Some(Signal::HUP));
        assert_eq!(rewrite_signal(Signal::INT, &rules), Some(Signal::INT));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = [
            parse_rewrite("TERM:QUIT").unwrap(),
            parse_rewrite("TERM:INT").unwrap(),
        ];
        assert_eq!(rewrite_signal(Signal::TERM, &rules), "QUIT".parse().ok());
    }

    #[test]
    fn malformed_rules_are_rejected_naming_the_value() {
        for (bad, named) in [
            ("TERM:", "'TERM:'"),
            (":TERM", "':TERM'"),
            ("TERM", "'TERM'"),
            ("FOO:TERM", "'FOO'"),
            ("TERM:BAR", "'BAR'"),
            ("99999:TERM", "'99999'"),
            ("KILL:TERM", "SIGKILL"),
            ("STOP:TERM", "SIGSTOP"),
            ("CHLD:TERM", "SIGCHLD"),
            ("TERM:32", "'TERM:32'"),
            ("TERM:33", "'TERM:33'"),
        ] {
            let message = parse_rewrite(bad).unwrap_err();
            assert!(message.contains(named), "{bad}: {message}");
        }
    }

    #[test]
    fn uncatchable_signals_may_still_be_targets() {
        assert_eq!(parse_rewrite("TERM:KILL").unwrap().to, Some(Signal::KILL));
    }
}
