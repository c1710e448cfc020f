//! How a child ended, and the exit code grace-init turns that into: the child's own code, or
//! 128+N when signal N killed it, then the user's `--remap-exit` rules.

use std::fmt;

use crate::signal::Signal;

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildStatus {
    Exited(u8),
    Killed(Signal),
}

impl ChildStatus {
    /// The shell convention: the exit code, or 128+N for death by signal N.
    pub fn code(self) -> u8 {
        match self {
            ChildStatus::Exited(code) => code,
            // 128 + 64 still fits in a u8.
            ChildStatus::Killed(signal) => 128 + signal.number() as u8,
        }
    }
}

impl fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildStatus::Exited(code) => write!(f, "exited with {code}"),
            ChildStatus::Killed(signal) => write!(f, "killed by {signal}"),
        }
    }
}

/// One `--remap-exit FROM:TO` rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitRemap {
    pub from: u8,
    pub to: u8,
}

/// Parses `FROM:TO`, both exit codes 0-255.
pub fn parse_exit_remap(text: &str) -> Result<ExitRemap, String> {
    let code = |part: &str| {
        part.parse::<u8>()
            .map_err(|_| format!("'{part}' is not an exit code (0-255)"))
    };
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not FROM:TO (e.g. 143:0)"))?;
    Ok(ExitRemap {
        from: code(from)?,
        to: code(to)?,
    })
}

/// The final exit code: the first rule whose FROM matches, else the code itself.
pub fn remap_exit_code(code: u8, rules: &[ExitRemap]) -> u8 {
    rules
        .iter()
        .find(|rule| rule.from == code)
        .map_or(code, |rule| rule.to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_deaths_become_128_plus_n() {
        assert_eq!(ChildStatus::Exited(0).code(), 0);
        assert_eq!(ChildStatus::Exited(255).code(), 255);
        assert_eq!(ChildStatus::Killed(Signal::TERM).code(), 143);
        assert_eq!(ChildStatus::Killed(Signal::KILL).code(), 137);
        assert_eq!(ChildStatus::Killed("RTMAX".parse().unwrap()).code(), 192);
    }

    #[test]
    fn remap_rules_parse_and_apply_first_match() {
        let rules = [
            parse_exit_remap("143:0").unwrap(),
            parse_exit_remap("143:1").unwrap(),
            parse_exit_remap("1:255").unwrap(),
        ];
        assert_eq!(remap_exit_code(143, &rules), 0);
        assert_eq!(remap_exit_code(1, &rules), 255);
        assert_eq!(remap_exit_code(2, &rules), 2);
    }

    #[test]
    fn remap_rules_reject_codes_outside_0_to_255_naming_them() {
        assert!(parse_exit_remap("300:0").unwrap_err().contains("'300'"));
        assert!(parse_exit_remap("0:-1").unwrap_err().contains("'-1'"));
        assert!(parse_exit_remap("143").unwrap_err().contains("'143'"));
        assert!(parse_exit_remap("143:").unwrap_err().contains("''"));
    }
}
