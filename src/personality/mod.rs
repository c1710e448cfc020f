//! Personalities: started under a peer's name (argv[0]'s file name `tini`, `tini-static*`,
//! `docker-init`, `dumb-init`, `catatonit`, `podman-init`), grace-init accepts that peer's command line and
//! environment with that peer's meaning, so that an image or `docker run --init` switches by
//! copying one file. Each peer's command line is one module here; all of them map onto the same
//! [`Config`], on top of the settings `GRACE_INIT_*` variables give (stop delay, grace period,
//! hook, ...). Where a peer has a known defect (no reaping when not PID 1, SEGV sent with kill
//! not forwarded, one-second polling), grace-init keeps its own behaviour.

mod catatonit;
mod dumb_init;
mod tini;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::cli::{self, Config, Exit};
use crate::exit_status::ExitRemap;
use crate::rewrite::Rewrite;
use crate::signal::Signal;
use crate::sys;

/// Whose command line grace-init speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    GraceInit,
    Tini,
    DumbInit,
    Catatonit,
}

impl Personality {
    /// Chosen by the file name grace-init was started as.
    pub fn of_program(argv0: Option<&OsStr>) -> Personality {
        let name = argv0
            .map(|path| path.as_bytes().rsplit(|&b| b == b'/').next().unwrap_or(b""))
            .unwrap_or(b"");
        match name {
            // tini's release files: tini, tini-static, tini-amd64, tini-static-arm64, ...
            b"tini" | b"docker-init" => Personality::Tini,
            name if name.starts_with(b"tini-") => Personality::Tini,
            b"dumb-init" => Personality::DumbInit,
            // podman --init mounts its init-path (catatonit) as /run/podman-init.
            b"catatonit" | b"podman-init" => Personality::Catatonit,
            _ => Personality::GraceInit,
        }
    }

    /// The exit code of a usage error: 2 for grace-init, 1 as every peer does.
    pub fn usage_exit_code(self) -> u8 {
        match self {
            Personality::GraceInit => 2,
            _ => 1,
        }
    }

    /// The line printed under a usage error.
    pub fn usage_hint(self) -> String {
        match self {
            Personality::GraceInit => cli::usage_hint(),
            Personality::Tini => tini::USAGE.to_string(),
            Personality::DumbInit => dumb_init::USAGE.to_string(),
            Personality::Catatonit => catatonit::USAGE.to_string(),
        }
    }
}

/// What a peer's command line and variables ask for.
#[derive(Debug, Default)]
struct PeerSettings {
    command: Vec<OsString>,
    /// Signals to the command's process group (else to the command alone).
    group: bool,
    /// The command in a new session (dumb-init's default).
    new_session: bool,
    /// grace-init's scale: -1 errors only, 0 warnings, 1 info, 2 debug.
    verbosity: i8,
    exit_remaps: Vec<ExitRemap>,
    rewrites: Vec<Rewrite>,
    parent_death_signal: Option<Signal>,
    warn_on_reap: bool,
    /// The exit code when the command cannot be started (the peer's, not 126/127).
    spawn_failure_code: Option<u8>,
}

/// Parses `args` as `personality`'s command line, then adds what `GRACE_INIT_*` variables say.
pub fn parse(personality: Personality, args: Vec<OsString>) -> Result<Config, Exit> {
    let peer = match personality {
        Personality::GraceInit => return cli::parse(args),
        Personality::Tini => tini::parse(&args)?,
        Personality::DumbInit => dumb_init::parse(&args)?,
        Personality::Catatonit => catatonit::parse(&args)?,
    };
    // grace-init's own settings come from its variables alone, for this command.
    let mut own = vec![OsString::from("grace-init"), OsString::from("--")];
    own.extend(peer.command.iter().cloned());
    let mut config = cli::parse(own)?;
    config.single_child = !peer.group;
    config.new_session = peer.new_session;
    // The peer's level, unless GRACE_INIT_VERBOSE or GRACE_INIT_QUIET set grace-init's own.
    let own_level = sys::environment_variable(b"GRACE_INIT_VERBOSE").is_some()
        || sys::environment_variable(b"GRACE_INIT_QUIET").is_some();
    if !own_level {
        config.verbosity = peer.verbosity;
    }
    let mut remaps = peer.exit_remaps;
    remaps.append(&mut config.exit_remaps);
    config.exit_remaps = remaps;
    let mut rewrites = peer.rewrites;
    rewrites.append(&mut config.rewrites);
    config.rewrites = rewrites;
    config.parent_death_signal = peer.parent_death_signal.or(config.parent_death_signal);
    config.warn_on_reap |= peer.warn_on_reap;
    config.spawn_failure_code = peer.spawn_failure_code;
    Ok(config)
}

