//! The executor's inbox: a bounded queue for ordinary inputs beside a stop
//! slot that is never refused.
//!
//! Safety must not depend on queue space. Commands, heartbeats and shadow
//! settings wait in a queue of [`QUEUE_CAPACITY`]; a full queue refuses the
//! newcomer (the caller reports `rejected` and the client retries). A stop
//! — the `stop` command, link loss, a panic elsewhere in the agent — goes
//! into a separate slot instead: [`Inbox::stop`] cannot fail, it takes the
//! motions still waiting out of the queue (they never run, and each is
//! reported), and it wakes the executor, which looks at the slot before
//! anything else every time it wakes and at least once per tick.
//! [`Inbox::close`] (shutdown) is a stop too: it is seen before any queued
//! input.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use gopigo_protocol::Command;

use crate::executor::Input;

/// Most ordinary inputs waiting for the executor; more are refused.
pub const QUEUE_CAPACITY: usize = 16;
/// Most stop requests kept apart before the executor takes them; beyond
/// this a stop is merged into the pending ones (it still takes effect).
pub const MAX_PENDING_STOPS: usize = 64;

/// Why the wheels must stop.
#[derive(Debug, Clone, PartialEq)]
pub enum StopCause {
    /// A `stop` command, with its id if it had one.
    Command(Option<String>),
    /// The broker link is gone (event-loop error or silent link).
    LinkLost(String),
    /// A task other than the executor panicked.
    Panic(String),
    /// The power button asked the Pi to shut down.
    PowerButton,
}

/// One stop as the executor receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRequest {
    /// What triggered the stop: a `stop` command, a lost broker link or a panicked task.
    pub cause: StopCause,
    /// Motion commands that were waiting in the queue and will never run.
    pub cancelled: Vec<Command>,
}

/// What [`Inbox::stop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAck {
    /// The executor will apply this stop and report it.
    Pending,
    /// [`MAX_PENDING_STOPS`] stops were already waiting: this one was merged
    /// into them (the wheels stop all the same); the caller reports it.
    Merged,
    /// The executor has ended (it stopped the wheels when it did).
    Closed,
}

/// Why [`Inbox::push`] refused an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The queue holds [`QUEUE_CAPACITY`] inputs.
    #[error("command queue full ({QUEUE_CAPACITY} waiting); retry (a stop is never refused)")]
    Full,
    /// The executor has ended.
    #[error("the executor has stopped ({0}); the wheels were stopped when it did")]
    Closed(String),
}

/// What the executor takes out in one go.
#[derive(Debug, Default, PartialEq)]
pub struct Taken {
    /// Stops, oldest first: apply them before anything else.
    pub stops: Vec<StopRequest>,
    /// At most one ordinary input, when no stop or close is pending before it.
    pub input: Option<Input>,
    /// `Some(inputs left in the queue)` once the inbox is closed: the
    /// executor reports them and ends.
    pub closed: Option<Vec<Input>>,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Input>,
    stops: Vec<StopRequest>,
    /// Why the inbox closed; `None` while open.
    closed: Option<String>,
    /// The close has been handed to the executor.
    close_taken: bool,
}

/// See the module docs. Shared (`Arc`) by the MQTT session, the panic hook
/// and the executor thread.
#[derive(Debug, Default)]
pub struct Inbox {
    state: Mutex<State>,
    wake: Condvar,
}

impl Inbox {
    /// An empty, open inbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a queue and a list: always consistent between calls.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an ordinary input (command other than `stop`, settings).
    pub fn push(&self, input: Input) -> Result<(), Refused> {
        let mut s = self.lock();
        if let Some(why) = &s.closed {
            return Err(Refused::Closed(why.clone()));
        }
        if s.queue.len() >= QUEUE_CAPACITY {
            return Err(Refused::Full);
        }
        s.queue.push_back(input);
        drop(s);
        self.wake.notify_one();
        Ok(())
    }

