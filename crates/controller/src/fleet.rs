//! The fleet as the controller sees it, as a pure reducer over broker
//! messages: [`classify`] turns a topic and payload into an [`Incoming`]
//! message, [`Fleet::apply`] folds it into the state and says what changed.
//! No sockets here, so every rule is a table-driven unit test.
//!
//! Online/offline comes from two sources that AWS IoT also offers: the
//! robot's retained `status` (with its last will saying `online: false`)
//! and the broker's lifecycle events on `$aws/events/presence/...`. Both
//! are applied in arrival order; a presence event older than one already
//! applied for the same robot is ignored (AWS does not promise ordering).
//!
//! # Who can add a robot to the list
//! Only a message a robot itself publishes: its `status`, `telemetry` or
//! `cmd/result`. The fleet policy lets a robot's certificate publish only
//! under `gopigo/{its own thing name}/`, so the names that can appear are
//! bounded by the registry (one per robot identity). Detections and shadow
//! documents, which any controller can cause for any name, and presence
//! events, which come for every client, only update robots already listed.
//! The list is also capped at [`MAX_ROBOTS`] entries, so a broker or policy
//! set up too loosely cannot grow the dashboard's memory without bound.

use std::collections::BTreeMap;

use crate::actions::check_thing;

use gopigo_protocol::{
    CommandResult, Detections, PresenceEvent, RobotTopic, ShadowMsg, Status, Telemetry, Topic,
    TopicError,
};
use serde::Serialize;
use serde_json::Value;

/// A broker message the controller understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `gopigo/{thing}/status` (retained; also the will).
    Status {
        /// The thing name in the topic (a valid name: [`Topic::parse`] checked it).
        thing: String,
        /// Online or offline, since when, and the camera it serves.
        status: Status,
    },
    /// `gopigo/{thing}/telemetry`.
    Telemetry {
        /// The thing name in the topic.
        thing: String,
        /// One sample, as the robot published it.
        telemetry: Telemetry,
    },
    /// `gopigo/{thing}/cmd/result`.
    Result {
        /// The thing name in the topic.
        thing: String,
        /// One step of a command: accepted, rejected or done.
        result: CommandResult,
    },
    /// `gopigo/{thing}/detections`.
    Detections {
        /// The robot whose video was analysed (anyone may publish these:
        /// they never add a robot to the list).
        thing: String,
        /// The frame's detections.
        detections: Detections,
    },
    /// `$aws/events/presence/{connected|disconnected}/{clientId}`.
    Presence {
        /// The MQTT client id (a robot's is its thing name).
        client_id: String,
        /// True for a `connected` event, false for `disconnected`.
        connected: bool,
        /// The broker's timestamp, Unix ms.
        timestamp_ms: u64,
        /// `disconnectReason` of a disconnect.
        reason: Option<String>,
    },
    /// A shadow document (`update/documents` or `get/accepted`).
    Shadow {
        /// Whose classic shadow.
        thing: String,
        /// `state.desired` (or `null`).
        desired: Value,
        /// `state.reported` (or `null`).
        reported: Value,
    },
    /// A topic we subscribe to but have nothing to do with (for example a
    /// `get/rejected` for a robot that has no shadow yet).
    Ignored,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    /// A product topic, but none of those the controller subscribes to.
    #[error("topic {0:?} is not one the controller reads (gopigo/{{thing}}/status|telemetry|cmd/result|detections, $aws/events/presence/..., $aws/things/{{thing}}/shadow/...)")]
    UnknownTopic(String),
    /// Not a topic of the product at all (or it names an invalid thing).
    #[error(transparent)]
    BadTopic(#[from] TopicError),
    /// The payload does not parse as the topic's message type.
    #[error("bad payload on {topic}: {reason}")]
    BadPayload {
        /// The topic it came on.
        topic: String,
        /// serde_json's message (names the field and position).
        reason: String,
    },
}

