//! The command line and its `GRACE_INIT_*` environment variables, parsed into a checked
//! [`Config`]. Option parsing stops at the first non-option, so `grace-init sh -c 'x'` needs no
//! `--`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};

use crate::duration::{parse_duration, Human};
use crate::exit_status::{parse_exit_remap, ExitRemap};
use crate::log::LogFormat;
use crate::rewrite::{parse_rewrite, Rewrite};
use crate::signal::Signal;
use crate::sys;
use crate::timeline::{Drain, TimelineConfig};
use crate::traffic::{parse_cidr, parse_port, Cidr};
use crate::words::split_words;

const USAGE: &str = "grace-init [OPTIONS] [--] COMMAND [ARGS]...";

#[derive(Parser, Debug)]
#[command(
    name = "grace-init",
    version,
    about = "A PID-1 init for containers: forwards signals, reaps zombies and owns the shutdown timeline.",
    override_usage = USAGE,
    disable_help_subcommand = true,
    max_term_width = 100
)]
struct Arguments {
    /// Forward signals to the command alone instead of its whole process group
    #[arg(long, env = "GRACE_INIT_SINGLE_CHILD", value_parser = BoolishValueParser::new())]
    single_child: bool,

    /// Translate signal FROM to TO before forwarding it (TO = 0 or NONE drops it); repeatable
    #[arg(
        short = 'r',
        long = "rewrite",
        value_name = "FROM:TO",
        env = "GRACE_INIT_REWRITE",
        value_delimiter = ',',
        value_parser = Utf8(parse_rewrite),
        allow_hyphen_values = true
    )]
    rewrites: Vec<Rewrite>,

    /// Exit with TO when the command's exit code is FROM (e.g. 143:0 for JVMs); repeatable
    #[arg(
        long = "remap-exit",
        value_name = "FROM:TO",
        env = "GRACE_INIT_REMAP_EXIT",
        value_delimiter = ',',
        value_parser = Utf8(parse_exit_remap),
        allow_hyphen_values = true
    )]
    exit_remaps: Vec<ExitRemap>,

    /// Log more: -v shows the shutdown timeline, -vv every signal and reaped process
    #[arg(short, long, action = ArgAction::Count, env = "GRACE_INIT_VERBOSE")]
    verbose: u8,

    /// Log errors only
    #[arg(short, long, env = "GRACE_INIT_QUIET", value_parser = BoolishValueParser::new())]
    quiet: bool,

    /// Log lines as text, or as one JSON object per line
    #[arg(long, value_name = "FORMAT", env = "GRACE_INIT_LOG_FORMAT", default_value = "text", value_parser = Utf8(parse_log_format))]
    log_format: LogFormat,

    /// Write the shutdown report here at exit if the file exists and is empty; none: never [default: /dev/termination-log]
    #[arg(long, value_name = "PATH", env = "GRACE_INIT_TERMINATION_LOG")]
    termination_log: Option<OsString>,

    /// The incoming signal that starts the shutdown timeline
    #[arg(
        long,
        value_name = "SIGNAL",
        env = "GRACE_INIT_STOP_SIGNAL",
        default_value = "TERM",
        value_parser = Utf8(parse_signal),
        allow_hyphen_values = true
    )]
    stop_signal: Signal,

    /// Keep the command running undisturbed this long after the stop signal, then forward it
    #[arg(long, value_name = "DURATION", env = "GRACE_INIT_STOP_DELAY", default_value = "0", value_parser = Utf8(parse_duration), allow_hyphen_values = true)]
    stop_delay: Duration,

    /// Run this command when the stop signal arrives; forwarding waits for it (split like shell words, no shell)
    #[arg(long, value_name = "COMMAND", env = "GRACE_INIT_PRE_STOP", value_parser = Utf8(parse_pre_stop_hook))]
    pre_stop: Option<PreStopHook>,

    /// Kill a pre-stop hook still running this long after the stop signal, and forward it [default: half of --grace-period minus --kill-margin, else 30s]
    #[arg(long, value_name = "DURATION", env = "GRACE_INIT_PRE_STOP_TIMEOUT", value_parser = Utf8(parse_duration), allow_hyphen_values = true)]
    pre_stop_timeout: Option<Duration>,

    /// The runtime's deadline after the stop signal (terminationGracePeriodSeconds, docker stop -t)
    #[arg(long, value_name = "DURATION", env = "GRACE_INIT_GRACE_PERIOD", value_parser = Utf8(parse_duration), allow_hyphen_values = true)]
    grace_period: Option<Duration>,

    /// SIGKILL everything this long before the grace period ends
    #[arg(long, value_name = "DURATION", env = "GRACE_INIT_KILL_MARGIN", default_value = "2s", value_parser = Utf8(parse_duration), allow_hyphen_values = true)]
    kill_margin: Duration,

    /// When the command exits on its own, give what it left behind this long after SIGTERM before SIGKILL
    #[arg(long, value_name = "DURATION", env = "GRACE_INIT_CLEANUP_TIMEOUT", default_value = "2s", value_parser = Utf8(parse_duration), allow_hyphen_values = true)]
    cleanup_timeout: Duration,

    /// Adaptive hold: after --stop-delay, keep holding the stop signal until the command's ports saw no new connection and no data for DURATION
    #[arg(long, value_name = "DURATION", env = "GRACE_INIT_DRAIN_QUIET", value_parser = Utf8(parse_duration), allow_hyphen_values = true)]
    drain_quiet: Option<Duration>,

    /// Cap of the adaptive hold, counted from the stop signal [default: half of --grace-period minus --kill-margin, else 30s]
    #[arg(long, value_name = "DURATION", env = "GRACE_INIT_DRAIN_MAX", value_parser = Utf8(parse_duration), allow_hyphen_values = true)]
    drain_max: Option<Duration>,

    /// TCP ports to watch during the adaptive hold [default: those the command's processes listen on]
    #[arg(long, value_name = "PORT,...", env = "GRACE_INIT_DRAIN_PORTS", value_delimiter = ',', value_parser = Utf8(parse_port))]
    drain_ports: Vec<u16>,

    /// Connections from these addresses do not count as traffic (health probes, e.g. the node's address)
    #[arg(long, value_name = "CIDR,...", env = "GRACE_INIT_DRAIN_IGNORE_FROM", value_delimiter = ',', value_parser = Utf8(parse_cidr))]
    drain_ignore_from: Vec<Cidr>,

    /// Have the kernel send SIGNAL to grace-init when its parent dies (prctl PR_SET_PDEATHSIG)
    #[arg(long, value_name = "SIGNAL", env = "GRACE_INIT_PARENT_DEATH_SIGNAL", value_parser = Utf8(parse_signal), allow_hyphen_values = true)]
    parent_death_signal: Option<Signal>,

    /// The command to run, and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    command: Vec<OsString>,
}

