//! The dashboard's state and its WebSocket protocol.
//!
//! The [`Hub`] sits between the broker link and the pages: broker messages
//! go in through [`Hub::ingest`], are folded into the [`Fleet`] and fanned
//! out, serialized once, to every page; what a page asks for comes in
//! through [`Hub::handle_page`], is checked and leaves as an [`Outgoing`]
//! publish on a channel the broker link drains (tests read it directly).
//!
//! # WebSocket messages (JSON, tagged by `type`)
//! Server → page: `hello` (the whole state: `robots`, `broker`,
//! `detection`, `on_screen`), `broker`, `robot`, `telemetry`, `detections`,
//! `result`, `sent` (a command left for the robot), `on_screen` (which
//! robots are followed at full rate and which wait), `error` (refused, with
//! `message`).
//! Page → server: `{"type":"command","thing":T,"command":{...}}`,
//! `{"type":"shadow","thing":T,"desired":{...}}`,
//! `{"type":"view","things":[T,...]}` (the robots the page shows: its
//! selected robot, or none while the tab is hidden).
//!
//! Telemetry and detections come only for the robots on screen (see
//! [`crate::onscreen`]): the hub turns the pages' views into exact
//! subscriptions ([`Outgoing::Subscribe`] / [`Outgoing::Unsubscribe`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gopigo_protocol::{
    Command, CommandResult, Detections, RobotTopic, ShadowMsg, Telemetry, Topic,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc};

use crate::actions::{self, ActionError};
use crate::fleet::{classify, Fleet, RobotView, Update};
use crate::onscreen::{self, OnScreen};

/// Which robots are followed at full rate (telemetry, detections).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnScreenView {
    /// Followed at full rate, in the order they were first shown.
    pub full_rate: Vec<String>,
    /// On some page's screen, waiting for a slot.
    pub waiting: Vec<String>,
    /// How many robots can be followed at full rate at once.
    pub limit: usize,
}

/// The broker connection as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokerView {
    /// Connected and subscribed.
    pub connected: bool,
    /// `host:port`.
    pub endpoint: String,
    /// The last connection error, while disconnected.
    pub error: Option<String>,
}

/// Whether detections are expected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionView {
    /// A note shown instead of boxes (how to set up the detector), if any.
    pub note: Option<String>,
}

/// Server → page.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The whole state, on connect and after the page fell behind.
    Hello {
        /// The fleet list.
        robots: Vec<RobotView>,
        /// The broker connection.
        broker: BrokerView,
        /// Whether boxes will come, or the note to show instead.
        detection: DetectionView,
        /// The dashboard's clock, Unix ms.
        server_time_ms: u64,
        /// Which robots are followed at full rate.
        on_screen: OnScreenView,
    },
    /// The robots followed at full rate changed.
    OnScreen {
        /// As it is now.
        on_screen: OnScreenView,
    },
    /// The broker connection changed.
    Broker {
        /// The new state: connected or not, the endpoint, the last error.
        broker: BrokerView,
    },
    /// A fleet-list entry changed.
    Robot {
        /// The entry as it is now; replaces the page's entry of the same thing.
        robot: RobotView,
    },
    /// A telemetry sample, as the robot published it.
    Telemetry {
        /// Which robot's plot it extends.
        thing: String,
        /// Battery, encoders, wheel speeds, distance and motion, as published.
        telemetry: Telemetry,
    },
    /// Detections on a robot's video, for the overlay.
    Detections {
        /// Whose video.
        thing: String,
        /// As the detector published them.
        detections: Detections,
    },
    /// A command result, for the command log.
    Result {
        /// Which robot ran it.
        thing: String,
        /// As the robot published it.
        result: CommandResult,
    },
    /// A command was published.
    Sent {
        /// To which robot.
        thing: String,
        /// The command with its id, to match the results against.
        command: Command,
    },
    /// A shadow change was published.
    ShadowSent {
        /// Whose shadow.
        thing: String,
        /// The keys sent as `desired`.
        desired: Map<String, Value>,
    },
    /// A request was refused before it left.
    Error {
        /// The robot, if the request named one.
        thing: Option<String>,
        /// The command id, if any.
        id: Option<String>,
        /// What went wrong and what to do.
        message: String,
    },
}