fn parse<T: serde::de::DeserializeOwned>(topic: &str, payload: &[u8]) -> Result<T, MessageError> {
    serde_json::from_slice(payload).map_err(|e| MessageError::BadPayload {
        topic: topic.to_string(),
        reason: e.to_string(),
    })
}

/// Reads a broker message.
pub fn classify(topic: &str, payload: &[u8]) -> Result<Incoming, MessageError> {
    match Topic::parse(topic)? {
        Topic::Robot { thing, kind } => robot_message(topic, thing, kind, payload),
        Topic::Presence { event, client_id } => presence_message(topic, event, client_id, payload),
        Topic::Shadow {
            thing,
            name: None,
            msg,
        } => shadow_message(topic, thing, msg, payload),
        Topic::Shadow { name: Some(_), .. } | Topic::Jobs { .. } => {
            Err(MessageError::UnknownTopic(topic.to_string()))
        }
    }
}

/// `gopigo/{thing}/...`: what the robots publish.
fn robot_message(
    topic: &str,
    thing: &str,
    kind: RobotTopic,
    payload: &[u8],
) -> Result<Incoming, MessageError> {
    let thing = thing.to_string();
    Ok(match kind {
        RobotTopic::Status => Incoming::Status {
            thing,
            status: parse(topic, payload)?,
        },
        RobotTopic::Telemetry => Incoming::Telemetry {
            thing,
            telemetry: parse(topic, payload)?,
        },
        RobotTopic::CommandResult => Incoming::Result {
            thing,
            result: parse(topic, payload)?,
        },
        RobotTopic::Detections => Incoming::Detections {
            thing,
            detections: parse(topic, payload)?,
        },
        RobotTopic::Command | RobotTopic::Check | RobotTopic::Video | RobotTopic::VideoRequest => {
            return Err(MessageError::UnknownTopic(topic.to_string()))
        }
    })
}

/// `$aws/events/presence/...`: the broker's lifecycle events.
fn presence_message(
    topic: &str,
    event: PresenceEvent,
    client_id: &str,
    payload: &[u8],
) -> Result<Incoming, MessageError> {
    let v: Value = parse(topic, payload)?;
    Ok(Incoming::Presence {
        client_id: client_id.to_string(),
        connected: event == PresenceEvent::Connected,
        timestamp_ms: v["timestamp"].as_u64().unwrap_or(0),
        reason: v["disconnectReason"].as_str().map(str::to_string),
    })
}

/// A classic shadow's documents; the other answers are subscribed to (or
/// arrive) but carry nothing the page shows.
fn shadow_message(
    topic: &str,
    thing: &str,
    msg: ShadowMsg,
    payload: &[u8],
) -> Result<Incoming, MessageError> {
    let thing = thing.to_string();
    let state = |v: &Value| Incoming::Shadow {
        thing: thing.clone(),
        desired: v["desired"].clone(),
        reported: v["reported"].clone(),
    };
    match msg {
        ShadowMsg::UpdateDocuments => {
            let v: Value = parse(topic, payload)?;
            Ok(state(&v["current"]["state"]))
        }
        ShadowMsg::GetAccepted => {
            let v: Value = parse(topic, payload)?;
            Ok(state(&v["state"]))
        }
        ShadowMsg::GetRejected
        | ShadowMsg::UpdateAccepted
        | ShadowMsg::UpdateRejected
        | ShadowMsg::UpdateDelta => Ok(Incoming::Ignored),
        ShadowMsg::Get
        | ShadowMsg::Update
        | ShadowMsg::Delete
        | ShadowMsg::DeleteAccepted
        | ShadowMsg::DeleteRejected => Err(MessageError::UnknownTopic(topic.to_string())),
    }
}