/// Short options as getopt reads them with `+` (stop at the first non-option): bundles (`-vvg`),
/// values attached or separate (`-e143`, `-e 143`), `--` ending the options, and the long options
/// the peer has. Calls `option(flag, value)`; `takes_value(flag)` tells which flags take one.
fn scan_options(
    args: &[OsString],
    takes_value: impl Fn(char) -> bool,
    long: &[(&str, char)],
    mut option: impl FnMut(char, Option<&OsStr>) -> Result<(), Exit>,
) -> Result<Vec<OsString>, Exit> {
    let mut index = 1;
    while let Some(arg) = args.get(index) {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            index += 1;
            break;
        }
        if let Some(name) = bytes.strip_prefix(b"--") {
            let (name, attached) = match name.iter().position(|&b| b == b'=') {
                Some(at) => (&name[..at], Some(OsStr::from_bytes(&name[at + 1..]))),
                None => (name, None),
            };
            // getopt_long: the whole name, or a prefix of exactly one.
            let exact = long.iter().find(|(long, _)| long.as_bytes() == name);
            let mut prefixed = long
                .iter()
                .filter(|(long, _)| long.as_bytes().starts_with(name));
            let found = match (exact, prefixed.next(), prefixed.next()) {
                (Some(exact), _, _) => Some(exact),
                (None, Some(only), None) if !name.is_empty() => Some(only),
                _ => None,
            };
            let Some(&(_, flag)) = found else {
                return Err(unknown(arg));
            };
            if attached.is_some() && !takes_value(flag) {
                return Err(Exit::Usage(format!(
                    "option '{}' takes no value",
                    arg.to_string_lossy()
                )));
            }
            let value = if takes_value(flag) {
                match attached {
                    Some(value) => Some(value),
                    None => {
                        index += 1;
                        Some(args.get(index).ok_or_else(|| missing(flag))?.as_os_str())
                    }
                }
            } else {
                None
            };
            option(flag, value)?;
            index += 1;
            continue;
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            break;
        }
        let mut position = 1;
        while position < bytes.len() {
            let flag = char::from(bytes[position]);
            if !takes_value(flag) {
                option(flag, None)?;
                position += 1;
                continue;
            }
            let value = if position + 1 < bytes.len() {
                OsStr::from_bytes(&bytes[position + 1..])
            } else {
                index += 1;
                args.get(index).ok_or_else(|| missing(flag))?.as_os_str()
            };
            option(flag, Some(value))?;
            break;
        }
        index += 1;
    }
    Ok(args[index.min(args.len())..].to_vec())
}

fn unknown(arg: &OsStr) -> Exit {
    Exit::Usage(format!("unknown option '{}'", arg.to_string_lossy()))
}

fn missing(flag: char) -> Exit {
    Exit::Usage(format!("option '-{flag}' needs a value"))
}

fn text(value: Option<&OsStr>, flag: char) -> Result<&str, Exit> {
    value
        .ok_or_else(|| missing(flag))?
        .to_str()
        .ok_or_else(|| Exit::Usage(format!("the value of '-{flag}' is not valid UTF-8")))
}