/// Page → server.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PageMsg {
    /// Send a command (the protocol's command JSON; an id is added if absent).
    Command {
        /// To which robot (checked against the thing-name rule).
        thing: String,
        /// Checked with the robot's own parser before it is sent.
        command: Value,
    },
    /// Change the shadow's `desired` state.
    Shadow {
        /// Whose shadow (checked against the thing-name rule).
        thing: String,
        /// Keys of [`gopigo_protocol::RobotSettings`].
        desired: Map<String, Value>,
    },
    /// The robots the page shows (empty while its tab is hidden).
    View {
        /// Thing names of listed robots; at most
        /// [`onscreen::FULL_RATE_ROBOTS`] are taken.
        things: Vec<String>,
    },
}

/// A request for the broker link.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// Publish at QoS 1, not retained.
    Publish {
        /// A concrete topic, printed from a [`gopigo_protocol::Topic`].
        topic: String,
        /// JSON, already validated.
        payload: Vec<u8>,
    },
    /// Subscribe to one exact topic, now and after every reconnect, until
    /// [`Outgoing::Unsubscribe`]: a robot on screen's full-rate topics, a
    /// watched robot's video.
    Subscribe {
        /// The exact topic (no wildcard).
        filter: String,
    },
    /// Let a [`Outgoing::Subscribe`]d topic go.
    Unsubscribe {
        /// The topic given to `Subscribe`.
        filter: String,
    },
    /// Read a robot's retained status once and ask for its shadow. AWS
    /// IoT (and the local core) send retained messages only to
    /// subscriptions that name the topic exactly; the link subscribes for
    /// a moment, a few robots at a time and at a pace, and again after a
    /// reconnect (see [`crate::link`]).
    Follow {
        /// The robot's thing name.
        thing: String,
    },
}

/// Where a robot's camera is and the token it wants.
#[derive(Clone, PartialEq)]
pub struct CameraAccess {
    /// The announced `camera_url`.
    pub url: String,
    /// The camera's per-boot token (sent as `Authorization: Bearer`).
    pub token: Option<String>,
}

impl std::fmt::Debug for CameraAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraAccess")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Shared dashboard state (see the module docs).
#[derive(Debug)]
pub struct Hub {
    fleet: Mutex<Fleet>,
    broker: Mutex<BrokerView>,
    detection: DetectionView,
    events: broadcast::Sender<Arc<str>>,
    publish: mpsc::Sender<Outgoing>,
    /// MQTT video of the robots on screen.
    video: Arc<crate::mqtt_video::Relay>,
    /// The robots on the pages' screens.
    screens: Mutex<OnScreen>,
    /// The id the next page gets.
    next_page: AtomicU64,
}

