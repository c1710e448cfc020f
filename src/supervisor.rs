//! The event loop: sleeps until a signal or the timeline's next deadline, reaps children, feeds
//! what happened to the [`Timeline`] and carries out the actions it returns.
//!
//! Single-threaded by design: every signal stays blocked and is taken synchronously with
//! `rt_sigtimedwait`, so there are no handlers, no races with them, and no periodic wake-ups.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use tracing::field::{display, DisplayValue};
use tracing::{debug, error, info, warn};

use crate::cli::Config;
use crate::duration::Human;
use crate::exit_status::remap_exit_code;
use crate::log;
use crate::processes::{self, Reached, Scope};
use crate::report::ShutdownReport;
use crate::rewrite::rewrite_signal;
use crate::signal::Signal;
use crate::spawn::{self, InheritedSignals};
use crate::sys::{self, Pid, Reaped, SignalSet, TerminationMessage, Wake};
use crate::timeline::{Action, Event, ForwardReason, KillReason, Timeline};
use crate::traffic::TrafficWatch;

/// How often traffic is sampled during an adaptive hold (and only then).
const TRAFFIC_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Starts the command and supervises it until grace-init must exit; returns the exit code.
/// `log_fd` is grace-init's own log descriptor, kept open when inherited ones are closed.
pub fn run(config: Config, inherited: InheritedSignals, start: Instant, log_fd: Option<i32>) -> u8 {
    let me = sys::own_pid();
    let scope = if me.raw() == 1 {
        Scope::Namespace
    } else {
        match sys::become_child_subreaper() {
            Ok(()) => debug!(pid = me.raw(), "not PID 1: registered as child subreaper"),
            Err(errno) => warn!(
                pid = me.raw(),
                error = errno.desc(),
                "not PID 1 and cannot become child subreaper: orphaned descendants go to PID 1 \
                 instead, which must reap them; grace-init can no longer stop them"
            ),
        }
        Scope::DescendantsOf(me)
    };
    // Only the hook needs it: grace-init itself moves to `/`.
    let directory = config
        .pre_stop_hook
        .as_ref()
        .and_then(|_| std::env::current_dir().ok());
    // In a pipeline (`grace-init app | less`) the foreground belongs to the whole job. A command
    // in a new session (dumb-init's mode) takes the terminal as its controlling terminal instead.
    let take_terminal = !config.new_session
        && sys::holds_terminal_foreground()
        && !processes::others_in_own_group();
    log_plan(&config);
    if let Some(signal) = config.parent_death_signal {
        if let Err(errno) = sys::set_parent_death_signal(signal) {
            warn!(%signal, error = errno.desc(), "cannot set the parent-death signal");
        }
    }
    if config.new_session {
        // The command's new session takes the terminal as its own.
        sys::release_controlling_terminal();
    }
    let spawned = spawn::spawn_command(
        &config.command,
        inherited,
        take_terminal,
        config.new_session,
    );
    let command = match spawned {
        Ok(pid) => pid,
        Err(error) => {
            if let Some(failed) = error.pid.filter(|_| take_terminal) {
                // It took the terminal before exec failed.
                give_terminal_back_from(failed);
            }
            log::print_fatal(format_args!("{error}"));
            let code = remap_exit_code(
                config.spawn_failure_code.unwrap_or(error.exit_code()),
                &config.exit_remaps,
            );
            let mut report = ShutdownReport::default();
            report.note(None, start.elapsed(), format_args!("{error}"));
            write_report(&config, &report, code);
            return code;
        }
    };
    info!(
        command = config.command[0].to_string_lossy().as_ref(),
        pid = command.raw(),
        terminal = take_terminal,
        "started the command in its own process group"
    );
    if let Err(errno) = sys::close_fds_from_3_except(log_fd) {
        warn!(
            error = errno.desc(),
            "cannot close inherited file descriptors"
        );
    }
    if let Err(error) = sys::change_directory_to_root() {
        warn!(%error, "cannot change directory to /");
    }
    let timeline = Timeline::new(config.timeline.clone());
    Supervisor {
        config,
        start,
        inherited,
        me,
        scope,
        directory,
        command: Some(command),
        command_group: command,
        took_terminal: take_terminal,
        forwarded_stop: None,
        report: ShutdownReport::default(),
        traffic: None,
        hook: None,
        timeline,
    }
    .event_loop()
}

