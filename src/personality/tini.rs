//! Started as `tini`, `tini-static*` or `docker-init` (Docker's `--init`): tini's options and
//! variables with tini's meaning. Signals go to the command alone unless `-g`; `-e N` turns exit
//! code N into 0; `-p SIG` is the parent-death signal; `-s` is accepted and changes nothing,
//! because grace-init always registers as a subreaper when it is not PID 1.

use std::ffi::{OsStr, OsString};

use super::{scan_options, text, version_as, PeerSettings, LICENSE};
use crate::cli::Exit;
use crate::exit_status::ExitRemap;
use crate::sys;

pub const USAGE: &str = "Usage: tini [-h] [-s] [-p SIGNAL] [-v] [-w] [-g] [-e EXIT_CODE] [-l] [--] PROGRAM [ARGS] | --version";

const HELP: &str = "\
grace-init, started as tini: runs PROGRAM as its child, forwards signals to it and reaps zombies.

Usage: tini [OPTIONS] [--] PROGRAM [ARGS]   |   tini --version

  -h             print this help and exit
  -s             register as a child subreaper (grace-init always does when it is not PID 1)
  -p SIGNAL      have SIGNAL sent to this process when its parent dies (e.g. -p SIGKILL)
  -v             log more; repeatable
  -w             warn when a process other than PROGRAM is reaped
  -g             send signals to PROGRAM's process group, not only to PROGRAM
  -e EXIT_CODE   exit with 0 when PROGRAM exits with EXIT_CODE (0-255); repeatable
  -l             print the license and exit
  --version      print the version and exit

Variables: TINI_SUBREAPER (like -s), TINI_VERBOSITY (a number, default 1), TINI_KILL_PROCESS_GROUP
(like -g). grace-init's own features come from GRACE_INIT_* variables, e.g. GRACE_INIT_STOP_DELAY=5s.
";

/// `--version`, which tini has only in its long form.
const VERSION: char = '\u{1}';

/// C's `atoi`: optional blanks and sign, then the leading digits; 0 when there are none.
fn atoi(text: &[u8]) -> i64 {
    let text = text.trim_ascii_start();
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let value = digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |n, d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if negative {
        -value
    } else {
        value
    }
}

pub(super) fn parse(args: &[OsString]) -> Result<PeerSettings, Exit> {
    let mut settings = PeerSettings {
        group: sys::environment_variable(b"TINI_KILL_PROCESS_GROUP").is_some(),
        ..PeerSettings::default()
    };
    // tini reads it with atoi: leading digits count, anything else is 0.
    let mut verbosity: i64 =
        sys::environment_variable(b"TINI_VERBOSITY").map_or(1, |level| atoi(&level));
    let command = scan_options(
        args,
        |flag| flag == 'p' || flag == 'e',
        &[("version", VERSION)],
        |flag, value: Option<&OsStr>| {
            match flag {
                'h' => return Err(Exit::Info(HELP.to_string())),
                VERSION => return Err(Exit::Info(version_as("tini"))),
                'l' => return Err(Exit::Info(LICENSE.to_string())),
                's' => {}
                'v' => verbosity += 1,
                'w' => settings.warn_on_reap = true,
                'g' => settings.group = true,
                'p' => {
                    let name = text(value, flag)?;
                    let signal = name.parse().map_err(|e| Exit::Usage(format!("-p: {e}")))?;
                    settings.parent_death_signal = Some(signal);
                }
                'e' => {
                    let code = text(value, flag)?;
                    let from = code.parse().map_err(|_| {
                        Exit::Usage(format!("-e: '{code}' is not an exit code (0-255)"))
                    })?;
                    settings.exit_remaps.push(ExitRemap { from, to: 0 });
                }
                other => return Err(Exit::Usage(format!("unknown option '-{other}'"))),
            }
            Ok(())
        },
    )?;
    if command.is_empty() {
        return Err(Exit::Usage("no PROGRAM to run".to_string()));
    }
    // tini's levels: 1 (default) fatal errors and warnings, 2 info, 3 and up debug.
    settings.verbosity = match verbosity {
        i64::MIN..=0 => -1,
        1 => 0,
        2 => 1,
        _ => 2,
    };
    settings.command = command;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Signal;

    fn parse_args(args: &[&str]) -> Result<PeerSettings, Exit> {
        let args: Vec<OsString> = std::iter::once("tini")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        parse(&args)
    }

    #[test]
    fn tini_defaults_signal_the_child_alone() {
        let settings = parse_args(&["--", "app", "-g"]).unwrap();
        assert!(!settings.group);
        assert_eq!(settings.command, ["app", "-g"]);
        assert_eq!(settings.verbosity, 0);
    }

    #[test]
    fn tini_options_map_onto_grace_init() {
        let settings = parse_args(&[
            "-s", "-g", "-w", "-vv", "-e", "143", "-e1", "-p", "SIGKILL", "app",
        ])
        .unwrap();
        assert!(settings.group && settings.warn_on_reap);
        assert_eq!(settings.verbosity, 2);
        assert_eq!(
            settings.exit_remaps,
            [ExitRemap { from: 143, to: 0 }, ExitRemap { from: 1, to: 0 }]
        );
        assert_eq!(settings.parent_death_signal, Some(Signal::KILL));
    }

    #[test]
    fn tini_verbosity_is_read_like_atoi() {
        for (text, level) in [
            ("2", 2),
            (" 3x", 3),
            ("", 0),
            ("abc", 0),
            ("-1", -1),
            ("99999999999999999999999", i64::MAX),
        ] {
            assert_eq!(atoi(text.as_bytes()), level, "{text:?}");
        }
    }

    #[test]
    fn tini_usage_errors_name_the_value() {
        for (args, needle) in [
            (&["-e", "300", "app"][..], "'300'"),
            (&["-p", "FOO", "app"], "'FOO'"),
            (&["-x", "app"], "'-x'"),
            (&["-e"], "'-e'"),
            (&["-V", "app"], "'-V'"),
            (&[], "PROGRAM"),
        ] {
            match parse_args(args) {
                Err(Exit::Usage(message)) => assert!(message.contains(needle), "{message}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert!(matches!(parse_args(&["-h"]), Err(Exit::Info(_))));
        assert!(matches!(parse_args(&["--version"]), Err(Exit::Info(_))));
        assert!(matches!(parse_args(&["-l"]), Err(Exit::Info(_))));
    }
}