/// One robot, as the page shows it in the fleet list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RobotView {
    /// The key of the list, sorted by it.
    pub thing: String,
    /// Whether the agent is connected, as far as we know.
    pub online: bool,
    /// Whether any status or presence event has been seen (else `online`
    /// is a guess from telemetry).
    pub status_known: bool,
    /// When the online state last changed, Unix ms.
    pub since_ms: Option<u64>,
    /// Why it went offline (`disconnectReason`, or "status: offline").
    pub offline_reason: Option<String>,
    /// Last message of any kind from it, Unix ms (dashboard clock).
    pub last_seen_ms: Option<u64>,
    /// Battery voltage of the last telemetry sample.
    pub battery_v: Option<f64>,
    /// The agent's version from its status (empty until one arrives).
    pub version: String,
    /// Whether the robot announced a camera stream.
    pub has_camera: bool,
    /// The shadow's `desired` state from its last document (`null` before one).
    pub desired: Value,
    /// The shadow's `reported` state from its last document.
    pub reported: Value,
}

impl RobotView {
    fn new(thing: &str) -> Self {
        RobotView {
            thing: thing.to_string(),
            online: false,
            status_known: false,
            since_ms: None,
            offline_reason: None,
            last_seen_ms: None,
            battery_v: None,
            version: String::new(),
            has_camera: false,
            desired: Value::Null,
            reported: Value::Null,
        }
    }

    /// The view without the fields that change with every telemetry sample,
    /// to decide whether the fleet list needs an update.
    fn steady(&self) -> RobotView {
        RobotView {
            last_seen_ms: None,
            battery_v: None,
            ..self.clone()
        }
    }
}

/// Most robots listed; messages about further robots are ignored. Far
/// above a real fleet, small enough that the list's memory stays in the
/// low megabytes.
pub const MAX_ROBOTS: usize = 1000;

#[derive(Clone)]
struct Robot {
    view: RobotView,
    camera_url: Option<String>,
    /// The camera's per-boot token from the robot's status: only ever sent
    /// to the camera itself, never to a page.
    camera_token: Option<String>,
    presence_ts: u64,
}

impl std::fmt::Debug for Robot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Robot")
            .field("view", &self.view)
            .field("camera_url", &self.camera_url)
            .field(
                "camera_token",
                &self.camera_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What changed after a message, to tell the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The robot's fleet-list entry changed (or it was just discovered).
    Robot(RobotView),
    /// A telemetry sample, passed on as it came (the plots use every one).
    Telemetry {
        /// A listed robot.
        thing: String,
        /// As the robot published it.
        telemetry: Telemetry,
    },
    /// Detections on the robot's video, for the overlay.
    Detections {
        /// A listed robot.
        thing: String,
        /// As the detector published them.
        detections: Detections,
    },
    /// A command result, for the command log.
    Result {
        /// A listed robot.
        thing: String,
        /// As the robot published it.
        result: CommandResult,
    },
}

/// Every robot the controller has heard of.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    robots: BTreeMap<String, Robot>,
}

impl Fleet {
    /// An empty fleet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many robots are known.
    pub fn len(&self) -> usize {
        self.robots.len()
    }

    /// Whether no robot is known.
    pub fn is_empty(&self) -> bool {
        self.robots.is_empty()
    }

    /// Whether `thing` has been seen.
    pub fn knows(&self, thing: &str) -> bool {
        self.robots.contains_key(thing)
    }

    /// The fleet list, sorted by thing name.
    pub fn views(&self) -> Vec<RobotView> {
        self.robots.values().map(|r| r.view.clone()).collect()
    }

    /// One robot's entry.
    pub fn view(&self, thing: &str) -> Option<&RobotView> {
        self.robots.get(thing).map(|r| &r.view)
    }

    /// The camera URL the robot announced in its status.
    pub fn camera_url(&self, thing: &str) -> Option<&str> {
        self.robots.get(thing)?.camera_url.as_deref()
    }

    /// The camera's access token the robot announced in its status.
    pub fn camera_token(&self, thing: &str) -> Option<&str> {
        self.robots.get(thing)?.camera_token.as_deref()
    }

