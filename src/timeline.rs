//! The shutdown timeline as a pure state machine: (state, event, now) → (state, actions).
//!
//! It never touches a process or a clock. The supervisor feeds it what happened and the time on
//! a monotonic clock (as a [`Duration`] since grace-init started), carries out the actions it
//! returns, and sleeps until [`Timeline::next_deadline`]. Its arithmetic saturates: a duration
//! of `u64::MAX` seconds means "never", not an overflow.
//!
//! ```text
//!  Running ──stop signal──▶ Holding ──delay over and hook done (or timed out)──▶ Stopping
//!     │        (delay 0, no hook: straight to Stopping)              │
//!     │                        │ second stop signal / SIGINT ───────▶│
//!     │                        │                                     │
//!     └──command exits─────────┴──command exits──▶ CleaningUp ◀──────┘ command exits
//!                                                     │
//!  deadline (Holding, Stopping, CleaningUp) ──▶ Killed│ cleanup timeout
//!                                                     ▼
//!                              nothing left ──▶ Finished (exit with the command's status)
//! ```

use std::time::Duration;

use crate::exit_status::ChildStatus;
use crate::signal::Signal;

/// How long to wait for SIGKILLed processes to be reaped before exiting anyway (a process in
/// uninterruptible sleep can take a while to die; it has been killed all the same).
pub const REAP_WAIT_AFTER_KILL: Duration = Duration::from_millis(500);

/// The user's shutdown settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineConfig {
    /// The incoming signal that starts the stop.
    pub stop_signal: Signal,
    /// How long the command keeps running undisturbed after the stop signal.
    pub stop_delay: Duration,
    /// When a pre-stop hook runs on the stop signal: how long it may hold the stop signal,
    /// counted from the stop signal. Past that it is killed and the signal goes on.
    pub pre_stop_hook_timeout: Option<Duration>,
    /// The runtime's deadline, counted from the stop signal.
    pub grace_period: Option<Duration>,
    /// How long before the runtime's deadline grace-init kills.
    pub kill_margin: Duration,
    /// How long leftovers get between SIGTERM and SIGKILL once the command has exited.
    pub cleanup_timeout: Duration,
    /// The adaptive hold (`--drain-quiet`): after the stop delay, keep holding until the
    /// command's ports were quiet this long, but no longer than the cap after the stop signal.
    pub drain: Option<Drain>,
}

/// `--drain-quiet` and `--drain-max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    pub quiet: Duration,
    pub max: Duration,
}

impl TimelineConfig {
    /// When, after the stop signal, grace-init kills everything.
    pub fn kill_after(&self) -> Option<Duration> {
        self.grace_period
            .map(|grace| grace.saturating_sub(self.kill_margin))
    }
}

/// Something that happened, as the supervisor saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A signal to grace-init (never SIGCHLD, never one it raised itself).
    Signal(Signal),
    /// The command grace-init started has been reaped; `others_left`: whether any other child
    /// remained after that reaping pass.
    CommandExited {
        status: ChildStatus,
        others_left: bool,
    },
    /// The pre-stop hook has been reaped, or could not be started.
    HookExited,
    /// Traffic reached the command's ports at this moment (during an adaptive hold).
    TrafficSeen(Duration),
    /// Every child has been reaped and none is left.
    NothingLeft,
    /// Time passed: the supervisor woke up at or after [`Timeline::next_deadline`].
    Tick,
}

/// Why grace-init passes a signal on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardReason {
    /// An ordinary signal, passed straight through.
    Passthrough,
    /// The stop signal, passed on at once (no delay, no hook).
    StopSignal,
    /// The stop signal, after the stop delay and the pre-stop hook.
    StopDelayOver,
    /// The stop signal, early: a second stop signal or SIGINT arrived during the delay.
    StopDelayCut,
    /// The stop signal, after the adaptive hold: no traffic since `last_traffic` (time since
    /// the stop signal) for the quiet period.
    DrainQuiet { last_traffic: Duration },
    /// The stop signal, after the adaptive hold: its cap was reached while traffic went on.
    DrainCapReached { last_traffic: Duration },
}

/// Why grace-init kills everything it is responsible for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillReason {
    /// `grace-period − kill-margin` has passed since the stop signal.
    Deadline {
        /// Since the stop signal arrived.
        since_stop: Duration,
        /// Since the stop signal was passed on to the command; `None` while the delay or the
        /// hook still held it back.
        since_forward: Option<Duration>,
    },
    /// The command exited and its leftovers outlived the cleanup timeout.
    CleanupTimeout,
}

/// What the supervisor must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Pass this incoming signal on to the command (the supervisor applies `--rewrite` and
    /// chooses the process group or the child).
    Forward(Signal, ForwardReason),
    /// The stop signal is held back until `until` (time since start) and the hook.
    HoldStop {
        until: Duration,
    },
    StartPreStopHook,
    /// The pre-stop hook outlived its timeout: kill it (the stop goes on without it).
    KillPreStopHook,
    /// The command exited: ask every other process grace-init is responsible for to stop, with
    /// SIGTERM, or during a stop with the stop signal as forwarded (they may be the app behind a
    /// wrapper shell, already draining on it).
    TerminateLeftovers {
        during_stop: bool,
    },
    /// SIGKILL every process grace-init is responsible for.
    KillEverything(KillReason),
    /// Exit with the command's status (the supervisor applies `--remap-exit`).
    Exit(ChildStatus),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    /// The stop signal arrived at `stopped_at`; it is held until `until` and the hook.
    Holding {
        stopped_at: Duration,
        until: Duration,
        hook_running: bool,
        /// When traffic was last seen (the stop signal, until some is).
        last_traffic: Duration,
    },
    /// The stop signal was passed on at `forwarded_at`; waiting for the command to exit.
    Stopping {
        stopped_at: Duration,
        forwarded_at: Duration,
    },
    /// The command exited; leftovers got SIGTERM and have until `until` to go.
    CleaningUp {
        status: ChildStatus,
        stopped_at: Option<Duration>,
        until: Duration,
    },
    /// Everything got SIGKILL; waiting (until `until` at most) for it to be reaped.
    Killed {
        status: Option<ChildStatus>,
        stopped_at: Option<Duration>,
        until: Duration,
    },
    /// Exit was asked for; the stop time is kept for the last log lines.
    Finished {
        stopped_at: Option<Duration>,
    },
}