/// The version line dockerd parses as tini's, with grace-init's version: `tini version X.Y.Z -
/// git.grace-init`. One line, and no dot after `git.`: dockerd splits the whole output on " - "
/// and the rest on ".", and takes the commit only from exactly two parts (else `docker info`
/// shows none; other output makes it warn every 20 s).
fn version_as(peer: &str) -> String {
    format!(
        "{peer} version {} - git.grace-init\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// grace-init's licence notice, shown by the peers' licence flags.
const LICENSE: &str = "grace-init is distributed under the MIT License. Permission is granted, free of charge, to deal in it without restriction, provided the copyright and permission notice are included; it is provided \"as is\", without warranty of any kind.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_grace_init_is_started_as_chooses_the_personality() {
        for (name, want) in [
            ("/usr/bin/tini", Personality::Tini),
            ("tini-static", Personality::Tini),
            ("/tini-static-amd64", Personality::Tini),
            ("/sbin/docker-init", Personality::Tini),
            ("/usr/bin/dumb-init", Personality::DumbInit),
            ("catatonit", Personality::Catatonit),
            ("/run/podman-init", Personality::Catatonit),
            ("/grace-init", Personality::GraceInit),
            ("tini2", Personality::GraceInit),
            ("/tini-muslc-amd64", Personality::Tini),
            ("tini-arm64", Personality::Tini),
            ("", Personality::GraceInit),
        ] {
            assert_eq!(
                Personality::of_program(Some(OsStr::new(name))),
                want,
                "{name}"
            );
        }
        assert_eq!(Personality::of_program(None), Personality::GraceInit);
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_scan_like_getopt_and_stop_at_the_first_non_option() {
        let mut seen = Vec::new();
        let rest = scan_options(
            &os(&["x", "-vvg", "-e143", "-e", "1", "--version", "cmd", "-v"]),
            |f| f == 'e',
            &[("version", 'V')],
            |flag, value| {
                seen.push((flag, value.map(|v| v.to_string_lossy().into_owned())));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(rest, os(&["cmd", "-v"]));
        assert_eq!(
            seen,
            [
                ('v', None),
                ('v', None),
                ('g', None),
                ('e', Some("143".into())),
                ('e', Some("1".into())),
                ('V', None)
            ]
        );
        let rest = scan_options(&os(&["x", "--", "-v"]), |_| false, &[], |_, _| Ok(())).unwrap();
        assert_eq!(rest, os(&["-v"]));
        assert!(scan_options(&os(&["x", "-e"]), |f| f == 'e', &[], |_, _| Ok(())).is_err());
        assert!(scan_options(&os(&["x", "--nope"]), |_| false, &[], |_, _| Ok(())).is_err());
    }

    #[test]
    fn the_version_line_is_one_dockerd_parses_as_tinis() {
        // moby's parseInitVersion, step by step, on the whole output.
        let text = version_as("tini");
        let parts: Vec<&str> = text.split(" - ").collect();
        assert_eq!(
            parts[0].trim(),
            format!("tini version {}", env!("CARGO_PKG_VERSION"))
        );
        let git: Vec<&str> = parts[1].trim().split('.').collect();
        assert_eq!(git, ["git", "grace-init"], "the commit dockerd shows");
    }

    #[test]
    fn long_options_take_unique_prefixes_and_refuse_values_they_do_not_take() {
        let long = [
            ("single-child", 'c'),
            ("rewrite", 'r'),
            ("version", 'V'),
            ("verbose", 'v'),
        ];
        let mut seen = Vec::new();
        let scan = |args: &[&str], seen: &mut Vec<char>| {
            scan_options(
                &os(args),
                |f| f == 'r',
                &long,
                |flag, _| {
                    seen.push(flag);
                    Ok(())
                },
            )
        };
        assert!(scan(&["x", "--single", "--rew=1:2", "--verb", "cmd"], &mut seen).is_ok());
        assert_eq!(seen, ['c', 'r', 'v']);
        assert!(
            scan(&["x", "--ver", "cmd"], &mut seen).is_err(),
            "ambiguous"
        );
        assert!(scan(&["x", "--version=x", "cmd"], &mut seen).is_err());
    }
}