    /// The robot's entry, made if there is room (see [`MAX_ROBOTS`]).
    fn entry(&mut self, thing: &str) -> Option<&mut Robot> {
        if !self.knows(thing) && self.robots.len() >= MAX_ROBOTS {
            return None;
        }
        Some(
            self.robots
                .entry(thing.to_string())
                .or_insert_with(|| Robot {
                    view: RobotView::new(thing),
                    camera_url: None,
                    camera_token: None,
                    presence_ts: 0,
                }),
        )
    }

    /// Lists a robot before anything was heard from it (from the
    /// configuration); `Some(view)` when it is new.
    pub fn add_known(&mut self, thing: &str) -> Option<RobotView> {
        if self.knows(thing) {
            return None;
        }
        Some(self.entry(thing)?.view.clone())
    }

    /// The robot a message is about, if the message may be applied: robots
    /// are added only by their own messages (see the module docs).
    fn subject(&self, msg: &Incoming) -> Option<String> {
        let (thing, may_add) = match msg {
            Incoming::Status { thing, .. }
            | Incoming::Telemetry { thing, .. }
            | Incoming::Result { thing, .. } => (thing, true),
            Incoming::Detections { thing, .. } | Incoming::Shadow { thing, .. } => (thing, false),
            Incoming::Presence { client_id, .. } => (client_id, false),
            Incoming::Ignored => return None,
        };
        let listed = self.knows(thing);
        let ok = listed || (may_add && check_thing(thing).is_ok() && self.len() < MAX_ROBOTS);
        ok.then(|| thing.clone())
    }

    /// Folds one message into the state; `now_ms` is the dashboard's clock.
    /// Returns what the page should be told.
    pub fn apply(&mut self, msg: Incoming, now_ms: u64) -> Vec<Update> {
        let Some(thing) = self.subject(&msg) else {
            return Vec::new();
        };
        let is_new = !self.knows(&thing);
        let Some(robot) = self.entry(&thing) else {
            return Vec::new();
        };
        let before = robot.view.steady();
        let mut out = Vec::new();
        match msg {
            Incoming::Status { status, .. } => robot.apply_status(status, now_ms),
            Incoming::Telemetry { telemetry, .. } => {
                robot.apply_telemetry(&telemetry, now_ms);
                out.push(Update::Telemetry { thing, telemetry });
            }
            Incoming::Result { result, .. } => {
                robot.view.last_seen_ms = Some(now_ms);
                out.push(Update::Result { thing, result });
            }
            Incoming::Detections { detections, .. } => {
                out.push(Update::Detections { thing, detections });
            }
            Incoming::Presence {
                connected,
                timestamp_ms,
                reason,
                ..
            } => {
                if !robot.apply_presence(connected, timestamp_ms, reason) {
                    return Vec::new();
                }
            }
            Incoming::Shadow {
                desired, reported, ..
            } => {
                robot.view.desired = desired;
                robot.view.reported = reported;
            }
            Incoming::Ignored => {}
        }
        if is_new || robot.view.steady() != before {
            out.insert(0, Update::Robot(robot.view.clone()));
        }
        out
    }
}

impl Robot {
    /// The robot's own status: online state, version, and (when online)
    /// its camera.
    fn apply_status(&mut self, status: Status, now_ms: u64) {
        self.view.online = status.online;
        self.view.status_known = true;
        self.view.since_ms = Some(status.since);
        self.view.offline_reason = (!status.online).then(|| "status: offline".into());
        if !status.version.is_empty() {
            self.view.version = status.version;
        }
        if status.online {
            self.camera_url = status.camera_url;
            self.camera_token = status.camera_token;
            self.view.has_camera = self.camera_url.is_some();
            // An offline status is the broker's (the will) or a
            // retained old one: not a sign of life.
            self.view.last_seen_ms = Some(now_ms);
        }
    }

    /// A sample: the battery, a sign of life, and (until a status or
    /// presence event says otherwise) online, as only a running agent sends one.
    fn apply_telemetry(&mut self, telemetry: &Telemetry, now_ms: u64) {
        self.view.battery_v = Some(telemetry.battery_v);
        self.view.last_seen_ms = Some(now_ms);
        if !self.view.status_known {
            self.view.online = true;
        }
    }

