//! Telling the user why the broker connection fails, once per cause.
//!
//! The raw rumqttc error ("Connection closed by peer abruptly", a TLS
//! close_notify) says nothing a user can act on, and repeating it every
//! backoff period fills the journal. [`LinkReporter`] turns each failure
//! into [`gopigo_client::diagnose`]'s words, logs a cause when it first
//! appears (and a reminder with a count every few minutes while it lasts),
//! and spots the client-id takeover pattern: a session that the broker
//! closes while it still accepts connections, twice in a row.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gopigo_client::diagnose::{self, Failure, Subject};

/// One failed poll of the event loop.
#[derive(Debug, Clone)]
pub struct LinkError {
    /// What it most likely was.
    pub failure: Failure,
    /// For a closed session: whether the broker still took a TCP connection.
    pub broker_live: bool,
    /// rumqttc's own words.
    pub raw: String,
}

/// How long a cause stays "already said" before a reminder.
const REMIND_AFTER: Duration = Duration::from_secs(300);
/// Two closed sessions on a live broker within this window read as a takeover.
const TAKEOVER_WINDOW: Duration = Duration::from_secs(300);

/// Remembers what was said about the link.
#[derive(Debug)]
pub struct LinkReporter {
    endpoint: String,
    client_id: String,
    config: Option<PathBuf>,
    last_said: Option<(String, Instant)>,
    repeats: u32,
    last_live_close: Option<Instant>,
}

impl LinkReporter {
    /// For the agent connecting to `endpoint` as `client_id`, configured by `config`.
    pub fn new(endpoint: String, client_id: String, config: Option<PathBuf>) -> Self {
        LinkReporter {
            endpoint,
            client_id,
            config,
            last_said: None,
            repeats: 0,
            last_live_close: None,
        }
    }

    /// The words for `e`, and whether they should be logged now (a new
    /// cause, or a reminder); `now` is passed in for tests.
    pub fn words(&mut self, e: &LinkError, now: Instant) -> (String, bool) {
        let subject = Subject {
            endpoint: &self.endpoint,
            client_id: &self.client_id,
            config: self.config.as_deref(),
        };
        let words = if e.failure == Failure::ClosedSession && e.broker_live {
            let again = self
                .last_live_close
                .is_some_and(|t| now.duration_since(t) < TAKEOVER_WINDOW);
            self.last_live_close = Some(now);
            if again {
                diagnose::takeover(&self.client_id)
            } else {
                format!(
                    "the broker at {} closed the session, and still takes connections; reconnecting",
                    self.endpoint
                )
            }
        } else {
            diagnose::explain(e.failure, &subject)
        };
        let say = match &self.last_said {
            Some((w, at)) if *w == words && now.duration_since(*at) < REMIND_AFTER => {
                self.repeats += 1;
                false
            }
            Some((w, _)) if *w == words => {
                let n = std::mem::take(&mut self.repeats);
                self.last_said = Some((words.clone(), now));
                return (format!("{words} (still, {n} more times)"), true);
            }
            _ => true,
        };
        if say {
            self.repeats = 0;
            self.last_said = Some((words.clone(), now));
        }
        (words, say)
    }

    /// Logs `e` as [`Self::words`] decides.
    pub fn report(&mut self, e: &LinkError) {
        let (words, say) = self.words(e, Instant::now());
        if say {
            tracing::warn!(error = %e.raw, "{words}");
        } else {
            tracing::debug!(error = %e.raw, "{words}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(failure: Failure, broker_live: bool) -> LinkError {
        LinkError {
            failure,
            broker_live,
            raw: "Connection closed by peer abruptly".into(),
        }
    }

    fn reporter() -> LinkReporter {
        LinkReporter::new(
            "localhost:8883".into(),
            "robot1".into(),
            Some("/etc/gopigo/robot.toml".into()),
        )
    }

    #[test]
    fn a_refused_certificate_is_said_once_then_reminded() {
        let mut r = reporter();
        let t0 = Instant::now();
        let e = err(Failure::ClosedBeforeSession, false);
        let (w, say) = r.words(&e, t0);
        assert!(say && w.contains("INACTIVE, REVOKED or deleted"), "{w}");
        assert!(
            w.contains("gopigo check --config /etc/gopigo/robot.toml"),
            "{w}"
        );
        for i in 1..10 {
            assert!(!r.words(&e, t0 + Duration::from_secs(i * 30)).1);
        }
        let (w, say) = r.words(&e, t0 + REMIND_AFTER + Duration::from_secs(1));
        assert!(say && w.contains("9 more times"), "{w}");
    }

    #[test]
    fn two_closed_sessions_on_a_live_broker_read_as_a_takeover() {
        let mut r = reporter();
        let t0 = Instant::now();
        let (w, _) = r.words(&err(Failure::ClosedSession, true), t0);
        assert!(!w.contains("same client id"), "{w}");
        let (w, say) = r.words(
            &err(Failure::ClosedSession, true),
            t0 + Duration::from_secs(1),
        );
        assert!(say, "{w}");
        assert!(
            w.contains("probably another client connected with the same client id (robot1)"),
            "{w}"
        );
        // A broker that went away is not a takeover.
        let mut r = reporter();
        r.words(&err(Failure::ClosedSession, false), t0);
        let (w, _) = r.words(
            &err(Failure::ClosedSession, false),
            t0 + Duration::from_secs(1),
        );
        assert!(!w.contains("same client id"), "{w}");
    }
}
