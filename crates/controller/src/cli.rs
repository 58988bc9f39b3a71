//! The command-line actions: `gopigo drive`, `gopigo watch`, `gopigo shadow
//! get|set`. Each opens its own short MQTT session with the configured
//! identity (client id = its thing name, as the fleet policy requires, so
//! two programs running at once need two identities: the demo makes
//! `dashboard` and `operator`), does one thing, and reports through a writer.

use std::io::Write;
use std::time::Duration;

use gopigo_client::{diagnose, MqttSettings};
use gopigo_protocol::{topics, Action, Command, CommandStatus};
use rumqttc::{
    AsyncClient, Event, EventLoop, Packet, Publish, QoS, SubscribeFilter, SubscribeReasonCode,
};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::actions::{self, ActionError};
use crate::fleet::{classify, Incoming};

/// Why a CLI action failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The identity files or TLS set-up.
    #[error(transparent)]
    Client(#[from] gopigo_client::ClientError),
    /// An argument the action cannot use (thing name, speed, duration, ...).
    #[error(transparent)]
    Action(#[from] ActionError),
    /// The broker could not be reached, refused the session or closed it.
    #[error("cannot talk to the broker {endpoint}: {reason}")]
    Connect {
        /// host:port.
        endpoint: String,
        /// What most likely happened and what to do, then the raw error.
        reason: String,
    },
    /// The policy refused a subscription.
    #[error("the broker refused the subscription to {0} (check the controller's policy)")]
    Subscribe(String),
    /// No answer in time.
    #[error("no {what} from {thing} within {secs:.1} s (is the robot's agent running? `gopigo watch {thing}` shows what it sends)")]
    Timeout {
        /// What did not come, e.g. `result`.
        what: &'static str,
        /// The robot's thing name.
        thing: String,
        /// How long was waited, in seconds.
        secs: f64,
    },
    /// The robot said it is offline.
    #[error("{thing} is offline ({why}); the command was not sent")]
    Offline {
        /// The robot's thing name.
        thing: String,
        /// Since when / why.
        why: String,
    },
    /// The robot refused the command.
    #[error("{thing} rejected command {id}: {reason}")]
    Rejected {
        /// The robot's thing name.
        thing: String,
        /// The id of the rejected command.
        id: String,
        /// The robot's reason.
        reason: String,
    },
    /// The shadow service refused the request.
    #[error("shadow of {thing}: {message}")]
    Shadow {
        /// The thing whose shadow was asked for.
        thing: String,
        /// Code and message from the service.
        message: String,
    },
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
}

struct Session {
    client: AsyncClient,
    events: EventLoop,
    endpoint: String,
    client_id: String,
    host: String,
    port: u16,
}

/// What a failed poll most likely means (see `gopigo_client::diagnose`),
/// then rumqttc's own words.
async fn explain_failure(
    e: &rumqttc::ConnectionError,
    session_up: bool,
    endpoint: &str,
    client_id: &str,
    (host, port): (&str, u16),
) -> String {
    let failure = diagnose::classify(e, session_up);
    let words =
        if failure == diagnose::Failure::ClosedSession && diagnose::accepts_tcp(host, port).await {
            diagnose::takeover(client_id)
        } else {
            let subject = diagnose::Subject {
                endpoint,
                client_id,
                config: None,
            };
            diagnose::explain(failure, &subject)
        };
    format!("{words} ({e})")
}

impl Session {
    async fn open(settings: &MqttSettings, filters: &[String]) -> Result<Session, CliError> {
        // The client id must be the thing name: AWS resolves the policy's
        // ${iot:Connection.Thing.ThingName} only then.
        let options = settings.options()?;
        let endpoint = format!("{}:{}", settings.host, settings.port);
        let (client, mut events) = gopigo_client::new_client(options, 64);
        let connect_err = |reason: String| CliError::Connect {
            endpoint: format!("{}:{}", settings.host, settings.port),
            reason,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ev = tokio::time::timeout_at(deadline, events.poll())
                .await
                .map_err(|_| connect_err("no CONNACK within 10 s".into()))?;
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    let at = (settings.host.as_str(), settings.port);
                    let why = explain_failure(&e, false, &endpoint, &settings.client_id, at).await;
                    return Err(connect_err(why));
                }
            };
            if matches!(ev, Event::Incoming(Packet::ConnAck(_))) {
                break;
            }
        }
        let mut s = Session {
            client,
            events,
            endpoint,
            client_id: settings.client_id.clone(),
            host: settings.host.clone(),
            port: settings.port,
        };
        if !filters.is_empty() {
            s.client
                .subscribe_many(
                    filters
                        .iter()
                        .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce)),
                )
                .await
                .map_err(|e| connect_err(e.to_string()))?;
            loop {
                match s.poll(deadline).await? {
                    Some(Event::Incoming(Packet::SubAck(ack))) => {
                        if let Some((_, f)) = ack
                            .return_codes
                            .iter()
                            .zip(filters)
                            .find(|(c, _)| matches!(c, SubscribeReasonCode::Failure))
                        {
                            return Err(CliError::Subscribe(f.clone()));
                        }
                        break;
                    }
                    Some(_) => {}
                    None => return Err(connect_err("no SUBACK within 10 s".into())),
                }
            }
        }
        Ok(s)
    }

    /// The next event, or `None` at the deadline.
    async fn poll(&mut self, deadline: Instant) -> Result<Option<Event>, CliError> {
        match tokio::time::timeout_at(deadline, self.events.poll()).await {
            Err(_) => Ok(None),
            Ok(Ok(ev)) => Ok(Some(ev)),
            Ok(Err(e)) => {
                let at = (self.host.as_str(), self.port);
                let why = explain_failure(&e, true, &self.endpoint, &self.client_id, at).await;
                Err(CliError::Connect {
                    endpoint: self.endpoint.clone(),
                    reason: format!("connection lost: {why}"),
                })
            }
        }
    }

    /// The next PUBLISH, or `None` at the deadline.
    async fn next_publish(&mut self, deadline: Instant) -> Result<Option<Publish>, CliError> {
        loop {
            match self.poll(deadline).await? {
                Some(Event::Incoming(Packet::Publish(p))) => return Ok(Some(p)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    async fn publish(&mut self, topic: String, payload: Vec<u8>) -> Result<(), CliError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| CliError::Connect {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })
    }

    /// Disconnects cleanly (bounded).
    async fn close(mut self) {
        if self.client.try_disconnect().is_ok() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while let Ok(Some(ev)) = self.poll(deadline).await {
                if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        }
    }
}

/// Options of [`drive`].
#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// How long to wait for the result after the motion should have ended.
    pub timeout: Duration,
    /// Print the result as one JSON line instead of words.
    pub json: bool,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub struct DriveOutcome {
    /// The command's id, which its results on `cmd/result` carry.
    pub id: String,
    /// `done` (or `accepted` for commands the robot does not report done).
    pub status: CommandStatus,
    /// The robot's note (e.g. why a motion ended early).
    pub reason: Option<String>,
    /// Seconds from sending to the final result.
    pub elapsed_s: f64,
}

fn expected_ms(action: &Action) -> u64 {
    match action {
        Action::Drive { duration_ms, .. } => {
            u64::from(duration_ms.unwrap_or(gopigo_protocol::DEFAULT_DURATION_MS))
        }
        // At the slowest speed a 360 degree turn or a metre takes a while.
        Action::Turn { degrees } => (degrees.abs() * 30.0) as u64,
        Action::DriveCm { cm } => (cm.abs() * 300.0) as u64,
        _ => 0,
    }
}

/// Sends one command to `thing` and waits for its outcome: `Err` when the
/// robot is offline, rejects the command, or does not answer in time.
pub async fn drive(
    settings: &MqttSettings,
    thing: &str,
    action: Action,
    options: &DriveOptions,
    out: &mut (dyn Write + Send),
) -> Result<DriveOutcome, CliError> {
    actions::check_thing(thing)?;
    let result_topic = topics::cmd_result(thing);
    let status_topic = topics::status(thing);
    let mut s = Session::open(settings, &[result_topic.clone(), status_topic.clone()]).await?;
    let outcome = drive_steps(&mut s, thing, &status_topic, &action, options, out).await;
    s.close().await;
    let outcome = outcome?;
    print_outcome(thing, &outcome, options, out)?;
    Ok(outcome)
}

/// Online check, send, outcome: the steps of [`drive`] on an open session.
async fn drive_steps(
    s: &mut Session,
    thing: &str,
    status_topic: &str,
    action: &Action,
    options: &DriveOptions,
    out: &mut (dyn Write + Send),
) -> Result<DriveOutcome, CliError> {
    check_online(s, thing, status_topic).await?;
    let sent = send_command(s, thing, action, options, out).await?;
    await_outcome(s, thing, &sent, options, out).await
}

/// The retained status tells at once whether the robot is there: refuses
/// when it says offline; goes on when it says online or nothing in 0.7 s.
async fn check_online(s: &mut Session, thing: &str, status_topic: &str) -> Result<(), CliError> {
    let deadline = Instant::now() + Duration::from_millis(700);
    while let Some(p) = s.next_publish(deadline).await? {
        if p.topic == status_topic {
            if let Ok(Incoming::Status { status, .. }) = classify(&p.topic, &p.payload) {
                if !status.online {
                    return Err(CliError::Offline {
                        thing: thing.to_string(),
                        why: format!("status offline since {}", fmt_time(status.since)),
                    });
                }
            }
            break;
        }
    }
    Ok(())
}

/// A command on its way: what to match its results against.
struct SentCommand {
    id: String,
    motion: bool,
    at: Instant,
    /// How long to wait for its result: the motion's own time plus the
    /// timeout of [`DriveOptions`].
    wait: Duration,
}

async fn send_command(
    s: &mut Session,
    thing: &str,
    action: &Action,
    options: &DriveOptions,
    out: &mut (dyn Write + Send),
) -> Result<SentCommand, CliError> {
    let value = serde_json::to_value(Command::new(action.clone()))
        .map_err(|e| ActionError::Command(e.to_string()))?;
    let (cmd, payload) = actions::prepare_command(&value)?;
    let at = Instant::now();
    s.publish(topics::cmd(thing), payload.clone()).await?;
    if !options.json {
        writeln!(
            out,
            "sent to {thing}: {}",
            String::from_utf8_lossy(&payload)
        )?;
    }
    Ok(SentCommand {
        id: cmd.id.clone().unwrap_or_default(),
        motion: cmd.is_motion(),
        at,
        wait: options.timeout + Duration::from_millis(expected_ms(action)),
    })
}

/// Reads results for the command until `done`, a rejection, or the time is
/// up (which after an `accepted` ends as accepted).
async fn await_outcome(
    s: &mut Session,
    thing: &str,
    sent: &SentCommand,
    options: &DriveOptions,
    out: &mut (dyn Write + Send),
) -> Result<DriveOutcome, CliError> {
    let deadline = sent.at + sent.wait;
    let id = &sent.id;
    let mut accepted = false;
    loop {
        // After `accepted`, commands that are not motions end quickly.
        let step_deadline = if accepted && !sent.motion {
            deadline.min(Instant::now() + Duration::from_millis(1500))
        } else {
            deadline
        };
        let Some(p) = s.next_publish(step_deadline).await? else {
            if accepted {
                return Ok(DriveOutcome {
                    id: id.clone(),
                    status: CommandStatus::Accepted,
                    reason: None,
                    elapsed_s: sent.at.elapsed().as_secs_f64(),
                });
            }
            return Err(CliError::Timeout {
                what: "result",
                thing: thing.to_string(),
                secs: sent.wait.as_secs_f64(),
            });
        };
        let Ok(Incoming::Result { result, .. }) = classify(&p.topic, &p.payload) else {
            continue;
        };
        if &result.id != id {
            continue;
        }
        let elapsed_s = sent.at.elapsed().as_secs_f64();
        match result.status {
            CommandStatus::Rejected => {
                if options.json {
                    writeln!(out, "{}", String::from_utf8_lossy(&p.payload))?;
                }
                return Err(CliError::Rejected {
                    thing: thing.to_string(),
                    id: id.clone(),
                    reason: result.reason.unwrap_or_else(|| "no reason given".into()),
                });
            }
            CommandStatus::Accepted => {
                accepted = true;
                if !options.json {
                    writeln!(
                        out,
                        "{thing} accepted {id} after {:.0} ms",
                        elapsed_s * 1000.0
                    )?;
                }
            }
            CommandStatus::Done => {
                return Ok(DriveOutcome {
                    id: id.clone(),
                    status: CommandStatus::Done,
                    reason: result.reason,
                    elapsed_s,
                });
            }
        }
    }
}

/// The last line: one JSON object with `--json`, else words.
fn print_outcome(
    thing: &str,
    outcome: &DriveOutcome,
    options: &DriveOptions,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    if options.json {
        let v = serde_json::json!({"thing": thing, "id": outcome.id, "status": outcome.status,
            "reason": outcome.reason, "elapsed_ms": (outcome.elapsed_s * 1000.0).round()});
        writeln!(out, "{v}")?;
        return Ok(());
    }
    let note = outcome
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let word = match outcome.status {
        CommandStatus::Done => "done",
        _ => "accepted (no done reported)",
    };
    writeln!(
        out,
        "{thing} {word} {} after {:.2} s{note}",
        outcome.id, outcome.elapsed_s
    )?;
    Ok(())
}

/// Options of [`watch`].
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// JSON lines instead of words.
    pub json: bool,
    /// Stop after this many messages.
    pub count: Option<usize>,
    /// Also show detections.
    pub detections: bool,
}