    /// A lifecycle event; `false` (and nothing changed) when it is older
    /// than one already applied, as AWS does not promise their order.
    fn apply_presence(
        &mut self,
        connected: bool,
        timestamp_ms: u64,
        reason: Option<String>,
    ) -> bool {
        if timestamp_ms < self.presence_ts {
            return false;
        }
        self.presence_ts = timestamp_ms;
        self.view.online = connected;
        self.view.status_known = true;
        self.view.since_ms = Some(timestamp_ms);
        self.view.offline_reason = if connected {
            None
        } else {
            Some(reason.unwrap_or_else(|| "disconnected".into()))
        };
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(online: bool, since: u64, camera: Option<&str>) -> Vec<u8> {
        let mut v = json!({"online": online, "since": since, "version": "0.1.0"});
        if let Some(c) = camera {
            v["camera_url"] = json!(c);
        }
        v.to_string().into_bytes()
    }

    fn telemetry(battery: f64) -> Vec<u8> {
        json!({"ts_ms": 5, "battery_v": battery, "encoders_deg": {"left": 1.0, "right": 2.0},
               "wheel_dps": {"left": 0.0, "right": 0.0}, "distance_mm": 3000, "motion": "stopped"})
        .to_string()
        .into_bytes()
    }

    fn presence(connected: bool, ts: u64, reason: Option<&str>) -> Vec<u8> {
        let mut v = json!({"clientId": "r1", "timestamp": ts,
            "eventType": if connected {"connected"} else {"disconnected"}});
        if let Some(r) = reason {
            v["disconnectReason"] = json!(r);
        }
        v.to_string().into_bytes()
    }

    fn apply(fleet: &mut Fleet, topic: &str, payload: &[u8], now: u64) -> Vec<Update> {
        fleet.apply(classify(topic, payload).unwrap(), now)
    }

    #[test]
    fn classify_reads_every_subscribed_topic() {
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("gopigo/r1/status", status(true, 1, None), "Status"),
            ("gopigo/r1/telemetry", telemetry(9.5), "Telemetry"),
            (
                "gopigo/r1/cmd/result",
                br#"{"id":"a","status":"done"}"#.to_vec(),
                "Result",
            ),
            (
                "gopigo/r1/detections",
                br#"{"frame_ts_ms":1,"width":640,"height":480,"detections":[]}"#.to_vec(),
                "Detections",
            ),
            (
                "$aws/events/presence/connected/r1",
                presence(true, 3, None),
                "Presence",
            ),
            (
                "$aws/things/r1/shadow/update/documents",
                br#"{"current":{"state":{"desired":{"led":[1,2,3]}}}}"#.to_vec(),
                "Shadow",
            ),
            (
                "$aws/things/r1/shadow/get/accepted",
                br#"{"state":{"reported":{"servo_angle":90}}}"#.to_vec(),
                "Shadow",
            ),
            (
                "$aws/things/r1/shadow/get/rejected",
                br#"{"code":404}"#.to_vec(),
                "Ignored",
            ),
        ];
        for (topic, payload, kind) in cases {
            let got = format!("{:?}", classify(topic, &payload).unwrap());
            assert!(got.starts_with(kind), "{topic}: {got}");
        }
    }

    #[test]
    fn classify_names_topic_and_field_at_fault() {
        let table: &[(&str, &[u8], &str)] = &[
            ("gopigo/r1/telemetry", b"{}", "ts_ms"),
            ("gopigo/r1/status", b"not json", "gopigo/r1/status"),
            ("gopigo/r1/cmd", b"stop", "not one the controller reads"),
            (
                "$aws/things/r1/jobs/notify-next",
                b"{}",
                "not one the controller reads",
            ),
            ("other/topic", b"{}", "other/topic"),
            ("$aws/events/presence/connected/r1", b"[", "presence"),
        ];
        for (topic, payload, needle) in table {
            let e = classify(topic, payload).unwrap_err().to_string();
            assert!(e.contains(needle), "{topic}: {e}");
        }
    }

