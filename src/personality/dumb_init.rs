//! Started as `dumb-init`: dumb-init's options and variables with dumb-init's meaning. By
//! default the command runs in a new session (with the terminal as its controlling terminal
//! when there is one) and signals go to its process group; there SIGTSTP, SIGTTIN and SIGTTOU
//! become SIGSTOP for the group and grace-init stops itself until SIGCONT. `-c` (or
//! `DUMB_INIT_SETSID=0`) signals the command alone, in grace-init's session. `-r s:r` rewrites
//! by number, a later rule for the same signal replacing an earlier one, as dumb-init does.
//! A command that cannot be started gives exit code 2, a usage error 1, as with dumb-init.

use std::ffi::{OsStr, OsString};

use super::{scan_options, text, version_as, PeerSettings};
use crate::cli::Exit;
use crate::rewrite::{parse_rewrite, Rewrite};
use crate::signal::Signal;
use crate::sys;

pub const USAGE: &str =
    "Usage: dumb-init [-c] [-r s:r]... [-v] [-V] [-h] [--] COMMAND [ARGS] (see 'dumb-init --help')";

const HELP: &str = "\
grace-init, started as dumb-init: runs COMMAND in a new session, forwards signals to its process
group and reaps zombies.

Usage: dumb-init [OPTIONS] [--] COMMAND [ARGS]

  -c, --single-child   no new session; signals go to COMMAND alone
  -r, --rewrite s:r    forward signal s as signal r (numbers or names; r = 0 drops s); repeatable
  -v, --verbose        log debugging information
  -V, --version        print the version and exit
  -h, --help           print this help and exit

Variables: DUMB_INIT_SETSID=0 (like -c), DUMB_INIT_DEBUG=1 (like -v). grace-init's own features
come from GRACE_INIT_* variables, e.g. GRACE_INIT_STOP_DELAY=5s.
";

/// dumb-init's own reading of a rule, `sscanf("%d:%d")`: blanks before each number, anything
/// after the second ignored; `s` 1-31, `r` 0-31 (0 drops).
fn by_numbers(rule: &str) -> Option<Rewrite> {
    let number = |text: &str| -> Option<(i64, usize)> {
        let skipped = text.len() - text.trim_start().len();
        let digits = text[skipped..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        Some((
            text[skipped..skipped + digits].parse().ok()?,
            skipped + digits,
        ))
    };
    let (from, used) = number(rule)?;
    let rest = rule[used..].strip_prefix(':')?;
    let (to, _) = number(rest)?;
    if !(1..=31).contains(&from) || !(0..=31).contains(&to) {
        return None;
    }
    Some(Rewrite {
        from: Signal::from_number(from)?,
        to: Signal::from_number(to),
    })
}

pub(super) fn parse(args: &[OsString]) -> Result<PeerSettings, Exit> {
    let setsid = sys::environment_variable(b"DUMB_INIT_SETSID").as_deref() != Some(b"0");
    let debug = sys::environment_variable(b"DUMB_INIT_DEBUG").as_deref() == Some(b"1");
    let mut settings = PeerSettings {
        group: setsid,
        new_session: setsid,
        verbosity: if debug { 2 } else { 0 },
        spawn_failure_code: Some(2),
        ..PeerSettings::default()
    };
    let mut rewrites: Vec<Rewrite> = Vec::new();
    let command = scan_options(
        args,
        |flag| flag == 'r',
        &[
            ("single-child", 'c'),
            ("rewrite", 'r'),
            ("verbose", 'v'),
            ("version", 'V'),
            ("help", 'h'),
        ],
        |flag, value: Option<&OsStr>| {
            match flag {
                'h' => return Err(Exit::Info(HELP.to_string())),
                'V' => return Err(Exit::Info(version_as("dumb-init"))),
                'c' => {
                    settings.group = false;
                    settings.new_session = false;
                }
                'v' => settings.verbosity = 2,
                'r' => {
                    let rule = text(value, flag)?;
                    let rule = by_numbers(rule)
                        .map_or_else(|| parse_rewrite(rule), Ok)
                        .map_err(|e| Exit::Usage(format!("-r: {e}")))?;
                    // A later rule for the same signal replaces the earlier one.
                    rewrites.retain(|earlier| earlier.from != rule.from);
                    rewrites.push(rule);
                }
                other => return Err(Exit::Usage(format!("unknown option '-{other}'"))),
            }
            Ok(())
        },
    )?;
    if command.is_empty() {
        return Err(Exit::Usage("no COMMAND to run".to_string()));
    }
    if settings.new_session {
        // The group is in a session of its own, orphaned: the kernel would discard these stops,
        // so they are sent as SIGSTOP (a user's own rule for them comes first and wins).
        for stop in [Signal::TSTP, Signal::TTIN, Signal::TTOU] {
            rewrites.push(Rewrite {
                from: stop,
                to: Some(Signal::STOP),
            });
        }
    }
    settings.rewrites = rewrites;
    settings.command = command;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<PeerSettings, Exit> {
        let args: Vec<OsString> = std::iter::once("dumb-init")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        parse(&args)
    }

    #[test]
    fn dumb_init_defaults_to_a_new_session_and_the_group() {
        let settings = parse_args(&["app", "-c"]).unwrap();
        assert!(settings.new_session && settings.group);
        assert_eq!(settings.command, ["app", "-c"]);
        assert_eq!(settings.spawn_failure_code, Some(2));
        assert_eq!(
            settings
                .rewrites
                .iter()
                .filter(|r| r.to == Some(Signal::STOP))
                .count(),
            3,
            "TSTP, TTIN and TTOU become SIGSTOP"
        );
    }

    #[test]
    fn single_child_mode_has_no_session_and_no_stop_rewrites() {
        let settings = parse_args(&["--single-child", "--", "app"]).unwrap();
        assert!(!settings.new_session && !settings.group);
        assert!(settings.rewrites.is_empty());
    }

    #[test]
    fn rewrites_by_number_and_the_last_rule_for_a_signal_wins() {
        let settings =
            parse_args(&["-c", "-r", "15:3", "--rewrite=15:2", "-r10:0", "app"]).unwrap();
        assert_eq!(settings.rewrites.len(), 2);
        assert_eq!(settings.rewrites[0].from, Signal::from_number(15).unwrap());
        assert_eq!(settings.rewrites[0].to, Signal::from_number(2));
        assert_eq!(settings.rewrites[1].to, None);
    }

    #[test]
    fn rules_are_read_like_dumb_inits_sscanf_too() {
        let settings = parse_args(&["-c", "-r", "15:3x", "-r", " 1: 2", "app"]).unwrap();
        assert_eq!(settings.rewrites[0].to, Signal::from_number(3));
        assert_eq!(settings.rewrites[1].from, Signal::from_number(1).unwrap());
    }

    #[test]
    fn dumb_init_usage_errors() {
        for args in [
            &["-r", "99:1", "app"][..],
            &["-r", "15", "app"],
            &["--bogus"],
            &[],
        ] {
            assert!(matches!(parse_args(args), Err(Exit::Usage(_))), "{args:?}");
        }
        assert!(matches!(parse_args(&["-V"]), Err(Exit::Info(_))));
        assert!(matches!(parse_args(&["--help"]), Err(Exit::Info(_))));
    }
}