/// The shutdown timeline of one grace-init run.
#[derive(Debug)]
pub struct Timeline {
    config: TimelineConfig,
    state: State,
}

impl Timeline {
    pub fn new(config: TimelineConfig) -> Timeline {
        Timeline {
            config,
            state: State::Running,
        }
    }

    /// When the stop signal arrived, if it has.
    pub fn stopped_at(&self) -> Option<Duration> {
        match self.state {
            State::Holding { stopped_at, .. } | State::Stopping { stopped_at, .. } => {
                Some(stopped_at)
            }
            State::CleaningUp { stopped_at, .. }
            | State::Killed { stopped_at, .. }
            | State::Finished { stopped_at } => stopped_at,
            State::Running => None,
        }
    }

    /// The next moment at which [`Event::Tick`] will change something, if any. Never a moment
    /// that has passed without effect, so the supervisor cannot spin.
    pub fn next_deadline(&self) -> Option<Duration> {
        match self.state {
            State::Running | State::Finished { .. } => None,
            State::Holding {
                stopped_at,
                until,
                hook_running,
                last_traffic,
            } => {
                // While the hook runs, the delay ending changes nothing; its timeout does.
                let hold_end = match self.hook_deadline(stopped_at) {
                    Some(hook_deadline) if hook_running => hook_deadline,
                    _ => until.max(self.drain_end(stopped_at, last_traffic).unwrap_or(until)),
                };
                let kill = self.kill_deadline(stopped_at);
                Some(kill.map_or(hold_end, |kill| kill.min(hold_end)))
            }
            State::Stopping { stopped_at, .. } => self.kill_deadline(stopped_at),
            State::CleaningUp { until, .. } | State::Killed { until, .. } => Some(until),
        }
    }

    /// Handles one event at time `now` and appends what to do, in order, to `actions` (a buffer
    /// the caller reuses, so that forwarding a signal allocates nothing).
    pub fn handle_into(&mut self, event: Event, now: Duration, actions: &mut Vec<Action>) {
        self.state = self.transition(event, now, actions);
    }

    /// [`Timeline::handle_into`] returning a fresh list, for tests.
    #[cfg(test)]
    pub fn handle(&mut self, event: Event, now: Duration) -> Vec<Action> {
        let mut actions = Vec::new();
        self.handle_into(event, now, &mut actions);
        actions
    }

    fn kill_deadline(&self, stopped_at: Duration) -> Option<Duration> {
        self.config
            .kill_after()
            .map(|after| stopped_at.saturating_add(after))
    }

    /// Whether the supervisor should sample traffic: an adaptive hold is under way.
    pub fn watching_traffic(&self) -> bool {
        matches!(self.state, State::Holding { .. }) && self.config.drain.is_some()
    }

    /// When the adaptive hold ends if no more traffic comes: quiet reached, or the cap.
    fn drain_end(&self, stopped_at: Duration, last_traffic: Duration) -> Option<Duration> {
        self.config.drain.map(|drain| {
            last_traffic
                .saturating_add(drain.quiet)
                .min(stopped_at.saturating_add(drain.max))
        })
    }

    fn hook_deadline(&self, stopped_at: Duration) -> Option<Duration> {
        self.config
            .pre_stop_hook_timeout
            .map(|timeout| stopped_at.saturating_add(timeout))
    }

    fn deadline_passed(&self, stopped_at: Duration, now: Duration) -> bool {
        self.kill_deadline(stopped_at)
            .is_some_and(|deadline| now >= deadline)
    }