    #[test]
    fn retained_status_lists_the_robot_online_with_its_camera() {
        let mut f = Fleet::new();
        let up = apply(
            &mut f,
            "gopigo/r1/status",
            &status(true, 100, Some("http://127.0.0.1:8081/stream")),
            1000,
        );
        let Update::Robot(v) = &up[0] else {
            panic!("{up:?}")
        };
        assert!(v.online && v.status_known && v.has_camera);
        assert_eq!(v.since_ms, Some(100));
        assert_eq!(f.camera_url("r1"), Some("http://127.0.0.1:8081/stream"));
        assert_eq!(f.views().len(), 1);
    }

    #[test]
    fn will_or_disconnect_event_marks_offline_with_reason() {
        let mut f = Fleet::new();
        apply(&mut f, "gopigo/r1/status", &status(true, 100, None), 1000);
        let up = apply(
            &mut f,
            "$aws/events/presence/disconnected/r1",
            &presence(false, 200, Some("MQTT_KEEP_ALIVE_TIMEOUT")),
            1100,
        );
        let Update::Robot(v) = &up[0] else {
            panic!("{up:?}")
        };
        assert!(!v.online);
        assert_eq!(v.offline_reason.as_deref(), Some("MQTT_KEEP_ALIVE_TIMEOUT"));
        // the will arriving after the event keeps it offline, and is not
        // counted as the robot being seen
        apply(&mut f, "gopigo/r1/status", &status(false, 100, None), 1200);
        assert!(!f.view("r1").unwrap().online);
        assert_eq!(f.view("r1").unwrap().last_seen_ms, Some(1000));
        // and coming back clears the reason
        apply(
            &mut f,
            "$aws/events/presence/connected/r1",
            &presence(true, 300, None),
            1300,
        );
        let v = f.view("r1").unwrap();
        assert!(v.online && v.offline_reason.is_none());
    }

    #[test]
    fn late_presence_event_does_not_undo_a_newer_one() {
        let mut f = Fleet::new();
        apply(&mut f, "gopigo/r1/status", &status(true, 100, None), 1000);
        apply(
            &mut f,
            "$aws/events/presence/connected/r1",
            &presence(true, 500, None),
            1000,
        );
        let up = apply(
            &mut f,
            "$aws/events/presence/disconnected/r1",
            &presence(false, 400, Some("DUPLICATE_CLIENTID")),
            1001,
        );
        assert!(up.is_empty());
        assert!(f.view("r1").unwrap().online);
    }

    #[test]
    fn presence_of_other_clients_is_not_a_robot() {
        let mut f = Fleet::new();
        let up = apply(
            &mut f,
            "$aws/events/presence/connected/r1",
            &presence(true, 5, None),
            10,
        );
        assert!(up.is_empty());
        assert!(f.views().is_empty());
    }

    #[test]
    fn telemetry_updates_battery_without_a_fleet_list_update_each_time() {
        let mut f = Fleet::new();
        apply(&mut f, "gopigo/r1/status", &status(true, 100, None), 1000);
        let up = apply(&mut f, "gopigo/r1/telemetry", &telemetry(9.6), 1500);
        assert_eq!(up.len(), 1, "{up:?}");
        assert!(
            matches!(&up[0], Update::Telemetry { thing, telemetry } if thing == "r1" && telemetry.battery_v == 9.6)
        );
        let v = f.view("r1").unwrap();
        assert_eq!((v.battery_v, v.last_seen_ms), (Some(9.6), Some(1500)));
    }

    #[test]
    fn telemetry_from_an_unknown_robot_discovers_it_online() {
        let mut f = Fleet::new();
        let up = apply(&mut f, "gopigo/r2/telemetry", &telemetry(8.0), 10);
        assert!(matches!(&up[0], Update::Robot(v) if v.online && !v.status_known));
        assert!(matches!(&up[1], Update::Telemetry { .. }));
    }