    /// Asks the executor to stop the wheels. Never refused by a full queue:
    /// the motions waiting in the queue are cancelled with it.
    pub fn stop(&self, cause: StopCause) -> StopAck {
        let mut s = self.lock();
        Self::stop_locked(&mut s, cause, &self.wake)
    }

    /// [`Inbox::stop`] for a panic hook: gives up after `patience` if the
    /// lock stays held (the panicking thread may hold it), returning `None`.
    pub fn try_stop(&self, cause: StopCause, patience: Duration) -> Option<StopAck> {
        let until = Instant::now() + patience;
        loop {
            match self.state.try_lock() {
                Ok(mut s) => return Some(Self::stop_locked(&mut s, cause, &self.wake)),
                Err(TryLockError::Poisoned(p)) => {
                    return Some(Self::stop_locked(&mut p.into_inner(), cause, &self.wake))
                }
                Err(TryLockError::WouldBlock) if Instant::now() >= until => return None,
                Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    fn stop_locked(s: &mut State, cause: StopCause, wake: &Condvar) -> StopAck {
        if s.closed.is_some() {
            return StopAck::Closed;
        }
        let mut cancelled = Vec::new();
        s.queue.retain(|input| match input {
            Input::Command(c) if c.is_motion() => {
                cancelled.push(c.clone());
                false
            }
            _ => true,
        });
        let ack = if s.stops.len() < MAX_PENDING_STOPS {
            s.stops.push(StopRequest { cause, cancelled });
            StopAck::Pending
        } else {
            // Keep the cancelled commands: the executor reports each one.
            if let Some(last) = s.stops.last_mut() {
                last.cancelled.extend(cancelled);
            }
            StopAck::Merged
        };
        wake.notify_one();
        ack
    }

    /// Closes the inbox (shutdown, or the executor has ended): later pushes
    /// are refused, and the executor stops the wheels and ends.
    pub fn close(&self, why: &str) {
        let mut s = self.lock();
        if s.closed.is_none() {
            s.closed = Some(why.to_string());
        }
        drop(s);
        self.wake.notify_one();
    }

    /// True once [`Inbox::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Takes what is ready without waiting: every pending stop, then the
    /// close, else one queued input.
    pub fn take(&self) -> Taken {
        let mut s = self.lock();
        Self::take_locked(&mut s)
    }

    fn take_locked(s: &mut State) -> Taken {
        let stops = std::mem::take(&mut s.stops);
        if s.closed.is_some() && !s.close_taken {
            s.close_taken = true;
            let left = s.queue.drain(..).collect();
            return Taken {
                stops,
                input: None,
                closed: Some(left),
            };
        }
        let input = s.queue.pop_front();
        Taken {
            stops,
            input,
            closed: None,
        }
    }

    /// Waits until something is ready or `deadline` passes, then [`take`]s.
    ///
    /// [`take`]: Inbox::take
    pub fn wait_take(&self, deadline: Instant) -> Taken {
        let mut s = self.lock();
        loop {
            let ready = !s.stops.is_empty()
                || !s.queue.is_empty()
                || (s.closed.is_some() && !s.close_taken);
            let now = Instant::now();
            if ready || now >= deadline {
                return Self::take_locked(&mut s);
            }
            s = self
                .wake
                .wait_timeout(s, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Inputs waiting (for tests and logs).
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }
}

/// Closes the inbox when dropped: the executor ends even if the session
/// that feeds it unwinds.
#[derive(Debug)]
pub struct CloseOnDrop(pub std::sync::Arc<Inbox>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close("agent shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gopigo_protocol::{parse_command, RobotSettings};

    fn cmd(json: &str) -> Input {
        Input::Command(parse_command(json.as_bytes()).unwrap())
    }

    #[test]
    fn a_full_queue_refuses_commands_but_never_a_stop() {
        let inbox = Inbox::new();
        for i in 0..QUEUE_CAPACITY {
            let c = format!(r#"{{"id":"d{i}","action":"drive","direction":"forward"}}"#);
            inbox.push(cmd(&c)).unwrap();
        }
        let refused = inbox
            .push(cmd(r#"{"action":"led","color":[1,2,3]}"#))
            .unwrap_err();
        assert_eq!(refused, Refused::Full);
        assert!(refused.to_string().contains("queue full"));
        assert_eq!(
            inbox.stop(StopCause::Command(Some("s".into()))),
            StopAck::Pending
        );
        // the stop cancelled the 16 waiting drives
        let t = inbox.take();
        assert_eq!(t.stops.len(), 1);
        assert_eq!(t.stops[0].cancelled.len(), QUEUE_CAPACITY);
        assert_eq!(t.stops[0].cancelled[0].id.as_deref(), Some("d0"));
        assert_eq!(inbox.queued(), 0);
    }

    #[test]
    fn a_stop_keeps_queued_non_motion_and_later_commands_in_order() {
        let inbox = Inbox::new();
        inbox
            .push(cmd(r#"{"id":"a","action":"drive","direction":"forward"}"#))
            .unwrap();
        inbox
            .push(cmd(r#"{"id":"l","action":"led","color":[1,2,3]}"#))
            .unwrap();
        inbox
            .push(Input::Settings(RobotSettings::default()))
            .unwrap();
        inbox.stop(StopCause::LinkLost("eof".into()));
        inbox
            .push(cmd(r#"{"id":"b","action":"drive","direction":"forward"}"#))
            .unwrap();
        let t = inbox.take();
        assert_eq!(t.stops[0].cause, StopCause::LinkLost("eof".into()));
        let ids: Vec<_> = t.stops[0].cancelled.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, [Some("a".to_string())]);
        // the stop came out first, with the first remaining input
        assert!(matches!(t.input, Some(Input::Command(ref c)) if c.id.as_deref() == Some("l")));
        assert!(matches!(inbox.take().input, Some(Input::Settings(_))));
        // a drive sent after the stop is not cancelled by it
        assert!(
            matches!(inbox.take().input, Some(Input::Command(ref c)) if c.id.as_deref() == Some("b"))
        );
    }

    #[test]
    fn stops_beyond_the_pending_limit_are_merged_not_lost() {
        let inbox = Inbox::new();
        for _ in 0..MAX_PENDING_STOPS {
            assert_eq!(inbox.stop(StopCause::Command(None)), StopAck::Pending);
        }
        inbox
            .push(cmd(r#"{"id":"late","action":"turn","degrees":90}"#))
            .unwrap();
        assert_eq!(inbox.stop(StopCause::Command(None)), StopAck::Merged);
        let t = inbox.take();
        assert_eq!(t.stops.len(), MAX_PENDING_STOPS);
        assert_eq!(t.stops.last().unwrap().cancelled.len(), 1);
        assert_eq!(t.input, None);
    }

    #[test]
    fn close_comes_before_queued_inputs_and_refuses_later_ones() {
        let inbox = Inbox::new();
        inbox
            .push(cmd(r#"{"id":"a","action":"drive","direction":"forward"}"#))
            .unwrap();
        inbox.close("bye");
        assert!(matches!(inbox.push(cmd("stop")), Err(Refused::Closed(_))));
        assert_eq!(inbox.stop(StopCause::Command(None)), StopAck::Closed);
        let t = inbox.wait_take(Instant::now() + Duration::from_secs(5));
        assert_eq!(t.input, None);
        assert_eq!(t.closed.map(|l| l.len()), Some(1));
    }

    #[test]
    fn a_stop_wakes_a_waiting_executor() {
        let inbox = std::sync::Arc::new(Inbox::new());
        let waiter = {
            let inbox = inbox.clone();
            std::thread::spawn(move || inbox.wait_take(Instant::now() + Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(20));
        inbox.stop(StopCause::Panic("boom".into()));
        let t = waiter.join().unwrap();
        assert_eq!(t.stops[0].cause, StopCause::Panic("boom".into()));
    }
}