/// Hands the terminal's foreground back to grace-init's own group if `group` (the command's,
/// alive or not) still holds it: a terminal taken is a terminal given back, and one that
/// somebody else holds now is left alone.
/// States the configured shutdown timeline at start (`-v`), and warns about settings that are
/// valid but risky.
fn log_plan(config: &Config) {
    let timeline = &config.timeline;
    let forwarded_signal = rewrite_signal(timeline.stop_signal, &config.rewrites);
    let forwarded = match forwarded_signal {
        Some(signal) => signal.to_string(),
        None => "nothing (dropped by --rewrite)".to_string(),
    };
    let hook = config
        .pre_stop_hook
        .as_ref()
        .map(|hook| shell_quoted(&hook.0));
    let kill_after = timeline.kill_after();
    info!(
        stop_signal = %timeline.stop_signal,
        forwarded = %forwarded,
        stop_delay = %Human(timeline.stop_delay),
        pre_stop = hook.as_deref().unwrap_or("none"),
        pre_stop_timeout = %timeline.pre_stop_hook_timeout.map_or("-".to_string(), |t| Human(t).to_string()),
        drain = %timeline.drain.map_or("-".to_string(), |d| format!("quiet {} max {}", Human(d.quiet), Human(d.max))),
        kill_after_stop = %kill_after.map_or("never".to_string(), |k| Human(k).to_string()),
        cleanup_timeout = %Human(timeline.cleanup_timeout),
        "shutdown plan"
    );
    if forwarded_signal.is_none() {
        warn!(
            stop_signal = %timeline.stop_signal,
            "--rewrite drops the stop signal: the command is never asked to stop, only killed at the deadline"
        );
    }
    let holds = !timeline.stop_delay.is_zero() || hook.is_some() || timeline.drain.is_some();
    if holds && timeline.grace_period.is_none() {
        warn!(
            stop_delay = %Human(timeline.stop_delay),
            "the stop signal is held back but --grace-period is not set: grace-init cannot know the runtime's deadline (docker stop: 10s, Kubernetes: 30s by default) and cannot kill before it"
        );
    }
    if timeline.grace_period.is_some() && timeline.kill_margin < Duration::from_secs(1) {
        warn!(
            kill_margin = %Human(timeline.kill_margin),
            "a kill margin under 1s leaves the runtime's SIGKILL little room to come after grace-init's own kill and its report"
        );
    }
}