    #[test]
    fn shadow_documents_update_desired_and_reported() {
        let mut f = Fleet::new();
        apply(&mut f, "gopigo/r1/status", &status(true, 100, None), 1000);
        let up = apply(
            &mut f,
            "$aws/things/r1/shadow/update/documents",
            br#"{"previous":{},"current":{"state":{"desired":{"led":[0,255,255]},"reported":{"led":[0,0,0]}}}}"#,
            1001,
        );
        let Update::Robot(v) = &up[0] else {
            panic!("{up:?}")
        };
        assert_eq!(v.desired, json!({"led": [0, 255, 255]}));
        assert_eq!(v.reported, json!({"led": [0, 0, 0]}));
    }

    #[test]
    fn results_and_detections_pass_through() {
        let mut f = Fleet::new();
        apply(&mut f, "gopigo/r1/status", &status(true, 100, None), 1000);
        let up = apply(
            &mut f,
            "gopigo/r1/cmd/result",
            br#"{"id":"c1","status":"rejected","reason":"obstacle"}"#,
            1001,
        );
        assert!(
            matches!(&up[..], [Update::Result { result, .. }] if result.reason.as_deref() == Some("obstacle"))
        );
        let up = apply(
            &mut f,
            "gopigo/r1/detections",
            br#"{"frame_ts_ms":1,"width":640,"height":480,"detections":[{"class":"dog","score":0.9,"box":[1,2,3,4]}]}"#,
            1002,
        );
        assert!(
            matches!(&up[..], [Update::Detections { detections, .. }] if detections.detections[0].class == "dog")
        );
    }

    #[test]
    fn only_a_robots_own_messages_list_it() {
        let mut f = Fleet::new();
        // any controller may publish detections or shadow updates for any name
        let up = apply(
            &mut f,
            "gopigo/ghost/detections",
            br#"{"frame_ts_ms":1,"width":1,"height":1,"detections":[]}"#,
            1,
        );
        assert!(up.is_empty());
        apply(
            &mut f,
            "$aws/things/ghost2/shadow/update/documents",
            br#"{"current":{"state":{"desired":{"led":[1,2,3]}}}}"#,
            1,
        );
        assert!(f.is_empty(), "{:?}", f.views());
        // ... but once the robot itself spoke, they update it
        apply(&mut f, "gopigo/ghost/status", &status(true, 1, None), 2);
        let up = apply(
            &mut f,
            "gopigo/ghost/detections",
            br#"{"frame_ts_ms":1,"width":1,"height":1,"detections":[]}"#,
            3,
        );
        assert_eq!(up.len(), 1);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn the_list_is_capped() {
        let mut f = Fleet::new();
        for i in 0..MAX_ROBOTS + 50 {
            apply(
                &mut f,
                &format!("gopigo/r{i}/telemetry"),
                &telemetry(9.0),
                1,
            );
        }
        assert_eq!(f.len(), MAX_ROBOTS);
        assert!(f.add_known("late").is_none());
        // listed robots still update
        apply(&mut f, "gopigo/r0/telemetry", &telemetry(7.5), 2);
        assert_eq!(f.view("r0").unwrap().battery_v, Some(7.5));
    }

    #[test]
    fn the_camera_token_is_kept_but_never_in_the_view() {
        let mut f = Fleet::new();
        let mut v = json!({"online": true, "since": 1, "version": "1",
            "camera_url": "http://10.0.0.9:8081/stream", "camera_token": "s3cret-camera-token-abcdef"});
        apply(&mut f, "gopigo/r1/status", v.to_string().as_bytes(), 1);
        assert_eq!(f.camera_token("r1"), Some("s3cret-camera-token-abcdef"));
        let text = serde_json::to_string(&f.views()).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!format!("{f:?}").contains("s3cret"));
        // a new boot brings a new token; going offline keeps the last one
        v["camera_token"] = json!("second-boot-token-0123456789");
        apply(&mut f, "gopigo/r1/status", v.to_string().as_bytes(), 2);
        assert_eq!(f.camera_token("r1"), Some("second-boot-token-0123456789"));
    }
}
