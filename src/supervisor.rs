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
use crate::rewrite::rewrite_signal;
use crate::signal::Signal;
use crate::spawn;
use crate::sys::{self, Pid, Reaped, SignalSet, Wake};
use crate::timeline::{Action, Event, ForwardReason, KillReason, Timeline};

/// Starts the command and supervises it until grace-init must exit; returns the exit code.
/// `log_fd` is grace-init's own log descriptor, kept open when inherited ones are closed.
pub fn run(config: Config, original_mask: SignalSet, start: Instant, log_fd: Option<i32>) -> u8 {
    let me = sys::own_pid();
    let scope = if me.raw() == 1 {
        Scope::Namespace
    } else {
        match sys::become_child_subreaper() {
            Ok(()) => debug!(pid = %me, "not PID 1: registered as child subreaper"),
            Err(errno) => warn!(
                pid = %me,
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
    let take_terminal = sys::holds_terminal_foreground();
    let command = match spawn::spawn_command(&config.command, original_mask, take_terminal) {
        Ok(pid) => pid,
        Err(error) => {
            log::print_fatal(format_args!("{error}"));
            return error.exit_code();
        }
    };
    info!(
        command = ?config.command[0],
        pid = %command,
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
        original_mask,
        me,
        scope,
        directory,
        command,
        command_reaped: false,
        hook: None,
        timeline,
    }
    .event_loop()
}

struct Supervisor {
    config: Config,
    start: Instant,
    original_mask: SignalSet,
    me: Pid,
    scope: Scope,
    /// Where grace-init was started, for the pre-stop hook (grace-init itself moved to `/`).
    directory: Option<PathBuf>,
    command: Pid,
    command_reaped: bool,
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
            let timeout = self
                .timeline
                .next_deadline()
                .map(|deadline| deadline.saturating_sub(self.now()));
            match sys::wait_for_signal(SignalSet::ALL, timeout) {
                Wake::Signal(received) if received.signal == Signal::CHLD => {
                    self.reap_children(&mut events)
                }
                Wake::Signal(received) if received.raised_by(self.me) => {
                    debug!(signal = %received.signal, "ignored: raised by grace-init's own actions")
                }
                Wake::Signal(received) => {
                    debug!(signal = %received.signal, from_pid = received.sender(), "received");
                    events.push_back(Event::Signal(received.signal));
                }
                Wake::Timeout => {}
            }
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
                Ok(Reaped::Child { pid, status }) if pid == self.command => {
                    self.command_reaped = true;
                    info!(pid = %pid, since_stop = self.since_stop(), "command {status}");
                    command_status = Some(status);
                }
                Ok(Reaped::Child { pid, status })
                    if self.hook.is_some_and(|(hook, _)| hook == pid) =>
                {
                    let started = self.hook.take().map_or(Duration::ZERO, |(_, at)| at);
                    info!(
                        pid = %pid,
                        took = %Human(self.now().saturating_sub(started)),
                        since_stop = self.since_stop(),
                        "pre-stop hook {status}"
                    );
                    events.push_back(Event::HookExited);
                }
                Ok(Reaped::Child { pid, status }) => {
                    debug!(pid = %pid, "reaped: {status}")
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
    fn since_stop(&self) -> Option<DisplayValue<Human>> {
        self.timeline
            .stopped_at()
            .map(|at| display(Human(self.now().saturating_sub(at))))
    }

    /// Does what the timeline asked; returns the exit code when grace-init must exit.
    fn carry_out(&mut self, action: Action, events: &mut VecDeque<Event>) -> Option<u8> {
        match action {
            Action::Forward(signal, reason) => self.forward(signal, reason),
            Action::HoldStop { .. } => info!(
                signal = %self.config.timeline.stop_signal,
                delay = %Human(self.config.timeline.stop_delay),
                pre_stop_hook = self.config.pre_stop_hook.is_some(),
                "stop signal received: holding it back for the stop delay"
            ),
            Action::StartPreStopHook => self.start_pre_stop_hook(events),
            Action::TerminateLeftovers { during_stop } => {
                let signal =
                    match rewrite_signal(self.config.timeline.stop_signal, &self.config.rewrites) {
                        Some(forwarded) if during_stop => forwarded,
                        _ => Signal::TERM,
                    };
                let count = processes::signal_everything(self.scope, signal, self.command);
                if count != Reached::Counted(0) {
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
                let code = remap_exit_code(status.code(), &self.config.exit_remaps);
                info!(code, command = %status, since_stop = self.since_stop(), "exiting");
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

    fn forward(&self, signal: Signal, reason: ForwardReason) {
        let Some(target_signal) = rewrite_signal(signal, &self.config.rewrites) else {
            debug!(%signal, "dropped (--rewrite)");
            return;
        };
        let (result, target) = if self.config.single_child {
            if self.command_reaped {
                // Its pid may belong to somebody else by now.
                debug!(%signal, "not forwarded: the command has exited");
                return;
            }
            (sys::kill_process(self.command, target_signal), "pid")
        } else {
            (
                sys::kill_process_group(self.command, target_signal),
                "group",
            )
        };
        let to = Target(target, self.command);
        let shown = Rewritten(signal, target_signal);
        let since_stop = self.since_stop();
        match (result, reason) {
            (Ok(()), ForwardReason::Passthrough) => debug!(signal = %shown, %to, "forwarded"),
            (Ok(()), ForwardReason::StopSignal) => {
                info!(signal = %shown, %to, since_stop, "forwarded the stop signal")
            }
            (Ok(()), ForwardReason::StopDelayOver) => {
                info!(signal = %shown, %to, since_stop, "stop delay over: forwarded")
            }
            (Ok(()), ForwardReason::StopDelayCut) => info!(
                signal = %shown,
                %to,
                since_stop,
                "stop delay cut short by a second signal: forwarded"
            ),
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
        match spawn::spawn_pre_stop_hook(&hook.0, self.original_mask, self.directory.as_deref()) {
            Ok(pid) => {
                info!(pid = %pid, "pre-stop hook started");
                self.hook = Some((pid, self.now()));
            }
            Err(error) => {
                error!("pre-stop hook failed: {error}");
                events.push_back(Event::HookExited);
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

fn process_count(reached: Reached) -> String {
    match reached {
        Reached::Counted(1) => "1 process".to_string(),
        Reached::Counted(n) => format!("{n} processes"),
        Reached::Everyone => "every process".to_string(),
        Reached::CommandGroupOnly => {
            "its process group (no /proc of this PID namespace, so processes that left the group cannot be found)".to_string()
        }
    }
}