    fn transition(&self, event: Event, now: Duration, actions: &mut Vec<Action>) -> State {
        let stop = self.config.stop_signal;
        match (self.state, event) {
            (State::Finished { .. }, _) => self.state,

            (State::Running, Event::Signal(signal)) if signal == stop => {
                let has_hook = self.config.pre_stop_hook_timeout.is_some();
                let holds = !self.config.stop_delay.is_zero() || self.config.drain.is_some();
                if !holds && !has_hook {
                    actions.push(Action::Forward(stop, ForwardReason::StopSignal));
                    return State::Stopping {
                        stopped_at: now,
                        forwarded_at: now,
                    };
                }
                let until = now.saturating_add(self.config.stop_delay);
                actions.push(Action::HoldStop { until });
                if has_hook {
                    actions.push(Action::StartPreStopHook);
                }
                State::Holding {
                    stopped_at: now,
                    until,
                    hook_running: has_hook,
                    last_traffic: now,
                }
            }
            (
                State::Running,
                Event::CommandExited {
                    status,
                    others_left,
                },
            ) => self.clean_up(status, others_left, None, now, actions),
            (State::Running, Event::Signal(signal)) => {
                actions.push(Action::Forward(signal, ForwardReason::Passthrough));
                State::Running
            }
            (State::Running, _) => State::Running,

            (
                State::Holding {
                    stopped_at,
                    until,
                    hook_running,
                    last_traffic,
                },
                event,
            ) => {
                // A command that exits is cleaned up even at the deadline: its status is kept.
                if let Event::CommandExited {
                    status,
                    others_left,
                } = event
                {
                    return self.clean_up(status, others_left, Some(stopped_at), now, actions);
                }
                if self.deadline_passed(stopped_at, now) {
                    return self.kill(stopped_at, None, now, actions);
                }
                let last_traffic = match event {
                    Event::TrafficSeen(at) => last_traffic.max(at.min(now)),
                    _ => last_traffic,
                };
                let mut hook_running = hook_running && event != Event::HookExited;
                if hook_running && self.hook_deadline(stopped_at).is_some_and(|at| now >= at) {
                    actions.push(Action::KillPreStopHook);
                    hook_running = false;
                }
                match event {
                    Event::Signal(signal) if signal == stop || signal == Signal::INT => {
                        actions.push(Action::Forward(stop, ForwardReason::StopDelayCut));
                        State::Stopping {
                            stopped_at,
                            forwarded_at: now,
                        }
                    }
                    Event::Signal(signal) => {
                        actions.push(Action::Forward(signal, ForwardReason::Passthrough));
                        State::Holding {
                            stopped_at,
                            until,
                            hook_running,
                            last_traffic,
                        }
                    }
                    _ if !hook_running
                        && now >= until
                        && self
                            .drain_end(stopped_at, last_traffic)
                            .map_or(true, |end| now >= end) =>
                    {
                        let since_stop = last_traffic.saturating_sub(stopped_at);
                        let reason = match self.config.drain {
                            None => ForwardReason::StopDelayOver,
                            Some(drain) if now >= stopped_at.saturating_add(drain.max) => {
                                ForwardReason::DrainCapReached {
                                    last_traffic: since_stop,
                                }
                            }
                            Some(_) => ForwardReason::DrainQuiet {
                                last_traffic: since_stop,
                            },
                        };
                        actions.push(Action::Forward(stop, reason));
                        State::Stopping {
                            stopped_at,
                            forwarded_at: now,
                        }
                    }
                    _ => State::Holding {
                        stopped_at,
                        until,
                        hook_running,
                        last_traffic,
                    },
                }
            }

            (
                State::Stopping {
                    stopped_at,
                    forwarded_at,
                },
                event,
            ) => {
                if let Event::CommandExited {
                    status,
                    others_left,
                } = event
                {
                    return self.clean_up(status, others_left, Some(stopped_at), now, actions);
                }
                if self.deadline_passed(stopped_at, now) {
                    return self.kill(stopped_at, Some(forwarded_at), now, actions);
                }
                if let Event::Signal(signal) = event {
                    actions.push(Action::Forward(signal, ForwardReason::Passthrough));
                }
                self.state
            }

            (
                State::CleaningUp {
                    status,
                    stopped_at,
                    until,
                },
                event,
            ) => match event {
                Event::NothingLeft => {
                    actions.push(Action::Exit(status));
                    State::Finished { stopped_at }
                }
                _ if now >= until => {
                    let reason = match stopped_at {
                        Some(stopped_at) if self.deadline_passed(stopped_at, now) => {
                            KillReason::Deadline {
                                since_stop: now - stopped_at,
                                since_forward: None,
                            }
                        }
                        _ => KillReason::CleanupTimeout,
                    };
                    actions.push(Action::KillEverything(reason));
                    State::Killed {
                        status: Some(status),
                        stopped_at,
                        until: now.saturating_add(REAP_WAIT_AFTER_KILL),
                    }
                }
                Event::Signal(signal) if signal == stop && stopped_at.is_none() => {
                    // A stop while leftovers are being cleaned up: they are already on their way
                    // out; the deadline now bounds the wait as well.
                    let until = self
                        .kill_deadline(now)
                        .map_or(until, |deadline| deadline.min(until));
                    State::CleaningUp {
                        status,
                        stopped_at: Some(now),
                        until,
                    }
                }
                Event::Signal(signal) => {
                    actions.push(Action::Forward(signal, ForwardReason::Passthrough));
                    self.state
                }
                _ => self.state,
            },

            (
                State::Killed {
                    status,
                    stopped_at,
                    until,
                },
                event,
            ) => match event {
                Event::CommandExited { status, .. } => State::Killed {
                    status: Some(status),
                    stopped_at,
                    until,
                },
                _ if event == Event::NothingLeft || now >= until => {
                    actions.push(Action::Exit(
                        status.unwrap_or(ChildStatus::Killed(Signal::KILL)),
                    ));
                    State::Finished { stopped_at }
                }
                _ => self.state,
            },
        }
    }

    /// The command exited with `status`: exit at once if it left nothing behind, else ask what it
    /// left to stop and give that until the cleanup timeout. During a stop with a grace period,
    /// leftovers get until the deadline instead: a wrapper shell that died of the stop signal must
    /// not cut short the drain of the app behind it.
    fn clean_up(
        &self,
        status: ChildStatus,
        others_left: bool,
        stopped_at: Option<Duration>,
        now: Duration,
        actions: &mut Vec<Action>,
    ) -> State {
        if !others_left {
            actions.push(Action::Exit(status));
            return State::Finished { stopped_at };
        }
        actions.push(Action::TerminateLeftovers {
            during_stop: stopped_at.is_some(),
        });
        let until = stopped_at
            .and_then(|stopped_at| self.kill_deadline(stopped_at))
            .unwrap_or_else(|| now.saturating_add(self.config.cleanup_timeout));
        State::CleaningUp {
            status,
            stopped_at,
            until,
        }
    }

