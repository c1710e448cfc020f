//! Durations as users write them: `500ms`, `5s`, `1m30s`, `2h`, or a bare number of seconds
//! (`30`, as Kubernetes writes `terminationGracePeriodSeconds`).

use std::fmt;
use std::time::Duration;

/// Why a duration was not understood; the message names the value.
#[derive(Debug, PartialEq, Eq)]
pub struct BadDuration(pub String);

impl fmt::Display for BadDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a duration (write e.g. 500ms, 5s, 1m30s, or a number of seconds)",
            self.0
        )
    }
}

impl std::error::Error for BadDuration {}

/// Parses a duration; each part is a whole number followed by `h`, `m`, `s` or `ms`.
pub fn parse_duration(text: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(text.to_string());
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let millis_per_unit = match &rest[..unit] {
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            _ => return Err(bad()),
        };
        rest = &rest[unit..];
        let part = number.checked_mul(millis_per_unit).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(bad)?;
    }
    if text.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// Shows a duration the way users write them: `0s`, `250ms`, `2s`, `1.5s`, `90s`.
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        match (millis / 1000, millis % 1000) {
            (0, ms) if ms > 0 => write!(f, "{ms}ms"),
            (s, 0) => write!(f, "{s}s"),
            (s, ms) => write!(f, "{s}.{ms:03}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Result<u128, BadDuration> {
        parse_duration(text).map(|d| d.as_millis())
    }

    #[test]
    fn units_and_bare_seconds_parse() {
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("5s"), Ok(5_000));
        assert_eq!(ms("1m30s"), Ok(90_000));
        assert_eq!(ms("2h"), Ok(7_200_000));
        assert_eq!(ms("1s500ms"), Ok(1_500));
        assert_eq!(ms("30"), Ok(30_000));
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("0s"), Ok(0));
    }

    #[test]
    fn negative_fractional_unitless_parts_and_garbage_are_rejected() {
        for bad in [
            "",
            "-5s",
            "abc",
            "5x",
            "1.5s",
            "s",
            "5s ",
            " 5s",
            "1m30",
            "ms",
            "5S",
            "99999999999999999999h",
            "18446744073709551615h",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("'{bad}'")), "{bad}");
        }
    }

    #[test]
    fn human_form_reads_like_the_input() {
        assert_eq!(Human(Duration::ZERO).to_string(), "0s");
        assert_eq!(Human(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(Human(Duration::from_secs(28)).to_string(), "28s");
        assert_eq!(Human(Duration::from_millis(1_500)).to_string(), "1.500s");
    }
}