fn fmt_time(ms: u64) -> String {
    let s = (ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// One message as a human-readable line.
pub fn describe(msg: &Incoming) -> Option<String> {
    Some(match msg {
        Incoming::Telemetry {
            thing,
            telemetry: t,
        } => {
            let dist = t
                .distance_mm
                .map(|d| format!("{d} mm"))
                .unwrap_or_else(|| "-".into());
            format!(
                "{thing} telemetry  battery {:.2} V  distance {dist}  wheels L {:.0} R {:.0} dps  encoders L {:.0} R {:.0} deg  {}",
                t.battery_v, t.wheel_dps.left, t.wheel_dps.right, t.encoders_deg.left, t.encoders_deg.right, t.motion
            )
        }
        Incoming::Result { thing, result } => {
            let status = serde_json::to_value(result.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let reason = result
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            format!("{thing} result     {} {status}{reason}", result.id)
        }
        Incoming::Status { thing, status } => format!(
            "{thing} status     {} since {}{}",
            if status.online { "online" } else { "OFFLINE" },
            fmt_time(status.since),
            if status.version.is_empty() {
                String::new()
            } else {
                format!(" (agent {})", status.version)
            }
        ),
        Incoming::Detections { thing, detections } => {
            let list: Vec<String> = detections
                .detections
                .iter()
                .map(|d| format!("{} {:.2}", d.class, d.score))
                .collect();
            format!(
                "{thing} detections {}: {}",
                detections.detections.len(),
                list.join(", ")
            )
        }
        _ => return None,
    })
}

/// Prints `thing`'s (or every robot's, with `None`) telemetry, results and
/// status as they arrive, until `count` messages or `stop` completes.
pub async fn watch(
    settings: &MqttSettings,
    thing: Option<&str>,
    options: &WatchOptions,
    out: &mut (dyn Write + Send),
    stop: impl std::future::Future<Output = ()>,
) -> Result<usize, CliError> {
    let t = match thing {
        Some(t) => {
            actions::check_thing(t)?;
            t
        }
        None => "+",
    };
    let mut filters = vec![
        topics::status(t),
        topics::telemetry(t),
        topics::cmd_result(t),
    ];
    if options.detections {
        filters.push(topics::detections(t));
    }
    let mut s = Session::open(settings, &filters).await?;
    let mut n = 0usize;
    let mut followed = std::collections::HashSet::new();
    let mut last_status = std::collections::HashMap::new();
    tokio::pin!(stop);
    let far = || Instant::now() + Duration::from_secs(3600);
    loop {
        if options.count.is_some_and(|c| n >= c) {
            break;
        }
        let p = tokio::select! {
            _ = &mut stop => break,
            p = s.next_publish(far()) => p?,
        };
        let Some(p) = p else { continue };
        let Ok(msg) = classify(&p.topic, &p.payload) else {
            continue;
        };
        if thing.is_none() {
            // Retained messages only reach exact subscriptions: follow each
            // robot's status topic once it is heard of.
            if let Some(t) = topics::thing_of(&p.topic) {
                if followed.insert(t.to_string()) {
                    let _ = s.client.try_subscribe(topics::status(t), QoS::AtLeastOnce);
                }
            }
        }
        if let Incoming::Status { thing: t, .. } = &msg {
            // The same status through both subscriptions is shown once.
            if last_status.get(t) == Some(&p.payload) {
                continue;
            }
            last_status.insert(t.clone(), p.payload.clone());
        }
        if options.json {
            let payload: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
            let kind = p.topic.rsplit('/').next().unwrap_or_default();
            let v = serde_json::json!({
                "topic": p.topic,
                "thing": topics::thing_of(&p.topic),
                "kind": kind,
                "retained": p.retain,
                "received_ms": crate::hub::now_ms(),
                "message": payload,
            });
            writeln!(out, "{v}")?;
        } else if let Some(line) = describe(&msg) {
            writeln!(out, "{} {line}", fmt_time(crate::hub::now_ms()))?;
        } else {
            continue;
        }
        out.flush()?;
        n += 1;
    }
    s.close().await;
    Ok(n)
}

/// `gopigo shadow get`: prints the thing's shadow document.
pub async fn shadow_get(
    settings: &MqttSettings,
    thing: &str,
    out: &mut (dyn Write + Send),
) -> Result<Value, CliError> {
    actions::check_thing(thing)?;
    let base = topics::shadow(thing);
    let (ok, bad) = (
        format!("{base}/get/accepted"),
        format!("{base}/get/rejected"),
    );
    let mut s = Session::open(settings, &[ok.clone(), bad.clone()]).await?;
    let token = actions::new_id();
    s.publish(
        format!("{base}/get"),
        serde_json::json!({ "clientToken": token })
            .to_string()
            .into_bytes(),
    )
    .await?;
    let doc = wait_shadow(&mut s, thing, &ok, &bad, &token).await;
    s.close().await;
    let doc = doc?;
    let shown =
        serde_json::json!({"thing": thing, "version": doc["version"], "state": doc["state"]});
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    )?;
    Ok(doc)
}

/// `gopigo shadow set`: sets `desired` keys; prints the accepted update.
pub async fn shadow_set(
    settings: &MqttSettings,
    thing: &str,
    desired: &Map<String, Value>,
    out: &mut (dyn Write + Send),
) -> Result<Value, CliError> {
    actions::check_thing(thing)?;
    actions::check_desired(desired)?;
    let base = topics::shadow(thing);
    let (ok, bad) = (
        format!("{base}/update/accepted"),
        format!("{base}/update/rejected"),
    );
    let mut s = Session::open(settings, &[ok.clone(), bad.clone()]).await?;
    let token = actions::new_id();
    s.publish(
        format!("{base}/update"),
        actions::shadow_update(desired, &token),
    )
    .await?;
    let doc = wait_shadow(&mut s, thing, &ok, &bad, &token).await;
    s.close().await;
    let doc = doc?;
    writeln!(
        out,
        "{thing} desired (version {}): {}",
        doc["version"], doc["state"]["desired"]
    )?;
    Ok(doc)
}

async fn wait_shadow(
    s: &mut Session,
    thing: &str,
    ok: &str,
    bad: &str,
    token: &str,
) -> Result<Value, CliError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(p) = s.next_publish(deadline).await? {
        let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
        if v["clientToken"].as_str().is_some_and(|t| t != token) {
            continue;
        }
        if p.topic == ok {
            return Ok(v);
        }
        if p.topic == bad {
            return Err(CliError::Shadow {
                thing: thing.to_string(),
                message: format!(
                    "{} {}",
                    v["code"],
                    v["message"].as_str().unwrap_or("rejected")
                ),
            });
        }
    }
    Err(CliError::Timeout {
        what: "shadow answer",
        thing: thing.to_string(),
        secs: 10.0,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_a_person_reads() {
        let t = classify(
            "gopigo/r1/telemetry",
            br#"{"ts_ms":1,"battery_v":9.61,"encoders_deg":{"left":10,"right":12},"wheel_dps":{"left":300,"right":300},"distance_mm":850,"motion":"driving"}"#,
        )
        .unwrap();
        let line = describe(&t).unwrap();
        for needle in [
            "r1 telemetry",
            "9.61 V",
            "850 mm",
            "L 300 R 300 dps",
            "driving",
        ] {
            assert!(line.contains(needle), "{line}");
        }
        let r = classify(
            "gopigo/r1/cmd/result",
            br#"{"id":"c1","status":"rejected","reason":"obstacle at 80 mm"}"#,
        )
        .unwrap();
        assert_eq!(
            describe(&r).unwrap(),
            "r1 result     c1 rejected: obstacle at 80 mm"
        );
        let s = classify(
            "gopigo/r1/status",
            br#"{"online":false,"since":3723004,"version":""}"#,
        )
        .unwrap();
        assert_eq!(
            describe(&s).unwrap(),
            "r1 status     OFFLINE since 01:02:03.004 UTC"
        );
    }

    #[test]
    fn wait_covers_the_motion() {
        let d = |ms| Action::Drive {
            direction: gopigo_protocol::Direction::Forward,
            speed_dps: None,
            duration_ms: ms,
        };
        assert_eq!(expected_ms(&d(Some(2500))), 2500);
        assert_eq!(expected_ms(&d(None)), 1000);
        assert_eq!(expected_ms(&Action::Stop), 0);
        assert!(expected_ms(&Action::Turn { degrees: -90.0 }) > 0);
    }
}