/// The words of the `--pre-stop` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreStopHook(pub Vec<String>);

fn parse_pre_stop_hook(text: &str) -> Result<PreStopHook, String> {
    split_words(text).map(PreStopHook)
}

/// `--termination-log`: the file and whether the user named it (a missing default file is
/// normal outside Kubernetes; a missing named one deserves a warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminationLog {
    pub path: PathBuf,
    pub named: bool,
}

impl TerminationLog {
    /// The kubelet's default `terminationMessagePath`.
    fn kubernetes_default() -> TerminationLog {
        TerminationLog {
            path: PathBuf::from("/dev/termination-log"),
            named: false,
        }
    }

    fn from_option(value: Option<OsString>) -> Option<TerminationLog> {
        match value {
            None => Some(TerminationLog::kubernetes_default()),
            Some(none) if none.eq_ignore_ascii_case("none") || none.is_empty() => None,
            Some(path) => Some(TerminationLog {
                path: PathBuf::from(path),
                named: true,
            }),
        }
    }
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("'{text}' is not a log format (text or json)")),
    }
}

fn parse_signal(text: &str) -> Result<Signal, crate::signal::UnknownSignal> {
    text.parse()
}

/// A value parser that first checks for UTF-8 and names the option and its variable when the
/// value is not (clap's own message names neither), then hands the text to `P`.
#[derive(Clone)]
struct Utf8<P>(P);

impl<P: TypedValueParser> TypedValueParser for Utf8<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        match value.to_str() {
            Some(_) => self.0.parse_ref(cmd, arg, value),
            None => Err(not_utf8(cmd, arg, value)),
        }
    }
}