fn encode(msg: &ServerMsg) -> Arc<str> {
    serde_json::to_string(msg)
        .unwrap_or_else(|e| format!(r#"{{"type":"error","message":"encode: {e}"}}"#))
        .into()
}

impl Hub {
    /// A hub whose publishes go to `publish`; `endpoint` is shown on the page.
    pub fn new(
        endpoint: String,
        detection_note: Option<String>,
        publish: mpsc::Sender<Outgoing>,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(Hub {
            fleet: Mutex::new(Fleet::new()),
            broker: Mutex::new(BrokerView {
                connected: false,
                endpoint,
                error: Some("connecting".into()),
            }),
            detection: DetectionView {
                note: detection_note,
            },
            events,
            publish,
            video: Default::default(),
            screens: Mutex::default(),
            next_page: AtomicU64::new(1),
        })
    }

    fn screens(&self) -> std::sync::MutexGuard<'_, OnScreen> {
        self.screens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which robots are followed at full rate now.
    pub fn on_screen(&self) -> OnScreenView {
        let s = self.screens();
        OnScreenView {
            full_rate: s.full_rate().to_vec(),
            waiting: s.waiting().to_vec(),
            limit: onscreen::FULL_RATE_ROBOTS,
        }
    }

    /// A page opened: its id for [`Hub::handle_page_text`] and [`Hub::close_page`].
    pub fn open_page(&self) -> u64 {
        self.next_page.fetch_add(1, Ordering::Relaxed)
    }

    /// A page closed: the robots it showed are let go unless another shows them.
    pub fn close_page(&self, page: u64) {
        let change = self.screens().leave(page);
        self.apply_screens(change);
    }

    /// Subscribes and unsubscribes as the robots on screen changed, and
    /// tells every page.
    fn apply_screens(&self, change: onscreen::Change) {
        if change.is_empty() {
            return;
        }
        for thing in &change.stop {
            for filter in onscreen::full_rate_topics(thing) {
                self.send_to_link(Outgoing::Unsubscribe { filter });
            }
        }
        for thing in &change.start {
            for filter in onscreen::full_rate_topics(thing) {
                self.send_to_link(Outgoing::Subscribe { filter });
            }
        }
        self.broadcast(&ServerMsg::OnScreen {
            on_screen: self.on_screen(),
        });
    }

    fn send_to_link(&self, out: Outgoing) {
        if let Err(e) = self.publish.try_send(out) {
            tracing::warn!(error = %e, "the broker link is backed up; a subscription change is lost");
        }
    }

    /// A page's `view`: the robots it shows, each a listed robot.
    fn set_view(&self, page: u64, things: Vec<String>) -> ServerMsg {
        let known = self.robots();
        for thing in &things {
            if let Err(e) = actions::check_thing(thing) {
                return view_error(thing, e.to_string());
            }
            if !known.iter().any(|r| &r.thing == thing) {
                return view_error(thing, format!("no robot named {thing:?} in this fleet"));
            }
        }
        let change = self.screens().set(page, things);
        self.apply_screens(change);
        ServerMsg::OnScreen {
            on_screen: self.on_screen(),
        }
    }

    fn fleet(&self) -> std::sync::MutexGuard<'_, Fleet> {
        self.fleet.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn broker_view(&self) -> std::sync::MutexGuard<'_, BrokerView> {
        self.broker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every page's feed of serialized [`ServerMsg`]s.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.events.subscribe()
    }

    fn broadcast(&self, msg: &ServerMsg) {
        let _ = self.events.send(encode(msg));
    }

    /// The `hello` message with the whole state.
    pub fn hello(&self) -> ServerMsg {
        ServerMsg::Hello {
            robots: self.fleet().views(),
            broker: self.broker_view().clone(),
            detection: self.detection.clone(),
            server_time_ms: gopigo_protocol::unix_ms(),
            on_screen: self.on_screen(),
        }
    }

    /// The hello as JSON text.
    pub fn hello_text(&self) -> Arc<str> {
        encode(&self.hello())
    }

    /// The fleet list.
    pub fn robots(&self) -> Vec<RobotView> {
        self.fleet().views()
    }

    /// The camera URL a robot announced and its camera token: `Err` says
    /// why there is none.
    pub fn camera(&self, thing: &str) -> Result<CameraAccess, String> {
        let fleet = self.fleet();
        let Some(view) = fleet.view(thing) else {
            return Err(format!("no robot named {thing:?} has been seen"));
        };
        if !view.online {
            return Err(format!("{thing} is offline"));
        }
        match fleet.camera_url(thing) {
            Some(u) => Ok(CameraAccess {
                url: u.to_string(),
                token: fleet.camera_token(thing).map(str::to_string),
            }),
            None => Err(format!("{thing} announces no camera stream in its status")),
        }
    }

    /// Records the broker connection state and tells the pages.
    pub fn set_broker(&self, connected: bool, error: Option<String>) {
        let view = {
            let mut b = self.broker_view();
            if b.connected == connected && b.error == error {
                return;
            }
            b.connected = connected;
            b.error = error;
            b.clone()
        };
        self.broadcast(&ServerMsg::Broker { broker: view });
    }

    /// Whether the broker link is up.
    pub fn broker_connected(&self) -> bool {
        self.broker_view().connected
    }

    /// Subscribes to a robot's retained status and asks for its shadow.
    /// Watches a known robot's MQTT video (see [`crate::mqtt_video`]).
    pub fn watch_video(&self, thing: &str) -> Result<crate::mqtt_video::Viewer, String> {
        if !self.robots().iter().any(|r| r.thing == thing) {
            return Err(format!("no robot named {thing:?} in this fleet"));
        }
        self.video.watch(thing, &self.publish)
    }

    fn follow(&self, thing: &str) {
        self.send_to_link(Outgoing::Follow {
            thing: thing.to_string(),
        });
    }

    /// Lists robots known from the configuration before they say anything
    /// (offline until their retained status arrives) and follows them.
    pub fn add_robots(&self, things: &[String]) {
        for thing in things {
            if actions::check_thing(thing).is_err() {
                tracing::warn!(thing = %thing, "ignoring a bad robot name in [dashboard] robots");
                continue;
            }
            let added = self.fleet().add_known(thing);
            if let Some(robot) = added {
                self.broadcast(&ServerMsg::Robot { robot });
                self.follow(thing);
            }
        }
    }

    /// Folds a broker message in and tells the pages. A robot seen for the
    /// first time gets a shadow `get`, so the page shows its settings.
    pub fn ingest(&self, topic: &str, payload: &[u8]) {
        if self.video.ingest(topic, payload) {
            return;
        }
        let msg = match classify(topic, payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(topic = %topic, error = %e, "ignored message");
                return;
            }
        };
        let (updates, new_thing) = {
            let mut fleet = self.fleet();
            let count = fleet.len();
            let updates = fleet.apply(msg, gopigo_protocol::unix_ms());
            // A robot heard of for the first time comes first in the updates.
            let new_thing = match updates.first() {
                Some(Update::Robot(v)) if fleet.len() > count => Some(v.thing.clone()),
                _ => None,
            };
            (updates, new_thing)
        };
        if let Some(thing) = new_thing {
            self.follow(&thing);
        }
        for u in updates {
            let msg = match u {
                Update::Robot(robot) => ServerMsg::Robot { robot },
                Update::Telemetry { thing, telemetry } => ServerMsg::Telemetry { thing, telemetry },
                Update::Detections { thing, detections } => {
                    ServerMsg::Detections { thing, detections }
                }
                Update::Result { thing, result } => ServerMsg::Result { thing, result },
            };
            self.broadcast(&msg);
        }
    }

    /// Handles a page's request; the reply goes to that page only (and a
    /// sent command is also shown on every other page's log).
    pub fn handle_page(&self, msg: PageMsg) -> ServerMsg {
        let (thing, id) = match &msg {
            PageMsg::Command { thing, command } => (
                thing.clone(),
                command
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ),
            PageMsg::Shadow { thing, .. } => (thing.clone(), None),
            PageMsg::View { .. } => (String::new(), None),
        };
        let error = |message: String| ServerMsg::Error {
            thing: Some(thing.clone()),
            id: id.clone(),
            message,
        };
        if let Err(e) = actions::check_thing(&thing) {
            return error(e.to_string());
        }
        if !self.broker_connected() {
            return error(format!(
                "not sent: the broker {} is unreachable",
                self.broker_view().endpoint
            ));
        }
        let (outgoing, reply) = match msg {
            PageMsg::Command { command, .. } => match actions::prepare_command(&command) {
                Ok((command, payload)) => (
                    Outgoing::Publish {
                        topic: Topic::robot(&thing, RobotTopic::Command).to_string(),
                        payload,
                    },
                    ServerMsg::Sent {
                        thing: thing.clone(),
                        command,
                    },
                ),
                Err(e) => return error(e.to_string()),
            },
            PageMsg::Shadow { desired, .. } => {
                if let Err(e) = actions::check_desired(&desired) {
                    return error(e.to_string());
                }
                (
                    Outgoing::Publish {
                        topic: Topic::shadow(&thing, ShadowMsg::Update).to_string(),
                        payload: actions::shadow_update(&desired, &actions::new_id()),
                    },
                    ServerMsg::ShadowSent {
                        thing: thing.clone(),
                        desired,
                    },
                )
            }
            // answered above; a view never reaches the broker as such
            PageMsg::View { .. } => return error("a view is not sent to a robot".into()),
        };
        match self.publish.try_send(outgoing) {
            Ok(()) => reply,
            Err(mpsc::error::TrySendError::Full(_)) => {
                error("not sent: the broker link is backed up; try again".into())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                error("not sent: the broker link has stopped".into())
            }
        }
    }

    /// Parses and handles one WebSocket text frame from page `page`.
    pub fn handle_page_text(&self, page: u64, text: &str) -> ServerMsg {
        match serde_json::from_str::<PageMsg>(text) {
            Ok(PageMsg::View { things }) => self.set_view(page, things),
            Ok(msg) => self.handle_page(msg),
            Err(e) => ServerMsg::Error {
                thing: None,
                id: None,
                message: format!("bad request from the page: {e}"),
            },
        }
    }
}

