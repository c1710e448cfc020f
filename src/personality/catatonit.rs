//! Started as `catatonit` (podman's `--init`): catatonit's options with catatonit's meaning.
//! Signals go to the command alone unless `-g`; a command that cannot be started, and a usage
//! error, give exit code 1. `-P` (pause mode, no command) is refused: grace-init supervises a
//! command, and a pod's pause process is not what it is for.

use std::ffi::{OsStr, OsString};

use super::{scan_options, version_as, PeerSettings, LICENSE};
use crate::cli::Exit;

pub const USAGE: &str = "Usage: catatonit [-ghLV] [--] PROGRAM [ARGS]";

const HELP: &str = "\
grace-init, started as catatonit: runs PROGRAM as its child, forwards signals to it and reaps
zombies.

Usage: catatonit [OPTIONS] [--] PROGRAM [ARGS]

  -g              send signals to PROGRAM's process group, not only to PROGRAM
  -h              print this help and exit
  -L              print the license and exit
  -V, --version   print the version and exit

grace-init's own features come from GRACE_INIT_* variables, e.g. GRACE_INIT_STOP_DELAY=5s.
";

pub(super) fn parse(args: &[OsString]) -> Result<PeerSettings, Exit> {
    let mut settings = PeerSettings {
        spawn_failure_code: Some(1),
        ..PeerSettings::default()
    };
    let command = scan_options(
        args,
        |_| false,
        &[("version", 'V')],
        |flag, _: Option<&OsStr>| {
            match flag {
                'h' => return Err(Exit::Info(HELP.to_string())),
                'V' => {
                    return Err(Exit::Info(version_as("tini").replacen(
                        " - git.",
                        "_catatonit - git.",
                        1,
                    )))
                }
                'L' => return Err(Exit::Info(LICENSE.to_string())),
                'g' => settings.group = true,
                'P' => {
                    return Err(Exit::Usage(
                        "-P (pause mode without a program) is not supported by grace-init; run a PROGRAM".to_string(),
                    ))
                }
                other => return Err(Exit::Usage(format!("unknown option '-{other}'"))),
            }
            Ok(())
        },
    )?;
    if command.is_empty() {
        return Err(Exit::Usage("no PROGRAM to run".to_string()));
    }
    settings.command = command;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<PeerSettings, Exit> {
        let args: Vec<OsString> = std::iter::once("catatonit")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        parse(&args)
    }

    #[test]
    fn catatonit_signals_the_child_unless_g() {
        assert!(!parse_args(&["app"]).unwrap().group);
        assert!(parse_args(&["-g", "--", "app"]).unwrap().group);
        assert_eq!(parse_args(&["app"]).unwrap().spawn_failure_code, Some(1));
    }

    #[test]
    fn catatonit_usage_and_information() {
        assert!(matches!(parse_args(&["-P"]), Err(Exit::Usage(_))));
        assert!(matches!(parse_args(&[]), Err(Exit::Usage(_))));
        assert!(matches!(parse_args(&["-x", "app"]), Err(Exit::Usage(_))));
        let Err(Exit::Info(version)) = parse_args(&["--version"]) else {
            panic!()
        };
        assert!(version.starts_with("tini version "), "{version}");
        assert!(matches!(parse_args(&["-L"]), Err(Exit::Info(_))));
    }
}