/// The error for a value that is not UTF-8, naming the option and its variable (one function
/// for every option: `Utf8<P>` is instantiated once per value type).
fn not_utf8(cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> clap::Error {
    let option = arg
        .and_then(clap::Arg::get_long)
        .map_or(String::new(), |long| format!("--{long}"));
    let variable = arg
        .and_then(clap::Arg::get_env)
        .map_or(String::new(), |env| {
            format!(" (or {})", env.to_string_lossy())
        });
    clap::Error::raw(
        ErrorKind::InvalidUtf8,
        format!(
            "invalid value '{}' for {option}{variable}: not valid UTF-8\n",
            value.to_string_lossy().escape_debug()
        ),
    )
    .with_cmd(cmd)
}

/// The adaptive hold's cap must leave the command time to stop, like the stop delay, and
/// cannot be shorter than the delay it extends.
fn check_drain(
    timeline: &TimelineConfig,
    quiet: Duration,
    max: Duration,
    named: bool,
) -> Result<(), String> {
    if quiet.is_zero() {
        return Err("--drain-quiet 0s: the quiet period must be longer than zero".to_string());
    }
    if max < timeline.stop_delay {
        return Err(format!(
            "--drain-max {} is shorter than --stop-delay {}: the adaptive hold comes after the delay",
            Human(max),
            Human(timeline.stop_delay)
        ));
    }
    match timeline.grace_period {
        Some(grace) if named => fits_before_the_kill("--drain-max", max, "hold", grace, timeline),
        _ => Ok(()),
    }
}

/// `value` of `option` must end before grace-init's own kill at grace period minus kill margin,
/// so that the command has time to stop after the `what` (delay, hook, hold).
fn fits_before_the_kill(
    option: &str,
    value: Duration,
    what: &str,
    grace: Duration,
    timeline: &TimelineConfig,
) -> Result<(), String> {
    let margin = timeline.kill_margin;
    let kill_after = grace.saturating_sub(margin);
    if value < kill_after {
        return Ok(());
    }
    Err(format!(
        "{option} {} does not fit: --grace-period {} minus --kill-margin {} leaves {} before grace-init kills, and the command needs time to stop after the {what}",
        Human(value),
        Human(grace),
        Human(margin),
        Human(kill_after)
    ))
}

/// A second rule for a signal would never apply (the first wins), so it is a mistake.
fn check_rewrites(rules: &[Rewrite]) -> Result<(), String> {
    for (index, rule) in rules.iter().enumerate() {
        if let Some(earlier) = rules[..index].iter().find(|r| r.from == rule.from) {
            return Err(format!(
                "--rewrite {rule}: {} is already rewritten by {earlier}; give one rule per signal",
                rule.from
            ));
        }
    }
    Ok(())
}

/// How long a pre-stop hook may hold the stop signal when `--pre-stop-timeout` is not given:
/// half of the time before grace-init's own kill, so that the command keeps the other half to
/// stop; 30 s (Kubernetes' default grace period) when the deadline is unknown.
fn default_pre_stop_timeout(timeline: &TimelineConfig) -> Duration {
    timeline
        .kill_after()
        .map_or(Duration::from_secs(30), |kill_after| kill_after / 2)
}

/// Everything grace-init was asked to do, checked.
#[derive(Debug)]
pub struct Config {
    pub command: Vec<OsString>,
    pub single_child: bool,
    pub rewrites: Vec<Rewrite>,
    pub exit_remaps: Vec<ExitRemap>,
    /// -1 quiet, 0 default, 1 and up verbose.
    pub verbosity: i8,
    pub log_format: LogFormat,
    /// Where the shutdown report goes, if anywhere.
    pub termination_log: Option<TerminationLog>,
    pub pre_stop_hook: Option<PreStopHook>,
    pub timeline: TimelineConfig,
    pub parent_death_signal: Option<Signal>,
    /// The command in a session of its own (dumb-init's default).
    pub new_session: bool,
    /// Log every reaped process other than the command as a warning (tini's -w).
    pub warn_on_reap: bool,
    /// The exit code when the command cannot be started, if not the shell's 126/127.
    pub spawn_failure_code: Option<u8>,
    /// The ports the adaptive hold watches (empty: the command's listening ports).
    pub drain_ports: Vec<u16>,
    /// Addresses whose connections are not traffic.
    pub drain_ignore_from: Vec<Cidr>,
}

/// What parsing the command line ended in, other than a [`Config`].
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// `--help` or `--version`: print this on stdout and exit 0.
    Info(String),
    /// Bad input: print this one-line error and the usage hint on stderr, exit 2.
    Usage(String),
}