fn view_error(thing: &str, message: String) -> ServerMsg {
    ServerMsg::Error {
        thing: Some(thing.to_string()),
        id: None,
        message: format!("cannot show {thing}: {message}"),
    }
}

/// Encodes a message for a WebSocket text frame.
pub fn to_text(msg: &ServerMsg) -> Arc<str> {
    encode(msg)
}

impl From<ActionError> for ServerMsg {
    fn from(e: ActionError) -> Self {
        ServerMsg::Error {
            thing: None,
            id: None,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hub() -> (Arc<Hub>, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(16);
        (Hub::new("localhost:8883".into(), None, tx), rx)
    }

    #[test]
    fn commands_are_refused_while_the_broker_is_unreachable() {
        let (hub, mut rx) = hub();
        let reply = hub.handle_page_text(
            0,
            r#"{"type":"command","thing":"r1","command":{"action":"stop"}}"#,
        );
        let v = serde_json::to_value(&reply).unwrap();
        assert_eq!(v["type"], "error");
        assert!(
            v["message"].as_str().unwrap().contains("unreachable"),
            "{v}"
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_command_is_published_with_an_id_and_acknowledged() {
        let (hub, mut rx) = hub();
        hub.set_broker(true, None);
        let reply = hub.handle_page_text(
            0,
            r#"{"type":"command","thing":"r1","command":{"action":"drive","direction":"forward","duration_ms":400}}"#,
        );
        let v = serde_json::to_value(&reply).unwrap();
        assert_eq!(v["type"], "sent", "{v}");
        let Outgoing::Publish { topic, payload } = rx.try_recv().unwrap() else {
            panic!("not a publish")
        };
        assert_eq!(topic, "gopigo/r1/cmd");
        let sent: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(sent["id"], v["command"]["id"]);
        assert_eq!(sent["direction"], "forward");
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let (hub, mut rx) = hub();
        hub.set_broker(true, None);
        for (text, needle) in [
            (
                r#"{"type":"command","thing":"r/1","command":{"action":"stop"}}"#,
                "thing name",
            ),
            (
                r#"{"type":"command","thing":"r1","command":{"action":"fly"}}"#,
                "fly",
            ),
            (
                r#"{"type":"shadow","thing":"r1","desired":{"servo_angle":999}}"#,
                "servo_angle",
            ),
            (r#"{"type":"dance"}"#, "bad request"),
        ] {
            let v = serde_json::to_value(hub.handle_page_text(0, text)).unwrap();
            assert_eq!(v["type"], "error", "{text}");
            assert!(
                v["message"].as_str().unwrap().contains(needle),
                "{text}: {v}"
            );
        }
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn shadow_changes_go_to_the_update_topic_as_desired() {
        let (hub, mut rx) = hub();
        hub.set_broker(true, None);
        let v = serde_json::to_value(hub.handle_page_text(
            0,
            r#"{"type":"shadow","thing":"r1","desired":{"led":[0,255,0]}}"#,
        ))
        .unwrap();
        assert_eq!(v["type"], "shadow_sent");
        let Outgoing::Publish { topic, payload } = rx.try_recv().unwrap() else {
            panic!("not a publish")
        };
        assert_eq!(topic, "$aws/things/r1/shadow/update");
        let doc: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(doc["state"]["desired"], json!({"led":[0,255,0]}));
    }

    #[tokio::test]
    async fn broker_messages_reach_pages_and_new_robots_are_followed() {
        let (hub, mut rx) = hub();
        let mut page = hub.subscribe();
        // Discovered through a wildcard subscription (no retained message):
        hub.ingest(
            "gopigo/r1/telemetry",
            br#"{"ts_ms":1,"battery_v":9.5,"encoders_deg":{"left":0,"right":0},"wheel_dps":{"left":0,"right":0},"motion":"stopped"}"#,
        );
        let msg: Value = serde_json::from_str(&page.recv().await.unwrap()).unwrap();
        assert_eq!(msg["type"], "robot");
        assert_eq!(msg["robot"]["has_camera"], false);
        // ... so it is followed: its retained status read, its shadow asked for.
        assert_eq!(
            rx.try_recv().unwrap(),
            Outgoing::Follow { thing: "r1".into() }
        );
        let _telemetry = page.recv().await.unwrap();
        hub.ingest(
            "gopigo/r1/status",
            br#"{"online":true,"since":1,"version":"v","camera_url":"http://127.0.0.1:1/stream"}"#,
        );
        let msg: Value = serde_json::from_str(&page.recv().await.unwrap()).unwrap();
        assert_eq!(msg["type"], "robot");
        assert_eq!(msg["robot"]["online"], true);
        assert_eq!(msg["robot"]["has_camera"], true);
        hub.ingest(
            "gopigo/r1/status",
            br#"{"online":true,"since":1,"version":"v","camera_url":"http://127.0.0.1:1/stream"}"#,
        );
        assert!(rx.try_recv().is_err(), "a robot is followed once");
        assert_eq!(hub.camera("r1").unwrap().url, "http://127.0.0.1:1/stream");
        assert!(hub.camera("r9").unwrap_err().contains("r9"));
        let hello: Value = serde_json::to_value(hub.hello()).unwrap();
        assert_eq!(hello["robots"][0]["thing"], "r1");
        assert_eq!(hello["broker"]["connected"], false);
    }

    fn drain(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<Outgoing> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn only_robots_on_screen_are_followed_at_full_rate() {
        let (hub, mut rx) = hub();
        hub.add_robots(&["r1".into(), "r2".into()]);
        drain(&mut rx);
        let page = hub.open_page();
        let v =
            serde_json::to_value(hub.handle_page_text(page, r#"{"type":"view","things":["r1"]}"#))
                .unwrap();
        assert_eq!(v["type"], "on_screen", "{v}");
        assert_eq!(v["on_screen"]["full_rate"], json!(["r1"]));
        let sub = |f: &str| Outgoing::Subscribe { filter: f.into() };
        let unsub = |f: &str| Outgoing::Unsubscribe { filter: f.into() };
        assert_eq!(
            drain(&mut rx),
            [sub("gopigo/r1/telemetry"), sub("gopigo/r1/detections")]
        );
        // selecting r2 moves the subscription
        hub.handle_page_text(page, r#"{"type":"view","things":["r2"]}"#);
        assert_eq!(
            drain(&mut rx),
            [
                unsub("gopigo/r1/telemetry"),
                unsub("gopigo/r1/detections"),
                sub("gopigo/r2/telemetry"),
                sub("gopigo/r2/detections")
            ]
        );
        // an unknown or malformed robot is refused, and nothing changes
        for bad in ["ghost", "r/1"] {
            let text = format!(r#"{{"type":"view","things":["{bad}"]}}"#);
            let v = serde_json::to_value(hub.handle_page_text(page, &text)).unwrap();
            assert_eq!(v["type"], "error", "{v}");
            assert!(
                v["message"].as_str().unwrap().contains("cannot show"),
                "{v}"
            );
        }
        assert!(drain(&mut rx).is_empty());
        assert_eq!(
            serde_json::to_value(hub.hello()).unwrap()["on_screen"]["full_rate"],
            json!(["r2"])
        );
        // the page goes away: so does the subscription
        hub.close_page(page);
        assert_eq!(
            drain(&mut rx),
            [unsub("gopigo/r2/telemetry"), unsub("gopigo/r2/detections")]
        );
    }

    #[test]
    fn configured_robots_are_listed_offline_and_followed() {
        let (hub, mut rx) = hub();
        hub.add_robots(&["r2".into(), "bad/name".into()]);
        let robots = hub.robots();
        assert_eq!(robots.len(), 1);
        assert!(!robots[0].online && !robots[0].status_known);
        assert_eq!(
            rx.try_recv().unwrap(),
            Outgoing::Follow { thing: "r2".into() }
        );
    }
}