/// Words as a shell would need them written: `sh -c 'echo hook; exit 3'`.
fn shell_quoted(words: &[String]) -> String {
    let plain = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c))
    };
    words
        .iter()
        .map(|w| match plain(w) {
            true => w.clone(),
            false => format!("'{}'", w.replace('\'', "'\\''")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Continues a command that job control stopped where nobody could continue it (`why`), and says
/// so. Its group and the command itself, in case it left its group.
fn continue_command(command: Pid, signal: Signal, why: &str) {
    let _ = sys::kill_process_group(command, Signal::CONT);
    let _ = sys::kill_process(command, Signal::CONT);
    warn!(
        pid = command.raw(),
        %signal,
        "command stopped, but {why}: continued it"
    );
}

/// Writes the shutdown report to the termination-message file, if there is one to write.
fn write_report(config: &Config, report: &ShutdownReport, code: u8) {
    let Some(target) = &config.termination_log else {
        return;
    };
    let text = report.render(code);
    let path = target.path.to_string_lossy();
    let path = path.as_ref();
    match sys::write_termination_message(&target.path, text.as_bytes()) {
        TerminationMessage::Written => {
            debug!(path, "wrote the shutdown report")
        }
        TerminationMessage::Missing if !target.named => {}
        TerminationMessage::NotEmpty => {
            info!(path, "termination message left as the command wrote it")
        }
        outcome => warn!(
            path,
            "cannot write the shutdown report: {}",
            describe(outcome)
        ),
    }
}

fn describe(outcome: TerminationMessage) -> &'static str {
    match outcome {
        TerminationMessage::Missing => "no such file",
        TerminationMessage::NotAFile => "not a regular file",
        TerminationMessage::Failed(errno) => errno.desc(),
        TerminationMessage::Written | TerminationMessage::NotEmpty => "",
    }
}

fn give_terminal_back_from(group: Pid) {
    if sys::terminal_foreground() == Some(group) {
        let Some(own_group) = sys::own_process_group() else {
            return;
        };
        if let Err(errno) = sys::set_terminal_foreground(own_group) {
            debug!(error = errno.desc(), "cannot take the terminal back");
        }
    }
}

struct Supervisor {
    config: Config,
    start: Instant,
    inherited: InheritedSignals,
    me: Pid,
    scope: Scope,
    /// Where grace-init was started, for the pre-stop hook (grace-init itself moved to `/`).
    directory: Option<PathBuf>,
    /// The command while it has not been reaped. Once reaped, its number may belong to anyone,
    /// so it is gone from here: nothing can signal it by mistake.
    command: Option<Pid>,
    /// The command's process group number, only ever compared with the terminal's foreground
    /// group, never signalled.
    command_group: Pid,
    /// Whether the command was started in the terminal's foreground.
    took_terminal: bool,
    /// The job-control stop signal grace-init forwarded and that has not stopped the command
    /// yet: that stop was asked for by whoever signalled grace-init, and is left alone.
    forwarded_stop: Option<Signal>,
    /// What happened, for the termination-message file.
    report: ShutdownReport,
    /// The traffic watch of an adaptive hold, while it runs.
    traffic: Option<TrafficWatch>,
    /// The running pre-stop hook and when it started.
    hook: Option<(Pid, Duration)>,
    timeline: Timeline,
}

impl Supervisor {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn event_loop(mut self) -> u8 {
        // Both buffers are reused for every wake-up: the hot path allocates nothing.
        let mut events = VecDeque::with_capacity(8);
        let mut actions = Vec::with_capacity(4);
        loop {
            let mut timeout = self
                .timeline
                .next_deadline()
                .map(|deadline| deadline.saturating_sub(self.now()));
            if self.traffic.is_some() {
                timeout = Some(
                    timeout.map_or(TRAFFIC_SAMPLE_INTERVAL, |t| t.min(TRAFFIC_SAMPLE_INTERVAL)),
                );
            }
            match sys::wait_for_signal(SignalSet::ALL, timeout) {
                Wake::Signal(received) if received.signal == Signal::CHLD => {
                    self.reap_children(&mut events)
                }
                // Not even logged: at -vv the log line's own write would raise the next one
                // (SIGXFSZ past the file size limit) and grace-init would never rest.
                Wake::Signal(received) if received.raised_by_own_write(self.me) => {}
                Wake::Signal(received)
                    if received.raised_by_kernel()
                        && (received.signal == Signal::TTIN || received.signal == Signal::TTOU) =>
                {
                    // The terminal stops grace-init's group for another member's access (a
                    // pipeline); grace-init never uses the terminal and the command is not in it.
                    debug!(signal = %received.signal, "ignored: the terminal's, for grace-init's own group")
                }
                Wake::Signal(received) => {
                    debug!(signal = %received.signal, from_pid = received.sender(), "received");
                    if received.signal == Signal::CONT {
                        self.resume_in_foreground();
                    }
                    events.push_back(Event::Signal(received.signal));
                }
                Wake::Timeout => {}
            }
            self.sample_traffic(&mut events);
            // Deadlines are checked on every wake-up, so a flood of signals cannot hold them off.
            if self
                .timeline
                .next_deadline()
                .is_some_and(|deadline| self.now() >= deadline)
            {
                events.push_back(Event::Tick);
            }
            while let Some(event) = events.pop_front() {
                self.timeline.handle_into(event, self.now(), &mut actions);
                for action in actions.drain(..) {
                    if let Some(code) = self.carry_out(action, &mut events) {
                        return code;
                    }
                }
            }
        }
    }

    /// Reaps every exited child: one SIGCHLD may stand for many exits.
    fn reap_children(&mut self, events: &mut VecDeque<Event>) {
        let mut command_status = None;
        let nothing_left = loop {
            match sys::reap_any_child() {
                Ok(Reaped::Child { pid, status }) if Some(pid) == self.command => {
                    self.command = None;
                    info!(
                        pid = pid.raw(),
                        since_stop = self.since_stop(),
                        "command {status}"
                    );
                    self.note(format_args!("command {status}"));
                    if self.took_terminal {
                        give_terminal_back_from(self.command_group);
                    }
                    command_status = Some(status);
                }
                Ok(Reaped::Stopped { pid, signal }) if Some(pid) == self.command => {
                    self.command_stopped(pid, signal)
                }
                Ok(Reaped::Stopped { pid, signal }) => {
                    debug!(pid = pid.raw(), %signal, "a child stopped")
                }
                Ok(Reaped::Child { pid, status })
                    if self.hook.is_some_and(|(hook, _)| hook == pid) =>
                {
                    let started = self.hook.take().map_or(Duration::ZERO, |(_, at)| at);
                    let took = Human(self.now().saturating_sub(started));
                    info!(
                        pid = pid.raw(),
                        took = %took,
                        since_stop = self.since_stop(),
                        "pre-stop hook {status}"
                    );
                    self.note(format_args!("pre-stop hook {status} (took {took})"));
                    events.push_back(Event::HookExited);
                }
                Ok(Reaped::Child { pid, status }) if self.config.warn_on_reap => {
                    warn!(
                        pid = pid.raw(),
                        "reaped a process that was not the command: {status}"
                    )
                }
                Ok(Reaped::Child { pid, status }) => {
                    debug!(pid = pid.raw(), "reaped: {status}")
                }
                Ok(Reaped::NoneReady) => break false,
                Ok(Reaped::NoChildren) => break true,
                Err(errno) => {
                    error!(error = errno.desc(), "waitpid failed");
                    break false;
                }
            }
        };
        if let Some(status) = command_status {
            events.push_back(Event::CommandExited {
                status,
                others_left: !nothing_left,
            });
        }
        if nothing_left {
            events.push_back(Event::NothingLeft);
        }
    }

    /// The `since_stop=` field of the timeline's log lines: time since the stop signal arrived,
    /// recorded only once a stop is under way.
    /// During an adaptive hold: feeds what the traffic watch sees to the timeline.
    fn sample_traffic(&mut self, events: &mut VecDeque<Event>) {
        if !self.timeline.watching_traffic() {
            self.traffic = None;
            return;
        }
        let Some(watch) = self.traffic.as_mut() else {
            return;
        };
        match watch.sample() {
            Ok(Some(ago)) => {
                let at = self.start.elapsed().saturating_sub(ago);
                debug!(ago = %Human(ago), "traffic seen");
                events.push_back(Event::TrafficSeen(at));
            }
            Ok(None) => {}
            Err(errno) => {
                warn!(
                    error = errno.desc(),
                    "cannot sample traffic any more: the hold ends after the quiet period"
                );
                self.traffic = None;
            }
        }
    }

    /// Starts watching traffic for an adaptive hold.
    fn start_traffic_watch(&mut self) {
        let Some(drain) = self.config.timeline.drain else {
            return;
        };
        match TrafficWatch::start(
            self.scope,
            &self.config.drain_ports,
            &self.config.drain_ignore_from,
        ) {
            Ok(watch) if watch.ports().is_empty() => warn!(
                "adaptive hold: the command listens on no TCP port (give --drain-ports); the hold ends after the quiet period"
            ),
            Ok(watch) => {
                info!(
                    ports = ?watch.ports(),
                    quiet = %Human(drain.quiet),
                    max = %Human(drain.max),
                    "adaptive hold: watching the command's ports for traffic"
                );
                self.traffic = Some(watch);
            }
            Err(errno) => warn!(
                error = errno.desc(),
                "adaptive hold: cannot watch traffic (sock_diag); the hold ends after the quiet period"
            ),
        }
    }

    /// Notes a step of the shutdown for the report.
    fn note(&mut self, step: fmt::Arguments<'_>) {
        let now = self.now();
        let since_stop = self.timeline.stopped_at().map(|at| now.saturating_sub(at));
        self.report.note(since_stop, now, step);
    }

    fn since_stop(&self) -> Option<DisplayValue<Human>> {
        self.timeline
            .stopped_at()
            .map(|at| display(Human(self.now().saturating_sub(at))))
    }

    /// Does what the timeline asked; returns the exit code when grace-init must exit.
    fn carry_out(&mut self, action: Action, events: &mut VecDeque<Event>) -> Option<u8> {
        match action {
            Action::Forward(signal, reason) => self.forward(signal, reason),
            Action::HoldStop { .. } => {
                let (signal, delay) = (
                    self.config.timeline.stop_signal,
                    Human(self.config.timeline.stop_delay),
                );
                info!(
                    %signal,
                    %delay,
                    pre_stop_hook = self.config.pre_stop_hook.is_some(),
                    "stop signal received: holding it back for the stop delay"
                );
                self.start_traffic_watch();
                self.note(format_args!(
                    "{signal} received {} after start: held back for the stop delay of {delay}",
                    Human(self.now())
                ));
            }
            Action::StartPreStopHook => self.start_pre_stop_hook(events),
            Action::KillPreStopHook => {
                if let Some((hook, started)) = self.hook {
                    // Not reaped yet, so the number is still the hook's own group.
                    let _ = sys::kill_process_group(hook, Signal::KILL);
                    let took = Human(self.now().saturating_sub(started));
                    warn!(
                        pid = hook.raw(),
                        since_stop = self.since_stop(),
                        "pre-stop hook still running after {took}: killed it; the stop signal goes on"
                    );
                    self.note(format_args!(
                        "pre-stop hook still running after {took}: killed"
                    ));
                }
            }
            Action::TerminateLeftovers { during_stop } => {
                let signal =
                    match rewrite_signal(self.config.timeline.stop_signal, &self.config.rewrites) {
                        Some(forwarded) if during_stop => forwarded,
                        _ => Signal::TERM,
                    };
                let count = processes::signal_everything(self.scope, signal, self.command);
                if count == Reached::Nobody {
                    warn!(since_stop = self.since_stop(), "{LEFTOVERS_UNREACHABLE}");
                    self.note(format_args!("{LEFTOVERS_UNREACHABLE}"));
                } else if count != Reached::Counted(0) {
                    self.note(format_args!(
                        "the command left {} behind: sent {signal}",
                        process_count(count)
                    ));
                    let until = self.timeline.next_deadline().unwrap_or_default();
                    let wait = Human(until.saturating_sub(self.now()));
                    info!(
                        %signal,
                        to = %process_count(count),
                        wait = %wait,
                        since_stop = self.since_stop(),
                        "the command left processes behind: asked them to stop"
                    );
                }
            }
            Action::KillEverything(reason) => {
                let killed = process_count(processes::signal_everything(
                    self.scope,
                    Signal::KILL,
                    self.command,
                ));
                match reason {
                    KillReason::Deadline { .. } => self.note(format_args!(
                        "deadline (grace period - kill margin): grace-init SIGKILLed {killed}"
                    )),
                    KillReason::CleanupTimeout => self.note(format_args!(
                        "leftovers still running after the {} cleanup timeout: SIGKILLed {killed}",
                        Human(self.config.timeline.cleanup_timeout)
                    )),
                }
                match reason {
                    KillReason::Deadline {
                        since_forward: Some(since_forward),
                        ..
                    } => warn!(
                        since_stop = self.since_stop(),
                        "command did not exit within {} after {}; killed {killed}",
                        Human(since_forward),
                        self.forwarded_stop_signal()
                    ),
                    KillReason::Deadline { .. } => warn!(
                        since_stop = self.since_stop(),
                        "deadline reached before the stop signal was passed on or the command's leftovers exited; killed {killed}"
                    ),
                    KillReason::CleanupTimeout => warn!(
                        "processes left behind by the command did not exit within {} after SIGTERM; killed {killed}",
                        Human(self.config.timeline.cleanup_timeout)
                    ),
                }
            }
            Action::Exit(status) => {
                if self.took_terminal {
                    give_terminal_back_from(self.command_group);
                }
                let code = remap_exit_code(status.code(), &self.config.exit_remaps);
                info!(code, command = %status, since_stop = self.since_stop(), "exiting");
                if code != status.code() {
                    self.note(format_args!(
                        "exit code {} remapped to {code}",
                        status.code()
                    ));
                }
                write_report(&self.config, &self.report, code);
                return Some(code);
            }
        }
        None
    }

    /// The stop signal as the command receives it, after `--rewrite`.
    fn forwarded_stop_signal(&self) -> String {
        let stop = self.config.timeline.stop_signal;
        match rewrite_signal(stop, &self.config.rewrites) {
            Some(signal) => signal.to_string(),
            None => format!("{stop} (dropped by --rewrite)"),
        }
    }

    fn forward(&mut self, signal: Signal, reason: ForwardReason) {
        let Some(target_signal) = rewrite_signal(signal, &self.config.rewrites) else {
            debug!(%signal, "dropped (--rewrite)");
            return;
        };
        let (result, target, pid) = match (self.command, self.config.single_child) {
            (Some(command), true) => (sys::kill_process(command, target_signal), "pid", command),
            (Some(command), false) => (
                sys::kill_process_group(command, target_signal),
                "group",
                command,
            ),
            (None, true) => {
                debug!(%signal, "not forwarded: the command has exited");
                return;
            }
            (None, false) => {
                // The command's group number may belong to a stranger by now: what is left of
                // its group is among the processes grace-init answers for.
                match processes::signal_everything(self.scope, target_signal, None) {
                    Reached::Nobody => warn!(signal = %target_signal, "{LEFTOVERS_UNREACHABLE}"),
                    reached => debug!(
                        signal = %Rewritten(signal, target_signal),
                        to = %process_count(reached),
                        "forwarded to what the command left behind"
                    ),
                }
                return;
            }
        };
        if result.is_ok()
            && self.config.new_session
            && signal.is_job_control_stop()
            && sys::parent_does_job_control()
        {
            // dumb-init's mode: the command's group got SIGSTOP; grace-init stops as well, as a
            // job would, until SIGCONT (which it then forwards). Only under a job-control shell:
            // elsewhere nobody would continue grace-init, and its deadlines would freeze.
            debug!(%signal, "stopping grace-init too, until SIGCONT");
            sys::stop_self();
        }
        if result.is_ok() && target_signal.is_job_control_stop() {
            self.forwarded_stop = Some(target_signal);
        } else if result.is_ok() && target_signal == Signal::CONT {
            self.forwarded_stop = None;
        }
        let to = Target(target, pid);
        let shown = Rewritten(signal, target_signal);
        let since_stop = self.since_stop();
        match (result, reason) {
            (Ok(()), ForwardReason::Passthrough) => debug!(signal = %shown, %to, "forwarded"),
            (Ok(()), ForwardReason::StopSignal) => {
                info!(signal = %shown, %to, since_stop, "forwarded the stop signal");
                let uptime = Human(self.now());
                self.note(format_args!(
                    "{signal} received {uptime} after start: forwarded {shown} to {to} at once"
                ));
            }
            (Ok(()), ForwardReason::StopDelayOver) => {
                info!(signal = %shown, %to, since_stop, "stop delay over: forwarded");
                self.note(format_args!("hold over: forwarded {shown} to {to}"));
            }
            (Ok(()), ForwardReason::StopDelayCut) => {
                info!(
                    signal = %shown,
                    %to,
                    since_stop,
                    "stop delay cut short by a second signal: forwarded"
                );
                self.note(format_args!(
                    "hold cut short by a second signal: forwarded {shown} to {to}"
                ));
            }
            (Ok(()), ForwardReason::DrainQuiet { last_traffic }) => {
                let quiet = self
                    .config
                    .timeline
                    .drain
                    .map_or(Duration::ZERO, |d| d.quiet);
                info!(
                    signal = %shown,
                    %to,
                    since_stop,
                    traffic_last_seen = %Human(last_traffic),
                    "adaptive hold over: no traffic for {}, forwarded",
                    Human(quiet)
                );
                self.note(format_args!(
                    "adaptive hold over (traffic last seen at +{}, then quiet for {}): forwarded {shown} to {to}",
                    Human(last_traffic),
                    Human(quiet)
                ));
            }
            (Ok(()), ForwardReason::DrainCapReached { last_traffic }) => {
                let max = self.config.timeline.drain.map_or(Duration::ZERO, |d| d.max);
                info!(
                    signal = %shown,
                    %to,
                    since_stop,
                    traffic_last_seen = %Human(last_traffic),
                    "adaptive hold cut at its cap of {}: traffic kept coming; forwarded",
                    Human(max)
                );
                self.note(format_args!(
                    "adaptive hold cut at --drain-max {} (traffic last seen at +{}): forwarded {shown} to {to}",
                    Human(max),
                    Human(last_traffic)
                ));
            }
            (Err(Errno::ESRCH), _) => debug!(signal = %shown, %to, "not forwarded: nobody left"),
            (Err(errno), _) => warn!(
                signal = %shown,
                %to,
                error = errno.desc(),
                "could not forward"
            ),
        }
    }

    fn start_pre_stop_hook(&mut self, events: &mut VecDeque<Event>) {
        let Some(hook) = &self.config.pre_stop_hook else {
            events.push_back(Event::HookExited);
            return;
        };
        if let Some(gone) = self.directory.as_deref().filter(|dir| !dir.is_dir()) {
            warn!(
                directory = gone.to_string_lossy().as_ref(),
                "the directory grace-init was started in is gone: the pre-stop hook runs in /"
            );
        }
        match spawn::spawn_pre_stop_hook(&hook.0, self.inherited, self.directory.as_deref()) {
            Ok(pid) => {
                info!(pid = pid.raw(), "pre-stop hook started");
                self.hook = Some((pid, self.now()));
            }
            Err(error) => {
                error!("pre-stop hook failed: {error}");
                self.note(format_args!("pre-stop hook failed: {error}"));
                events.push_back(Event::HookExited);
            }
        }
    }

    /// The command was stopped by `signal`. Ctrl-Z (SIGTSTP) and background terminal access
    /// (SIGTTIN, SIGTTOU) that the terminal raised are job control: under a job-control shell
    /// grace-init stops too, so the shell sees a stopped job, and takes the terminal back; as
    /// PID 1 nobody could resume the command, so grace-init continues it. Other stops (SIGSTOP
    /// from a debugger, a stop signal sent to grace-init and forwarded) are left to whoever
    /// sent them, who can send SIGCONT.
    fn command_stopped(&mut self, command: Pid, signal: Signal) {
        let forwarded = self
            .forwarded_stop
            .take_if(|forwarded| *forwarded == signal);
        if forwarded.is_some() || !signal.is_job_control_stop() {
            info!(pid = command.raw(), %signal, "command stopped");
            return;
        }
        if self.scope == Scope::Namespace {
            let needs_terminal = signal != Signal::TSTP;
            if needs_terminal && sys::holds_terminal_foreground() {
                let _ = sys::set_terminal_foreground(command);
            }
            if needs_terminal && sys::terminal_foreground() != Some(command) {
                warn!(pid = command.raw(), %signal, "command stopped to use the terminal, which it cannot have: left stopped");
                return;
            }
            continue_command(command, signal, "PID 1 has no job control to resume it");
            return;
        }
        if !sys::terminal_of_own_session() {
            info!(pid = command.raw(), %signal, "command stopped; no terminal of this session, so it stays stopped until continued");
            return;
        }
        if !sys::parent_does_job_control() {
            // A session leader (`docker exec -it`, `ssh -t`) or a parent that is not a
            // job-control shell: nobody would continue a stopped grace-init.
            continue_command(
                command,
                signal,
                "no job-control shell above grace-init could resume it",
            );
            return;
        }
        give_terminal_back_from(command);
        info!(pid = command.raw(), %signal, "command stopped: stopping grace-init too, until SIGCONT");
        sys::stop_self();
    }

    /// grace-init was continued (`fg`, `bg`): if it is now the terminal's foreground job, the
    /// command gets the terminal before it gets the SIGCONT that follows.
    fn resume_in_foreground(&mut self) {
        let Some(command) = self.command else {
            return;
        };
        if sys::holds_terminal_foreground() && !processes::others_in_own_group() {
            match sys::set_terminal_foreground(command) {
                // Taken now, so given back when the command ends.
                Ok(()) => self.took_terminal = true,
                Err(errno) => debug!(
                    error = errno.desc(),
                    "cannot hand the terminal to the command"
                ),
            }
        }
    }
}

/// `group:7` or `pid:7` in log lines, formatted only when the line is written.
struct Target(&'static str, Pid);

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// `SIGTERM`, or `SIGTERM->SIGQUIT` when `--rewrite` changed it, formatted only when written.
struct Rewritten(Signal, Signal);

impl fmt::Display for Rewritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rewritten(from, to) if from == to => write!(f, "{from}"),
            Rewritten(from, to) => write!(f, "{from}->{to}"),
        }
    }
}

/// Logged when the command's leftovers must be signalled but cannot be found.
const LEFTOVERS_UNREACHABLE: &str = "the command has exited and this PID namespace has no /proc of its own: its leftovers cannot be found, so nothing is signalled";

fn process_count(reached: Reached) -> String {
    match reached {
        Reached::Counted(1) => "1 process".to_string(),
        Reached::Counted(n) => format!("{n} processes"),
        Reached::Everyone => "every process".to_string(),
        Reached::CommandGroupOnly => {
            "its process group (no /proc of this PID namespace, so processes that left the group cannot be found)".to_string()
        }
        Reached::Nobody => "nobody (no /proc of this PID namespace)".to_string(),
    }
}