/// Parses `args` (the program name first) and the `GRACE_INIT_*` environment.
pub fn parse(args: Vec<OsString>) -> Result<Config, Exit> {
    let configured_by_environment = sys::environment_has_name_starting_with(b"GRACE_INIT_");
    match plain_command(&args) {
        Some(config) if !configured_by_environment => Ok(config),
        _ => parse_with_clap(args),
    }
}

/// `grace-init [--] COMMAND [ARGS...]` with no option (and, checked by the caller, no
/// `GRACE_INIT_*` variable), the usual ENTRYPOINT, always means the defaults: this builds them
/// without running clap, whose parse is about 300,000 instructions, 85% of grace-init's start-up
/// work (callgrind). Anything else goes through clap; a unit test checks that both agree.
fn plain_command(args: &[OsString]) -> Option<Config> {
    let rest = args.get(1..)?;
    let command = match rest.first()?.as_bytes() {
        b"--" => &rest[1..],
        first if first.starts_with(b"-") => return None,
        _ => rest,
    };
    if command.is_empty() {
        return None;
    }
    Some(Config {
        command: command.to_vec(),
        single_child: false,
        rewrites: Vec::new(),
        exit_remaps: Vec::new(),
        verbosity: 0,
        log_format: LogFormat::Text,
        termination_log: Some(TerminationLog::kubernetes_default()),
        pre_stop_hook: None,
        parent_death_signal: None,
        new_session: false,
        warn_on_reap: false,
        spawn_failure_code: None,
        drain_ports: Vec::new(),
        drain_ignore_from: Vec::new(),
        timeline: TimelineConfig {
            stop_signal: Signal::TERM,
            stop_delay: Duration::ZERO,
            pre_stop_hook_timeout: None,
            grace_period: None,
            kill_margin: Duration::from_secs(2),
            cleanup_timeout: Duration::from_secs(2),
            drain: None,
        },
    })
}

fn parse_with_clap(args: Vec<OsString>) -> Result<Config, Exit> {
    let clap_exit = |error: clap::Error| match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Info(error.to_string()),
        _ => Exit::Usage(naming_the_variable(one_line(&error.to_string()), &error)),
    };
    let matches = Arguments::command()
        .try_get_matches_from(args)
        .map_err(clap_exit)?;
    let arguments = Arguments::from_arg_matches(&matches).map_err(clap_exit)?;
    let verbosity = verbosity(&matches, arguments.verbose, arguments.quiet).map_err(Exit::Usage)?;
    let mut timeline = TimelineConfig {
        stop_signal: arguments.stop_signal,
        stop_delay: arguments.stop_delay,
        pre_stop_hook_timeout: None,
        grace_period: arguments.grace_period,
        kill_margin: arguments.kill_margin,
        cleanup_timeout: arguments.cleanup_timeout,
        drain: None,
    };
    check_stop_budget(&timeline, arguments.pre_stop_timeout).map_err(Exit::Usage)?;
    check_rewrites(&arguments.rewrites).map_err(Exit::Usage)?;
    if let Some(quiet) = arguments.drain_quiet {
        let max = arguments
            .drain_max
            .unwrap_or_else(|| default_pre_stop_timeout(&timeline).max(timeline.stop_delay));
        check_drain(&timeline, quiet, max, arguments.drain_max.is_some()).map_err(Exit::Usage)?;
        timeline.drain = Some(Drain { quiet, max });
    }
    if arguments.pre_stop.is_some() {
        timeline.pre_stop_hook_timeout = Some(
            arguments
                .pre_stop_timeout
                .unwrap_or_else(|| default_pre_stop_timeout(&timeline)),
        );
    }
    if !arguments.stop_signal.is_forwardable() {
        return Err(Exit::Usage(format!(
            "--stop-signal {}: grace-init can never receive that signal",
            arguments.stop_signal
        )));
    }
    Ok(Config {
        command: arguments.command,
        single_child: arguments.single_child,
        rewrites: arguments.rewrites,
        exit_remaps: arguments.exit_remaps,
        verbosity,
        log_format: arguments.log_format,
        termination_log: TerminationLog::from_option(arguments.termination_log),
        pre_stop_hook: arguments.pre_stop,
        timeline,
        parent_death_signal: arguments.parent_death_signal,
        drain_ports: arguments.drain_ports,
        drain_ignore_from: arguments.drain_ignore_from,
        new_session: false,
        warn_on_reap: false,
        spawn_failure_code: None,
    })
}