    fn kill(
        &self,
        stopped_at: Duration,
        forwarded_at: Option<Duration>,
        now: Duration,
        actions: &mut Vec<Action>,
    ) -> State {
        actions.push(Action::KillEverything(KillReason::Deadline {
            since_stop: now - stopped_at,
            since_forward: forwarded_at.map(|at| now - at),
        }));
        State::Killed {
            status: None,
            stopped_at: Some(stopped_at),
            until: now.saturating_add(REAP_WAIT_AFTER_KILL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGUSR1: Signal = Signal::USR1;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn config() -> TimelineConfig {
        TimelineConfig {
            stop_signal: Signal::TERM,
            stop_delay: Duration::ZERO,
            pre_stop_hook_timeout: None,
            grace_period: None,
            kill_margin: secs(2),
            cleanup_timeout: secs(2),
            drain: None,
        }
    }

    fn with_delay(delay: Duration) -> TimelineConfig {
        TimelineConfig {
            stop_delay: delay,
            grace_period: Some(secs(30)),
            ..config()
        }
    }

    /// The command exited while other processes it started were still running.
    fn exited(status: ChildStatus) -> Event {
        Event::CommandExited {
            status,
            others_left: true,
        }
    }

    const EXIT_0: ChildStatus = ChildStatus::Exited(0);
    const KILLED: ChildStatus = ChildStatus::Killed(Signal::KILL);

    fn forward(signal: Signal, why: ForwardReason) -> Vec<Action> {
        vec![Action::Forward(signal, why)]
    }

    #[test]
    fn ordinary_signals_pass_straight_through_while_running() {
        let mut t = Timeline::new(config());
        assert_eq!(
            t.handle(Event::Signal(SIGUSR1), ms(5)),
            forward(SIGUSR1, ForwardReason::Passthrough)
        );
        assert_eq!(t.handle(Event::Tick, ms(6)), vec![]);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn stop_signal_without_delay_or_hook_is_forwarded_at_once() {
        let mut t = Timeline::new(config());
        assert_eq!(
            t.handle(Event::Signal(Signal::TERM), ms(100)),
            forward(Signal::TERM, ForwardReason::StopSignal)
        );
        assert_eq!(t.stopped_at(), Some(ms(100)));
    }

    #[test]
    fn without_grace_period_there_is_no_deadline_kill() {
        let mut t = Timeline::new(config());
        t.handle(Event::Signal(Signal::TERM), ms(0));
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.handle(Event::Tick, secs(3600)), vec![]);
    }

    #[test]
    fn stop_signal_is_held_for_the_delay_then_forwarded() {
        let mut t = Timeline::new(with_delay(secs(5)));
        assert_eq!(
            t.handle(Event::Signal(Signal::TERM), secs(10)),
            vec![Action::HoldStop { until: secs(15) }]
        );
        assert_eq!(t.next_deadline(), Some(secs(15)));
        assert_eq!(t.handle(Event::Tick, secs(14)), vec![]);
        assert_eq!(
            t.handle(Event::Tick, secs(15)),
            forward(Signal::TERM, ForwardReason::StopDelayOver)
        );
        assert_eq!(
            t.next_deadline(),
            Some(secs(38)),
            "deadline 30s - 2s after the stop"
        );
    }

    #[test]
    fn other_signals_keep_flowing_during_the_delay() {
        let mut t = Timeline::new(with_delay(secs(5)));
        t.handle(Event::Signal(Signal::TERM), secs(0));
        assert_eq!(
            t.handle(Event::Signal(Signal::HUP), secs(1)),
            forward(Signal::HUP, ForwardReason::Passthrough)
        );
        assert_eq!(t.next_deadline(), Some(secs(5)));
    }

    #[test]
    fn second_stop_signal_during_the_delay_forwards_at_once() {
        let mut t = Timeline::new(with_delay(secs(5)));
        t.handle(Event::Signal(Signal::TERM), secs(0));
        assert_eq!(
            t.handle(Event::Signal(Signal::TERM), secs(1)),
            forward(Signal::TERM, ForwardReason::StopDelayCut)
        );
        assert_eq!(
            t.handle(Event::Tick, secs(5)),
            vec![],
            "the delay is over already"
        );
    }

    #[test]
    fn sigint_during_the_delay_forwards_the_stop_signal_at_once() {
        let mut t = Timeline::new(TimelineConfig {
            stop_signal: SIGUSR1,
            ..with_delay(secs(5))
        });
        t.handle(Event::Signal(SIGUSR1), secs(0));
        assert_eq!(
            t.handle(Event::Signal(Signal::INT), secs(1)),
            forward(SIGUSR1, ForwardReason::StopDelayCut)
        );
    }

    #[test]
    fn command_exiting_during_the_delay_skips_the_rest_of_it() {
        let mut t = Timeline::new(with_delay(secs(20)));
        t.handle(Event::Signal(Signal::TERM), secs(0));
        assert_eq!(
            t.handle(exited(EXIT_0), secs(1)),
            vec![Action::TerminateLeftovers { during_stop: true }]
        );
        assert_eq!(
            t.handle(Event::NothingLeft, secs(1)),
            vec![Action::Exit(EXIT_0)]
        );
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn hook_starts_with_the_stop_and_forwarding_waits_for_delay_and_hook() {
        // The hook finishes first: forward when the delay is over.
        let mut t = Timeline::new(TimelineConfig {
            pre_stop_hook_timeout: Some(secs(600)),
            ..with_delay(secs(5))
        });
        assert_eq!(
            t.handle(Event::Signal(Signal::TERM), secs(0)),
            vec![
                Action::HoldStop { until: secs(5) },
                Action::StartPreStopHook
            ]
        );
        assert_eq!(
            t.next_deadline(),
            Some(secs(28)),
            "only the deadline while the hook runs"
        );
        assert_eq!(t.handle(Event::HookExited, secs(2)), vec![]);
        assert_eq!(t.next_deadline(), Some(secs(5)));
        assert_eq!(
            t.handle(Event::Tick, secs(5)),
            forward(Signal::TERM, ForwardReason::StopDelayOver)
        );
    }

    #[test]
    fn hook_outlasting_the_delay_holds_the_stop_until_it_ends() {
        let mut t = Timeline::new(TimelineConfig {
            pre_stop_hook_timeout: Some(secs(600)),
            ..with_delay(secs(5))
        });
        t.handle(Event::Signal(Signal::TERM), secs(0));
        assert_eq!(t.handle(Event::Tick, secs(6)), vec![]);
        assert_eq!(
            t.handle(Event::HookExited, secs(9)),
            forward(Signal::TERM, ForwardReason::StopDelayOver)
        );
    }

    #[test]
    fn hook_without_delay_holds_the_stop_for_the_hook_alone() {
        let mut t = Timeline::new(TimelineConfig {
            pre_stop_hook_timeout: Some(secs(600)),
            ..config()
        });
        t.handle(Event::Signal(Signal::TERM), secs(1));
        assert_eq!(
            t.next_deadline(),
            Some(secs(601)),
            "the hook's timeout only"
        );
        assert_eq!(
            t.handle(Event::HookExited, secs(2)),
            forward(Signal::TERM, ForwardReason::StopDelayOver)
        );
    }

    fn adaptive(delay: u64, quiet: u64, max: u64) -> TimelineConfig {
        TimelineConfig {
            drain: Some(Drain {
                quiet: secs(quiet),
                max: secs(max),
            }),
            ..with_delay(secs(delay))
        }
    }

    #[test]
    fn adaptive_hold_ends_once_traffic_was_quiet_for_the_quiet_period() {
        let mut t = Timeline::new(adaptive(1, 2, 20));
        assert_eq!(
            t.handle(Event::Signal(Signal::TERM), secs(10)),
            vec![Action::HoldStop { until: secs(11) }]
        );
        assert!(t.watching_traffic());
        assert_eq!(
            t.next_deadline(),
            Some(secs(12)),
            "delay, then 2s of quiet from the stop"
        );
        assert_eq!(t.handle(Event::TrafficSeen(secs(11)), ms(11_100)), vec![]);
        assert_eq!(t.next_deadline(), Some(secs(13)));
        assert_eq!(t.handle(Event::TrafficSeen(ms(12_500)), ms(12_600)), vec![]);
        assert_eq!(
            t.handle(Event::Tick, secs(13)),
            vec![],
            "traffic resumed: not yet"
        );
        assert_eq!(t.next_deadline(), Some(ms(14_500)));
        assert_eq!(
            t.handle(Event::Tick, ms(14_500)),
            forward(
                Signal::TERM,
                ForwardReason::DrainQuiet {
                    last_traffic: ms(2_500)
                }
            )
        );
        assert!(!t.watching_traffic());
    }

    #[test]
    fn adaptive_hold_never_ends_before_the_stop_delay() {
        let mut t = Timeline::new(adaptive(5, 1, 20));
        t.handle(Event::Signal(Signal::TERM), secs(0));
        assert_eq!(t.next_deadline(), Some(secs(5)));
        assert_eq!(t.handle(Event::Tick, secs(1)), vec![]);
        assert_eq!(
            t.handle(Event::Tick, secs(5)),
            forward(
                Signal::TERM,
                ForwardReason::DrainQuiet {
                    last_traffic: secs(0)
                }
            )
        );
    }

    #[test]
    fn adaptive_hold_is_cut_at_its_cap_while_traffic_goes_on() {
        let mut t = Timeline::new(adaptive(0, 2, 6));
        t.handle(Event::Signal(Signal::TERM), secs(0));
        for at in 1..6 {
            assert_eq!(t.handle(Event::TrafficSeen(secs(at)), secs(at)), vec![]);
        }
        assert_eq!(t.next_deadline(), Some(secs(6)), "the cap, not 5s + 2s");
        assert_eq!(
            t.handle(Event::Tick, secs(6)),
            forward(
                Signal::TERM,
                ForwardReason::DrainCapReached {
                    last_traffic: secs(5)
                }
            )
        );
    }

    #[test]
    fn a_second_stop_signal_ends_the_adaptive_hold_at_once() {
        let mut t = Timeline::new(adaptive(1, 2, 20));
        t.handle(Event::Signal(Signal::TERM), secs(0));
        t.handle(Event::TrafficSeen(secs(3)), secs(3));
        assert_eq!(
            t.handle(Event::Signal(Signal::INT), ms(3_100)),
            forward(Signal::TERM, ForwardReason::StopDelayCut)
        );
    }

    #[test]
    fn the_adaptive_hold_waits_for_the_hook_too() {
        let mut t = Timeline::new(TimelineConfig {
            pre_stop_hook_timeout: Some(secs(10)),
            ..adaptive(0, 1, 20)
        });
        t.handle(Event::Signal(Signal::TERM), secs(0));
        assert_eq!(
            t.handle(Event::Tick, secs(2)),
            vec![],
            "the hook still runs"
        );
        assert_eq!(
            t.handle(Event::HookExited, secs(3)),
            forward(
                Signal::TERM,
                ForwardReason::DrainQuiet {
                    last_traffic: secs(0)
                }
            )
        );
    }

    #[test]
    fn a_command_exiting_during_the_adaptive_hold_is_cleaned_up_and_nothing_is_forwarded() {
        let mut t = Timeline::new(adaptive(1, 2, 20));
        t.handle(Event::Signal(Signal::TERM), secs(0));
        t.handle(Event::TrafficSeen(secs(2)), secs(2));
        assert_eq!(
            t.handle(exited(EXIT_0), secs(3)),
            vec![Action::TerminateLeftovers { during_stop: true }]
        );
        assert!(!t.watching_traffic());
        assert_eq!(
            t.handle(Event::NothingLeft, secs(3)),
            vec![Action::Exit(EXIT_0)]
        );
    }

    #[test]
    fn after_an_adaptive_hold_the_deadline_still_kills_a_command_that_does_not_stop() {
        // grace period 30 s, margin 2 s: the kill comes at 28 s after the stop, past the 20 s cap.
        let mut t = Timeline::new(adaptive(0, 1, 20));
        t.handle(Event::Signal(Signal::TERM), secs(0));
        for at in 1..20 {
            t.handle(Event::TrafficSeen(secs(at)), secs(at));
        }
        assert_eq!(
            t.handle(Event::Tick, secs(20)),
            forward(
                Signal::TERM,
                ForwardReason::DrainCapReached {
                    last_traffic: secs(19)
                }
            )
        );
        assert_eq!(t.next_deadline(), Some(secs(28)));
        assert_eq!(
            t.handle(Event::Tick, secs(28)),
            vec![Action::KillEverything(KillReason::Deadline {
                since_stop: secs(28),
                since_forward: Some(secs(8)),
            })]
        );
    }

    #[test]
    fn traffic_reported_for_the_future_or_before_the_stop_changes_nothing_wrong() {
        let mut t = Timeline::new(adaptive(0, 2, 20));
        t.handle(Event::Signal(Signal::TERM), secs(10));
        t.handle(Event::TrafficSeen(secs(5)), secs(10));
        assert_eq!(
            t.next_deadline(),
            Some(secs(12)),
            "traffic before the stop is old news"
        );
        t.handle(Event::TrafficSeen(secs(99)), secs(11));
        assert_eq!(t.next_deadline(), Some(secs(13)), "never later than now");
    }

    #[test]
    fn hook_outliving_its_timeout_is_killed_and_the_stop_signal_goes_on() {
        let mut t = Timeline::new(TimelineConfig {
            pre_stop_hook_timeout: Some(secs(1)),
            grace_period: Some(secs(3)),
            kill_margin: secs(1),
            ..config()
        });
        t.handle(Event::Signal(Signal::TERM), secs(10));
        assert_eq!(t.next_deadline(), Some(secs(11)));
        assert_eq!(
            t.handle(Event::Tick, secs(11)),
            vec![
                Action::KillPreStopHook,
                Action::Forward(Signal::TERM, ForwardReason::StopDelayOver)
            ]
        );
        assert_eq!(t.next_deadline(), Some(secs(12)), "the deadline kill");
        assert_eq!(t.handle(Event::HookExited, ms(11_001)), vec![]);
    }

    #[test]
    fn hook_timing_out_before_the_delay_ends_is_killed_and_the_delay_still_holds() {
        let mut t = Timeline::new(TimelineConfig {
            pre_stop_hook_timeout: Some(secs(2)),
            ..with_delay(secs(5))
        });
        t.handle(Event::Signal(Signal::TERM), secs(0));
        assert_eq!(t.next_deadline(), Some(secs(2)));
        assert_eq!(
            t.handle(Event::Tick, secs(2)),
            vec![Action::KillPreStopHook]
        );
        assert_eq!(t.next_deadline(), Some(secs(5)));
        assert_eq!(t.handle(Event::HookExited, secs(3)), vec![]);
        assert_eq!(
            t.handle(Event::Tick, secs(5)),
            forward(Signal::TERM, ForwardReason::StopDelayOver)
        );
    }

    #[test]
    fn deadline_while_the_hook_runs_kills_everything() {
        let mut t = Timeline::new(TimelineConfig {
            pre_stop_hook_timeout: Some(secs(600)),
            ..with_delay(secs(5))
        });
        t.handle(Event::Signal(Signal::TERM), secs(0));
        assert_eq!(
            t.handle(Event::Tick, secs(28)),
            vec![Action::KillEverything(KillReason::Deadline {
                since_stop: secs(28),
                since_forward: None,
            })]
        );
        assert_eq!(t.handle(exited(KILLED), ms(28_010)), vec![]);
        assert_eq!(
            t.handle(Event::NothingLeft, ms(28_010)),
            vec![Action::Exit(KILLED)]
        );
    }

    #[test]
    fn deadline_after_forwarding_kills_and_exits_137_status() {
        let mut t = Timeline::new(TimelineConfig {
            grace_period: Some(secs(30)),
            ..config()
        });
        t.handle(Event::Signal(Signal::TERM), secs(10));
        assert_eq!(t.next_deadline(), Some(secs(38)));
        assert_eq!(t.handle(Event::Tick, ms(37_999)), vec![]);
        assert_eq!(
            t.handle(Event::Tick, secs(38)),
            vec![Action::KillEverything(KillReason::Deadline {
                since_stop: secs(28),
                since_forward: Some(secs(28)),
            })]
        );
        t.handle(exited(KILLED), ms(38_001));
        assert_eq!(
            t.handle(Event::NothingLeft, ms(38_001)),
            vec![Action::Exit(KILLED)]
        );
        assert_eq!(KILLED.code(), 137);
    }

    #[test]
    fn the_stop_time_outlives_the_kill_and_the_exit_for_the_last_log_lines() {
        let mut t = Timeline::new(TimelineConfig {
            grace_period: Some(secs(3)),
            kill_margin: secs(1),
            ..config()
        });
        t.handle(Event::Signal(Signal::TERM), secs(1));
        t.handle(Event::Tick, secs(3));
        assert_eq!(t.stopped_at(), Some(secs(1)), "after the deadline kill");
        t.handle(exited(KILLED), secs(3));
        t.handle(Event::NothingLeft, secs(3));
        assert_eq!(t.stopped_at(), Some(secs(1)), "after the exit");
        let mut t = Timeline::new(config());
        t.handle(exited(EXIT_0), secs(1));
        t.handle(Event::NothingLeft, secs(1));
        assert_eq!(t.stopped_at(), None, "no stop, no stop time");
    }

    #[test]
    fn stuck_processes_after_the_kill_do_not_keep_grace_init_alive() {
        let mut t = Timeline::new(TimelineConfig {
            grace_period: Some(secs(3)),
            kill_margin: secs(1),
            ..config()
        });
        t.handle(Event::Signal(Signal::TERM), secs(0));
        t.handle(Event::Tick, secs(2));
        assert_eq!(t.next_deadline(), Some(secs(2) + REAP_WAIT_AFTER_KILL));
        assert_eq!(
            t.handle(Event::Tick, secs(2) + REAP_WAIT_AFTER_KILL),
            vec![Action::Exit(KILLED)]
        );
    }

    #[test]
    fn command_exit_at_the_deadline_keeps_its_real_status() {
        let mut t = Timeline::new(TimelineConfig {
            grace_period: Some(secs(3)),
            kill_margin: secs(1),
            ..config()
        });
        t.handle(Event::Signal(Signal::TERM), secs(0));
        let status = ChildStatus::Exited(3);
        assert_eq!(
            t.handle(exited(status), secs(5)),
            vec![Action::TerminateLeftovers { during_stop: true }]
        );
        assert_eq!(
            t.next_deadline(),
            Some(secs(2)),
            "leftovers get no time past the deadline"
        );
        assert_eq!(
            t.handle(Event::Tick, secs(5)),
            vec![Action::KillEverything(KillReason::Deadline {
                since_stop: secs(5),
                since_forward: None,
            })]
        );
        assert_eq!(
            t.handle(Event::NothingLeft, secs(5)),
            vec![Action::Exit(status)]
        );
    }

    #[test]
    fn command_exit_with_nothing_left_exits_at_once_without_terminating_anything() {
        let mut t = Timeline::new(config());
        let alone = Event::CommandExited {
            status: ChildStatus::Exited(4),
            others_left: false,
        };
        assert_eq!(
            t.handle(alone, secs(1)),
            vec![Action::Exit(ChildStatus::Exited(4))]
        );
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn command_exit_while_running_terminates_leftovers_then_exits() {
        let mut t = Timeline::new(config());
        let status = ChildStatus::Exited(5);
        assert_eq!(
            t.handle(exited(status), secs(1)),
            vec![Action::TerminateLeftovers { during_stop: false }]
        );
        assert_eq!(t.next_deadline(), Some(secs(3)));
        assert_eq!(
            t.handle(Event::NothingLeft, ms(1_200)),
            vec![Action::Exit(status)]
        );
    }

    #[test]
    fn leftovers_outliving_the_cleanup_timeout_are_killed_and_status_kept() {
        let mut t = Timeline::new(config());
        let status = ChildStatus::Exited(5);
        t.handle(exited(status), secs(1));
        assert_eq!(t.handle(Event::Tick, ms(2_999)), vec![]);
        assert_eq!(
            t.handle(Event::Tick, secs(3)),
            vec![Action::KillEverything(KillReason::CleanupTimeout)]
        );
        assert_eq!(
            t.handle(Event::NothingLeft, ms(3_001)),
            vec![Action::Exit(status)]
        );
    }

    #[test]
    fn leftovers_during_a_stop_get_until_the_deadline_not_the_cleanup_timeout() {
        // A wrapper shell dies of the forwarded SIGTERM at 1s; the app behind it drains.
        let mut t = Timeline::new(TimelineConfig {
            grace_period: Some(secs(30)),
            cleanup_timeout: secs(2),
            ..config()
        });
        t.handle(Event::Signal(Signal::TERM), secs(0));
        assert_eq!(
            t.handle(exited(ChildStatus::Killed(Signal::TERM)), secs(1)),
            vec![Action::TerminateLeftovers { during_stop: true }]
        );
        assert_eq!(t.next_deadline(), Some(secs(28)));
        assert_eq!(
            t.handle(Event::Tick, secs(3)),
            vec![],
            "no cleanup-timeout kill"
        );
        assert_eq!(
            t.handle(Event::NothingLeft, secs(6)),
            vec![Action::Exit(ChildStatus::Killed(Signal::TERM))]
        );
    }

    #[test]
    fn leftovers_during_a_stop_without_grace_period_get_the_cleanup_timeout() {
        let mut t = Timeline::new(config());
        t.handle(Event::Signal(Signal::TERM), secs(0));
        t.handle(exited(EXIT_0), secs(1));
        assert_eq!(t.next_deadline(), Some(secs(3)));
    }

    #[test]
    fn stop_signal_during_cleanup_bounds_it_by_the_deadline() {
        let mut t = Timeline::new(TimelineConfig {
            grace_period: Some(secs(4)),
            kill_margin: secs(1),
            cleanup_timeout: secs(60),
            ..config()
        });
        t.handle(exited(EXIT_0), secs(0));
        assert_eq!(t.handle(Event::Signal(Signal::TERM), secs(1)), vec![]);
        assert_eq!(t.next_deadline(), Some(secs(4)));
        assert_eq!(
            t.handle(Event::Signal(Signal::HUP), secs(2)),
            forward(Signal::HUP, ForwardReason::Passthrough)
        );
    }

    #[test]
    fn absurdly_long_durations_mean_never_instead_of_overflowing() {
        let forever = Duration::MAX;
        let mut t = Timeline::new(TimelineConfig {
            stop_delay: forever,
            grace_period: Some(forever),
            cleanup_timeout: forever,
            ..config()
        });
        t.handle(Event::Signal(Signal::TERM), secs(5));
        assert_eq!(t.next_deadline(), Some(forever));
        t.handle(exited(EXIT_0), secs(6));
        assert_eq!(t.handle(Event::Tick, secs(7)), vec![]);
        let mut t = Timeline::new(TimelineConfig {
            cleanup_timeout: forever,
            ..config()
        });
        t.handle(exited(EXIT_0), secs(6));
        assert_eq!(t.next_deadline(), Some(forever));
    }

    /// Waking at `next_deadline` must always change the state, or the supervisor would spin.
    #[test]
    fn every_deadline_changes_something_so_the_loop_never_spins() {
        let configs = [
            config(),
            with_delay(secs(5)),
            TimelineConfig {
                pre_stop_hook_timeout: Some(secs(600)),
                ..with_delay(secs(5))
            },
            TimelineConfig {
                pre_stop_hook_timeout: Some(secs(600)),
                ..config()
            },
            TimelineConfig {
                grace_period: Some(secs(3)),
                kill_margin: secs(1),
                ..config()
            },
            TimelineConfig {
                pre_stop_hook_timeout: Some(secs(1)),
                grace_period: Some(secs(3)),
                kill_margin: secs(1),
                ..with_delay(secs(2))
            },
        ];
        let scripts: [&[Event]; 5] = [
            &[Event::Signal(Signal::TERM)],
            &[Event::Signal(Signal::TERM), Event::HookExited],
            &[exited(EXIT_0)],
            &[Event::Signal(Signal::TERM), exited(EXIT_0)],
            &[Event::Signal(Signal::TERM), Event::Signal(Signal::INT)],
        ];
        for config in &configs {
            for script in scripts {
                let mut t = Timeline::new(config.clone());
                let mut now = Duration::ZERO;
                for &event in script {
                    now += ms(100);
                    t.handle(event, now);
                }
                for _ in 0..10 {
                    let Some(deadline) = t.next_deadline() else {
                        break;
                    };
                    now = now.max(deadline);
                    let before = t.state;
                    t.handle(Event::Tick, now);
                    assert_ne!(t.state, before, "{config:?} {script:?} spun at {now:?}");
                }
                assert_eq!(t.next_deadline().filter(|d| *d <= now), None);
            }
        }
    }

    #[test]
    fn finished_timeline_ignores_everything() {
        let mut t = Timeline::new(config());
        t.handle(exited(EXIT_0), secs(0));
        t.handle(Event::NothingLeft, secs(0));
        for event in [Event::Signal(Signal::TERM), Event::Tick, Event::NothingLeft] {
            assert_eq!(t.handle(event, secs(1)), vec![]);
        }
    }
}

/// Random runs of the timeline against the rules it must keep whatever happens, in any order.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// What the world may do next; the driver turns it into a valid event.
    #[derive(Clone, Debug)]
    enum Happening {
        Signal(Signal),
        CommandExits { code: u8, others_left: bool },
        HookExits,
        EverythingReaped,
        Traffic,
    }

    fn happening() -> impl Strategy<Value = Happening> {
        prop_oneof![
            3 => prop_oneof![
                Just(Signal::TERM),
                Just(Signal::INT),
                Just(Signal::USR1),
                Just(Signal::HUP)
            ]
            .prop_map(Happening::Signal),
            1 => (any::<u8>(), any::<bool>())
                .prop_map(|(code, others_left)| Happening::CommandExits { code, others_left }),
            1 => Just(Happening::HookExits),
            1 => Just(Happening::EverythingReaped),
            2 => Just(Happening::Traffic),
        ]
    }

    /// Configurations the command line accepts: the delay and the hook's timeout leave the
    /// command time before the kill.
    fn config() -> impl Strategy<Value = TimelineConfig> {
        (
            0u64..10_000,
            prop::option::of(0u64..10_000),
            prop::option::of((1u64..60_000, 0u64..5_000)),
            0u64..10_000,
        )
            .prop_filter_map(
                "delay and hook must fit",
                |(delay, hook, grace, cleanup)| {
                    let ms = Duration::from_millis;
                    let (grace_period, kill_margin) = match grace {
                        Some((grace, margin)) if margin < grace => (Some(ms(grace)), ms(margin)),
                        Some(_) => return None,
                        None => (None, ms(2_000)),
                    };
                    let kill_after = grace_period.map(|g| g - kill_margin);
                    let fits = |d: u64| kill_after.map_or(true, |k| ms(d) < k);
                    (fits(delay) && hook.map_or(true, fits)).then(|| TimelineConfig {
                        stop_signal: Signal::TERM,
                        stop_delay: ms(delay),
                        pre_stop_hook_timeout: hook.map(ms),
                        grace_period,
                        kill_margin,
                        cleanup_timeout: ms(cleanup),
                        // The command line's rule: the cap fits like the delay, and is not
                        // shorter than it.
                        drain: (cleanup % 2 == 0).then(|| Drain {
                            quiet: ms(cleanup / 4 + 1),
                            max: kill_after
                                .map_or(ms(delay + 5_000), |k| ms(delay) + (k - ms(delay)) / 2),
                        }),
                    })
                },
            )
    }

    /// One run: what was asked of the supervisor, and when.
    #[derive(Default, Debug)]
    struct Record {
        actions: Vec<(Duration, Action)>,
        stopped_at: Option<Duration>,
        command_exit: Option<(Duration, ChildStatus)>,
    }

    /// The timeline, what it asked for, and what the world knows (a hook runs, all was killed).
    struct Driver {
        timeline: Timeline,
        record: Record,
        hook_running: bool,
        killed: bool,
    }

    impl Driver {
        fn handle(&mut self, event: Event, now: Duration) {
            let before_stop = self.timeline.stopped_at();
            for action in self.timeline.handle(event, now) {
                match action {
                    Action::StartPreStopHook => self.hook_running = true,
                    Action::KillEverything(_) => self.killed = true,
                    _ => {}
                }
                self.record.actions.push((now, action));
            }
            if before_stop.is_none() {
                self.record.stopped_at = self.timeline.stopped_at();
            }
        }
    }

    /// Drives the timeline like the supervisor does: each happening at its time, a Tick
    /// whenever a deadline has come, and only events the world can produce in that state.
    fn run(config: &TimelineConfig, script: &[(u64, Happening)]) -> Record {
        let mut driver = Driver {
            timeline: Timeline::new(config.clone()),
            record: Record::default(),
            hook_running: false,
            killed: false,
        };
        let mut now = Duration::ZERO;
        for (gap, what) in script {
            let target = now + Duration::from_millis(*gap);
            // Deadlines that come before the next happening, in order, as wake-ups.
            while let Some(deadline) = driver.timeline.next_deadline().filter(|d| *d <= target) {
                now = now.max(deadline);
                driver.handle(Event::Tick, now);
                if let Some(next) = driver.timeline.next_deadline() {
                    assert!(
                        next > now,
                        "a tick at {now:?} left the deadline at {next:?}"
                    );
                }
            }
            now = target;
            let event = match what {
                Happening::Signal(signal) => Event::Signal(*signal),
                Happening::Traffic => Event::TrafficSeen(now),
                Happening::CommandExits { code, others_left }
                    if driver.record.command_exit.is_none() =>
                {
                    let status = if driver.killed {
                        ChildStatus::Killed(Signal::KILL)
                    } else {
                        ChildStatus::Exited(*code)
                    };
                    driver.record.command_exit = Some((now, status));
                    Event::CommandExited {
                        status,
                        others_left: *others_left,
                    }
                }
                Happening::HookExits if driver.hook_running => {
                    driver.hook_running = false;
                    Event::HookExited
                }
                Happening::EverythingReaped
                    if driver.record.command_exit.is_some() || driver.killed =>
                {
                    Event::NothingLeft
                }
                _ => continue,
            };
            driver.handle(event, now);
        }
        driver.record
    }

    fn script() -> impl Strategy<Value = Vec<(u64, Happening)>> {
        prop::collection::vec((0u64..4_000, happening()), 0..24)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn the_stop_signal_is_forwarded_before_any_deadline_kill(config in config(), script in script()) {
            let record = run(&config, &script);
            let forwarded = record.actions.iter().position(|(_, a)| {
                matches!(a, Action::Forward(s, r) if *s == Signal::TERM && *r != ForwardReason::Passthrough)
            });
            let deadline_kill = record.actions.iter().position(|(_, a)| {
                matches!(a, Action::KillEverything(KillReason::Deadline { .. }))
            });
            let exited_at = record.command_exit.map(|(at, _)| at);
            if let Some(kill) = deadline_kill {
                let kill_time = record.actions[kill].0;
                let exited_first = exited_at.is_some_and(|at| at <= kill_time);
                prop_assert!(
                    exited_first || forwarded.is_some_and(|f| f < kill),
                    "SIGKILL before the stop signal reached the command: {:?}", record
                );
            }
        }

        #[test]
        fn nothing_is_killed_before_the_deadline_or_the_cleanup_timeout(config in config(), script in script()) {
            let record = run(&config, &script);
            for (at, action) in &record.actions {
                match action {
                    Action::KillEverything(KillReason::Deadline { .. }) => {
                        let stopped = record.stopped_at.expect("deadline kill without a stop");
                        let kill_after = config.kill_after().expect("deadline kill without a grace period");
                        prop_assert!(*at >= stopped + kill_after, "killed at {at:?}: {record:?}");
                    }
                    Action::KillEverything(KillReason::CleanupTimeout) => {
                        let (exited, _) = record.command_exit.expect("cleanup kill before the command exited");
                        prop_assert!(*at >= exited + config.cleanup_timeout, "killed at {at:?}: {record:?}");
                    }
                    _ => {}
                }
            }
        }

        #[test]
        fn the_exit_code_is_the_commands_own_unless_grace_init_killed_it(config in config(), script in script()) {
            let record = run(&config, &script);
            let exits: Vec<ChildStatus> = record.actions.iter().filter_map(|(_, a)| match a {
                Action::Exit(status) => Some(*status),
                _ => None,
            }).collect();
            prop_assert!(exits.len() <= 1, "exited twice: {record:?}");
            if let Some(status) = exits.first() {
                match record.command_exit {
                    Some((_, own)) => prop_assert_eq!(*status, own),
                    None => prop_assert_eq!(*status, ChildStatus::Killed(Signal::KILL)),
                }
            }
        }

        #[test]
        fn nothing_happens_after_exit(config in config(), script in script()) {
            let record = run(&config, &script);
            if let Some(exit) = record.actions.iter().position(|(_, a)| matches!(a, Action::Exit(_))) {
                prop_assert_eq!(exit, record.actions.len() - 1, "actions after exit: {:?}", record);
            }
        }
    }
}