/// -1 for `--quiet`, else the `--verbose` count. A level given on the command line beats one
/// from the environment; both from the same place contradict each other.
fn verbosity(matches: &ArgMatches, verbose: u8, quiet: bool) -> Result<i8, String> {
    let on_command_line = |id| matches.value_source(id) == Some(ValueSource::CommandLine);
    let verbose_level = verbose.min(i8::MAX as u8) as i8;
    match (quiet, verbose > 0) {
        (true, true) if on_command_line("quiet") == on_command_line("verbose") => {
            Err("--quiet and --verbose (or GRACE_INIT_QUIET and GRACE_INIT_VERBOSE) contradict each other".to_string())
        }
        (true, true) if on_command_line("verbose") => Ok(verbose_level),
        (true, _) => Ok(-1),
        (false, _) => Ok(verbose_level),
    }
}

/// The usage hint printed under a usage error.
pub fn usage_hint() -> String {
    format!("Usage: {USAGE} (see 'grace-init --help')")
}

/// A stop delay or a hook's timeout must leave the command time to stop before grace-init's
/// own kill.
fn check_stop_budget(
    timeline: &TimelineConfig,
    pre_stop_timeout: Option<Duration>,
) -> Result<(), String> {
    let Some(grace) = timeline.grace_period else {
        return Ok(());
    };
    let (margin, delay) = (timeline.kill_margin, timeline.stop_delay);
    if margin >= grace {
        return Err(format!(
            "--kill-margin {} must be shorter than --grace-period {}: nothing would be left for the command to stop",
            Human(margin),
            Human(grace)
        ));
    }
    fits_before_the_kill("--stop-delay", delay, "delay", grace, timeline)?;
    match pre_stop_timeout {
        Some(timeout) => {
            fits_before_the_kill("--pre-stop-timeout", timeout, "hook", grace, timeline)
        }
        None => Ok(()),
    }
}

/// Adds ` (from GRACE_INIT_X)` to a message about a bad value that came from that variable, so
/// that a user who never typed the option sees where the value was set.
fn naming_the_variable(message: String, error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        error.get(ContextKind::InvalidArg),
        error.get(ContextKind::InvalidValue),
    ) else {
        return message;
    };
    let Some(long) = arg
        .strip_prefix("--")
        .and_then(|a| a.split([' ', '=']).next())
    else {
        return message;
    };
    let variable = format!("GRACE_INIT_{}", long.to_uppercase().replace('-', "_"));
    let from_variable = std::env::var_os(&variable).is_some_and(|set| {
        set.to_str()
            .is_some_and(|set| set == value || set.split(',').any(|part| part == value))
    });
    if from_variable {
        format!("{message} (from {variable})")
    } else {
        message
    }
}

/// Clap's message on one line: its first paragraph, without the `error: ` prefix.
fn one_line(message: &str) -> String {
    let first_paragraph = message.split("\n\n").next().unwrap_or(message);
    let joined = first_paragraph
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined
        .strip_prefix("error: ")
        .unwrap_or(&joined)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_args(args: &[&str]) -> Vec<OsString> {
        std::iter::once("grace-init")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Through clap always, whatever the environment of the test run.
    fn parse_args(args: &[&str]) -> Result<Config, Exit> {
        parse_with_clap(os_args(args))
    }

    #[test]
    fn plain_commands_skip_clap_and_get_exactly_what_clap_gives() {
        for args in [
            &["sh", "-c", "echo hi"][..],
            &["--", "sh", "-c", "x"],
            &["--", "-weird-name", "--help"],
            &["/start.sh", "--verbose"],
            &["app", "--", "x"],
        ] {
            let fast = plain_command(&os_args(args))
                .unwrap_or_else(|| panic!("{args:?} should take the fast path"));
            let clap = parse_args(args).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{args:?}");
        }
    }

    #[test]
    fn options_and_errors_go_through_clap() {
        for args in [
            &[][..],
            &["--"],
            &["-v", "x"],
            &["--help"],
            &["--stop-delay", "5s", "x"],
        ] {
            assert!(plain_command(&os_args(args)).is_none(), "{args:?}");
        }
        assert!(plain_command(&[]).is_none(), "no argv[0] at all");
    }

    fn usage_error(args: &[&str]) -> String {
        match parse_args(args) {
            Err(Exit::Usage(message)) => message,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn parsing_stops_at_the_first_non_option() {
        let config = parse_args(&["-v", "sh", "-c", "echo hi", "--single-child"]).unwrap();
        assert_eq!(config.command, ["sh", "-c", "echo hi", "--single-child"]);
        assert!(!config.single_child);
        assert_eq!(config.verbosity, 1);
        let config = parse_args(&["--single-child", "--", "-weird-name"]).unwrap();
        assert_eq!(config.command, ["-weird-name"]);
        assert!(config.single_child);
    }

    #[test]
    fn rewrites_repeat_and_take_comma_lists() {
        let config =
            parse_args(&["-r", "TERM:QUIT", "--rewrite", "hup:usr1,USR2:NONE", "x"]).unwrap();
        assert_eq!(config.rewrites.len(), 3);
        assert_eq!(config.rewrites[2].to, None);
    }

    #[test]
    fn defaults_match_the_documentation() {
        let config = parse_args(&["x"]).unwrap();
        assert_eq!(config.verbosity, 0);
        assert_eq!(
            config.timeline,
            TimelineConfig {
                stop_signal: Signal::TERM,
                stop_delay: Duration::ZERO,
                pre_stop_hook_timeout: None,
                grace_period: None,
                kill_margin: Duration::from_secs(2),
                cleanup_timeout: Duration::from_secs(2),
                drain: None,
            }
        );
        assert!(config.pre_stop_hook.is_none());
    }

    #[test]
    fn timeline_options_parse() {
        let config = parse_args(&[
            "--stop-signal",
            "quit",
            "--stop-delay",
            "5s",
            "--pre-stop",
            "sh -c 'echo bye'",
            "--grace-period",
            "30",
            "--kill-margin",
            "1500ms",
            "--cleanup-timeout",
            "1m",
            "x",
        ])
        .unwrap();
        assert_eq!(config.timeline.stop_signal.to_string(), "SIGQUIT");
        assert_eq!(config.timeline.stop_delay, Duration::from_secs(5));
        assert_eq!(config.timeline.grace_period, Some(Duration::from_secs(30)));
        assert_eq!(config.timeline.kill_margin, Duration::from_millis(1500));
        assert_eq!(config.timeline.cleanup_timeout, Duration::from_secs(60));
        assert_eq!(config.pre_stop_hook.unwrap().0, ["sh", "-c", "echo bye"]);
        assert_eq!(
            config.timeline.pre_stop_hook_timeout,
            Some(Duration::from_millis(14_250)),
            "half of 30s - 1.5s"
        );
    }

    #[test]
    fn bad_values_give_one_line_naming_the_value() {
        for (args, named) in [
            (&["-r", "FOO:TERM", "x"][..], "'FOO'"),
            (&["-r", "TERM:", "x"], "'TERM:'"),
            (&["-r", "99999:TERM", "x"], "'99999'"),
            (&["-r", "KILL:TERM", "x"], "SIGKILL"),
            (&["--remap-exit", "300:0", "x"], "'300'"),
            (&["--stop-delay", "abc", "x"], "'abc'"),
            (&["--stop-delay", "-5s", "x"], "'-5s'"),
            (&["--stop-signal", "NOPE", "x"], "'NOPE'"),
            (&["--pre-stop", "sh -c 'x", "x"], "quote"),
            (&["--no-such-option", "x"], "'--no-such-option'"),
            (&[], "COMMAND"),
        ] {
            let message = usage_error(args);
            assert!(message.contains(named), "{args:?}: {message}");
            assert!(!message.contains('\n'), "{args:?}: {message}");
        }
    }

    #[test]
    fn stop_delay_must_fit_inside_the_grace_period_minus_margin() {
        let message = usage_error(&["--stop-delay", "30s", "--grace-period", "30s", "x"]);
        assert!(
            message.contains("--stop-delay 30s does not fit"),
            "{message}"
        );
        assert!(message.contains("leaves 28s"), "{message}");
        let message = usage_error(&["--kill-margin", "5s", "--grace-period", "3s", "x"]);
        assert!(
            message.contains("--kill-margin 5s must be shorter"),
            "{message}"
        );
        assert!(parse_args(&["--stop-delay", "27s", "--grace-period", "30s", "x"]).is_ok());
    }

    #[test]
    fn stop_signal_must_be_receivable() {
        assert!(usage_error(&["--stop-signal", "KILL", "x"]).contains("SIGKILL"));
    }

    #[test]
    fn help_and_version_are_information_not_errors() {
        let Err(Exit::Info(help)) = parse_args(&["--help"]) else {
            panic!()
        };
        // That it names every option is checked on the real binary in tests/cli.rs.
        assert!(
            help.contains("Usage: grace-init [OPTIONS] [--] COMMAND"),
            "{help}"
        );
        let Err(Exit::Info(version)) = parse_args(&["--version"]) else {
            panic!()
        };
        assert!(version.contains(env!("CARGO_PKG_VERSION")));
    }
}

/// Random command lines and values: never a panic, and every error is one line that names
/// what was wrong.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::ffi::OsStringExt;

    fn word() -> impl Strategy<Value = OsString> {
        prop_oneof![
            prop::sample::select(vec![
                "--stop-delay",
                "--grace-period",
                "--kill-margin",
                "--cleanup-timeout",
                "--pre-stop",
                "--pre-stop-timeout",
                "--stop-signal",
                "-r",
                "--rewrite",
                "--remap-exit",
                "--single-child",
                "-v",
                "-vv",
                "-q",
                "--quiet",
                "--",
                "-",
                "5s",
                "0",
                "1m30s",
                "TERM:QUIT",
                "TERM:TERM",
                "143:0",
                "USR1:NONE",
                "RTMIN+3",
                "sh -c 'sleep 1'",
                "x",
            ])
            .prop_map(OsString::from),
            "[ -~]{0,10}".prop_map(OsString::from),
            prop::collection::vec(any::<u8>(), 0..6).prop_map(|mut b| {
                b.retain(|&c| c != 0);
                OsString::from_vec(b)
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        #[test]
        fn any_command_line_parses_or_fails_with_one_line(words in prop::collection::vec(word(), 0..7)) {
            let args: Vec<OsString> = std::iter::once(OsString::from("grace-init")).chain(words).collect();
            match parse_with_clap(args.clone()) {
                Ok(config) => prop_assert!(!config.command.is_empty()),
                Err(Exit::Info(text)) => prop_assert!(!text.is_empty()),
                Err(Exit::Usage(message)) => {
                    prop_assert!(!message.is_empty(), "{:?}", args);
                    prop_assert!(!message.contains('\n'), "{:?}: {}", args, message);
                }
            }
        }

        #[test]
        fn bad_durations_are_named(text in "[ -~]{0,12}") {
            if let Err(error) = parse_duration(&text) {
                let quoted = format!("'{}'", text);
                prop_assert!(error.to_string().contains(&quoted), "{}", error);
            }
        }

        #[test]
        fn bad_signals_are_named(text in "[ -~]{0,12}") {
            if let Err(error) = text.parse::<Signal>() {
                let quoted = format!("'{}'", text);
                prop_assert!(error.to_string().contains(&quoted), "{}", error);
            }
        }

        #[test]
        fn bad_rewrites_and_exit_remaps_name_the_rule_or_its_part(text in "[ -~]{0,12}") {
            if let Err(message) = parse_rewrite(&text) {
                let parts = text.split_once(':').map_or(vec![], |(a, b)| vec![a, b]);
                let named = message.contains(&text)
                    || parts.iter().any(|part| !part.is_empty() && message.contains(part));
                prop_assert!(named, "{}: {}", text, message);
                prop_assert!(!message.contains('\n'));
            }
            if let Err(message) = parse_exit_remap(&text) {
                let parts = text.split_once(':').map_or(vec![], |(a, b)| vec![a, b]);
                let named = message.contains(&text)
                    || parts.iter().any(|part| message.contains(&format!("'{part}'")));
                prop_assert!(named, "{}: {}", text, message);
            }
        }

        #[test]
        fn shell_words_never_panic_and_errors_quote_the_text(text in "[ -~]{0,16}") {
            if let Err(message) = split_words(&text) {
                prop_assert!(message.contains(&text), "{}", message);
            }
        }
    }
}
