//! The robot's MQTT session: connect with an offline will, subscribe to its
//! commands and shadow answers on every connect, route each message by its
//! [`Topic`], hand commands and settings to the executor's [`Inbox`] (a stop
//! through the stop slot, never behind the queue), publish what the
//! executor produces, stop the wheels when the link drops or goes quiet,
//! and on shutdown publish the last results and `online: false`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopigo_camera::mjpeg::AccessToken;
use gopigo_client::diagnose;
use gopigo_protocol::{
    parse_command, robot_subscriptions, unix_ms, CommandResult, CommandStatus, RobotTopic,
    ShadowMsg, Status, Topic,
};
use rumqttc::{AsyncClient, Event, LastWill, Outgoing, Packet, Publish, QoS, SubscribeFilter};
use tokio::sync::mpsc;

use crate::agent::announce;
use crate::backoff::Backoff;
use crate::config::AgentConfig;
use crate::executor::{Input, Output};
use crate::inbox::{CloseOnDrop, Inbox, Refused, StopAck, StopCause};
use crate::link::{LinkError, LinkReporter};
use crate::{shadow, AgentError};

/// The topics of one robot, printed once at start.
struct Topics {
    thing: String,
    /// `gopigo/{thing}/cmd`, or `[topics] command` (the seed's
    /// `AWSIOT_MQTT_TOPIC_COMMAND`), which need not be a gopigo topic.
    command: String,
    report: String,
    telemetry: String,
    status: String,
    shadow_get: String,
    shadow_update: String,
    video: String,
    /// Subscribed to on every connect.
    subscriptions: Vec<String>,
}

/// What an incoming message is to the robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    /// A command for the executor.
    Command,
    /// `update/delta`: desired settings that differ from the reported ones.
    Delta,
    /// `get/accepted`: the whole document, asked for at connect.
    Document,
    /// `get/rejected`: no shadow yet.
    NoShadow,
    /// `video/request`: a viewer wants the video for a while.
    VideoRequest,
}

impl Topics {
    fn new(cfg: &AgentConfig) -> Self {
        let thing = cfg.thing.as_str();
        let command = cfg.command_topic();
        let subscriptions = robot_subscriptions(thing)
            .iter()
            .map(|t| match t {
                Topic::Robot {
                    kind: RobotTopic::Command,
                    ..
                } => command.clone(),
                t => t.to_string(),
            })
            .collect();
        Self {
            thing: thing.to_string(),
            command,
            report: cfg.report_topic(),
            telemetry: Topic::robot(thing, RobotTopic::Telemetry).to_string(),
            status: Topic::robot(thing, RobotTopic::Status).to_string(),
            shadow_get: Topic::shadow(thing, ShadowMsg::Get).to_string(),
            shadow_update: Topic::shadow(thing, ShadowMsg::Update).to_string(),
            video: Topic::robot(thing, RobotTopic::Video).to_string(),
            subscriptions,
        }
    }

    /// What a message on `topic` is; `None` for anything else (another
    /// thing's shadow, a named shadow, a topic a wildcard let through).
    fn route(&self, topic: &str) -> Option<Inbound> {
        // The command topic first: it may be the seed's non-gopigo name.
        if topic == self.command {
            return Some(Inbound::Command);
        }
        match Topic::parse(topic).ok()? {
            Topic::Robot {
                thing,
                kind: RobotTopic::VideoRequest,
            } if thing == self.thing => Some(Inbound::VideoRequest),
            Topic::Shadow {
                thing,
                name: None,
                msg,
            } if thing == self.thing => match msg {
                ShadowMsg::UpdateDelta => Some(Inbound::Delta),
                ShadowMsg::GetAccepted => Some(Inbound::Document),
                ShadowMsg::GetRejected => Some(Inbound::NoShadow),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The id of a command that failed to parse, when its JSON has one.
fn id_of_unparsed(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string))
        .filter(|id| id.len() <= 64)
        .unwrap_or_else(|| "unparsed".to_string())
}

fn publish(client: &AsyncClient, topic: &str, qos: QoS, retain: bool, payload: Vec<u8>) {
    if let Err(e) = client.try_publish(topic, qos, retain, payload) {
        tracing::warn!(topic, error = %e, "publish dropped (client queue full or closed)");
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// What the event-loop task forwards: an event, or a failed poll's message.
type Events = mpsc::UnboundedReceiver<Result<Event, String>>;

/// Polls the rumqttc event loop on its own task, forwarding events, and
/// sleeps with backoff after each error (rumqttc reconnects on the next poll).
/// An error goes to the session at once (the wheels stop on it); only then
/// is it explained to the user by `reporter`, which may probe the broker.
/// The backoff starts over only after a session that lasted
/// [`STABLE_SESSION`], so two programs that keep taking each other's client
/// id, or a broker that refuses the certificate, slow down to the maximum.
fn spawn_event_loop(
    mut ev: rumqttc::EventLoop,
    mut reporter: LinkReporter,
) -> (Events, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (host, port) = ev.mqtt_options.broker_address();
    let task = tokio::spawn(async move {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut session_since: Option<Instant> = None;
        loop {
            match ev.poll().await {
                Ok(e) => {
                    if matches!(e, Event::Incoming(Packet::ConnAck(_))) {
                        session_since = Some(Instant::now());
                    }
                    if tx.send(Ok(e)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if tx.send(Err(e.to_string())).is_err() {
                        return;
                    }
                    let failure = diagnose::classify(&e, session_since.is_some());
                    let broker_live = failure == diagnose::Failure::ClosedSession
                        && diagnose::accepts_tcp(&host, port).await;
                    reporter.report(&LinkError {
                        failure,
                        broker_live,
                        raw: e.to_string(),
                    });
                    if session_since
                        .take()
                        .is_some_and(|t| t.elapsed() >= STABLE_SESSION)
                    {
                        backoff.reset();
                    }
                    let d = backoff.next_delay();
                    tracing::debug!(
                        delay_ms = d.as_millis() as u64,
                        "reconnecting after a pause"
                    );
                    tokio::time::sleep(d).await;
                }
            }
        }
    });
    (rx, task)
}

/// The camera's URL and token for the status, and its frames for MQTT video.
pub(crate) type CameraLink = (
    Option<(String, AccessToken)>,
    Option<gopigo_camera::FrameBus>,
);

/// A session that lasted this long restarts the reconnect backoff.
const STABLE_SESSION: Duration = Duration::from_secs(10);

/// The session's state between events; each `on_*` step handles one.
struct Session<'a> {
    cfg: &'a AgentConfig,
    t: Topics,
    client: AsyncClient,
    inbox: Arc<Inbox>,
    /// The camera's URL and per-boot token, announced in the online status.
    camera: Option<(String, AccessToken)>,
    /// The will's payload, published again on a clean shutdown.
    offline: Status,
    connected: bool,
    last_incoming: Instant,
    /// The link watchdog stopped the wheels during this silence already.
    watchdog_fired: bool,
    deltas: shadow::DeltaDedup,
    /// Over-the-air updates: AWS IoT Jobs on this thing's jobs topics.
    updater: crate::update::Updater,
    /// Publishes the camera while a viewer asks (none without a camera).
    video: Option<crate::video::Publisher>,
    /// Publishes on-robot detections while connected (`[detect]`).
    detections: Option<crate::onboard::Publisher>,
}

impl<'a> Session<'a> {
    /// Builds the client (manual acks, the offline will) and starts polling it.
    fn start(
        cfg: &'a AgentConfig,
        (camera, video_bus): CameraLink,
        onboard: Option<crate::onboard::Onboard>,
        inbox: Arc<Inbox>,
    ) -> Result<(Self, Events, tokio::task::JoinHandle<()>), AgentError> {
        let t = Topics::new(cfg);
        let offline = Status {
            online: false,
            since: unix_ms(),
            version: crate::update::version(),
            camera_url: None,
            camera_token: None,
        };
        let mut opts = cfg.mqtt.options()?;
        // Acknowledge incoming QoS 1 messages ourselves, once handled (see
        // `on_publish`): rumqttc's automatic PUBACK is written before the
        // message is handed over, and that write wakes the broker ahead of
        // the executor on the command's critical path.
        opts.set_manual_acks(true);
        opts.set_last_will(LastWill::new(
            &t.status,
            to_json(&offline),
            QoS::AtLeastOnce,
            true,
        ));
        let (client, ev) = gopigo_client::new_client(opts, 256);
        let updater = crate::update::Updater::new(&cfg.thing, client.clone());
        let reporter = LinkReporter::new(
            format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port),
            cfg.mqtt.client_id.clone(),
            cfg.path.clone(),
        );
        let (events, poller) = spawn_event_loop(ev, reporter);
        let video = video_bus.map(|bus| {
            crate::video::Publisher::spawn(cfg.video.clone(), bus, client.clone(), t.video.clone())
        });
        let detections = onboard.map(|o| {
            o.publisher(
                client.clone(),
                Topic::robot(&cfg.thing, RobotTopic::Detections).to_string(),
            )
        });
        let session = Session {
            video,
            detections,
            cfg,
            t,
            client,
            inbox,
            camera,
            offline,
            connected: false,
            last_incoming: Instant::now(),
            watchdog_fired: false,
            deltas: shadow::DeltaDedup::default(),
            updater,
        };
        Ok((session, events, poller))
    }

    fn on_event(&mut self, event: Result<Event, String>) {
        match event {
            Ok(Event::Incoming(packet)) => {
                self.last_incoming = Instant::now();
                self.watchdog_fired = false;
                match packet {
                    Packet::ConnAck(_) => self.on_connack(),
                    Packet::Publish(p) => self.on_publish(&p),
                    Packet::SubAck(ack) => self.updater.on_suback(&ack.return_codes),
                    _ => {}
                }
            }
            Ok(Event::Outgoing(_)) => {}
            Err(e) => self.on_link_error(e),
        }
    }

    /// Connected: subscribe, say `online` (with the camera), ask for the shadow.
    fn on_connack(&mut self) {
        self.connected = true;
        if let Some(d) = &self.detections {
            d.set_online(true);
        }
        tracing::info!(thing = %self.cfg.thing, "connected to the broker");
        let subs = self
            .t
            .subscriptions
            .iter()
            .map(|s| SubscribeFilter::new(s.clone(), QoS::AtLeastOnce));
        if let Err(e) = self.client.try_subscribe_many(subs) {
            tracing::error!(error = %e, "cannot subscribe");
        }
        let online = Status {
            online: true,
            since: unix_ms(),
            version: crate::update::version(),
            camera_url: self.camera.as_ref().map(|(url, _)| url.clone()),
            camera_token: self.camera.as_ref().map(|(_, t)| t.expose().to_string()),
        };
        let client = &self.client;
        publish(
            client,
            &self.t.status,
            QoS::AtLeastOnce,
            true,
            to_json(&online),
        );
        publish(
            client,
            &self.t.shadow_get,
            QoS::AtLeastOnce,
            false,
            Vec::new(),
        );
        self.updater.on_connect();
        announce(format!(
            "connected   {}:{}",
            self.cfg.mqtt.host, self.cfg.mqtt.port
        ));
    }

    fn on_publish(&mut self, p: &Publish) {
        match self.t.route(&p.topic) {
            Some(Inbound::Command) => self.on_command(&p.payload),
            Some(Inbound::Delta) => self.on_desired(&p.payload, false),
            Some(Inbound::Document) => self.on_desired(&p.payload, true),
            // No shadow yet: report what we have.
            Some(Inbound::NoShadow) => {
                let _ = self.send_input(Input::Settings(Default::default()));
            }
            Some(Inbound::VideoRequest) => {
                if let Some(v) = &self.video {
                    v.on_request(&p.payload);
                }
            }
            None if self.updater.handles(&p.topic) => {
                self.updater.on_message(&p.topic, &p.payload);
            }
            None => {}
        }
        // After the command is with the executor, as paho acks after on_message.
        if p.qos != QoS::AtMostOnce {
            if let Err(e) = self.client.try_ack(p) {
                tracing::warn!(error = %e, "PUBACK dropped (client queue full)");
            }
        }
    }

    fn on_command(&self, payload: &[u8]) {
        // Off unless RUST_LOG enables target `latency`.
        tracing::trace!(target: "latency", "agent command in");
        match parse_command(payload) {
            Ok(cmd) if cmd.is_stop() => self.stop(cmd.id),
            Ok(cmd) => {
                let id = cmd.id.clone();
                if let Err(reason) = self.send_input(Input::Command(cmd)) {
                    self.reject(id.unwrap_or_else(|| "unqueued".into()), reason);
                }
            }
            Err(e) => {
                tracing::info!(error = %e, "command rejected");
                self.reject(id_of_unparsed(payload), e.to_string());
            }
        }
    }

    /// Desired settings from the whole document (`whole`, which starts the
    /// delta dedup over) or from a delta (skipped when it repeats the last).
    fn on_desired(&mut self, payload: &[u8], whole: bool) {
        let doc: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        if whole {
            self.deltas.reset();
        } else if !self.deltas.is_new(&doc) {
            tracing::debug!("repeated shadow delta ignored");
            return;
        }
        let (settings, problems) = shadow::desired_settings(&doc);
        for problem in problems {
            tracing::warn!(%problem, "shadow value ignored");
        }
        if let Err(e) = self.send_input(Input::Settings(settings)) {
            tracing::warn!(error = %e, "shadow update not applied");
        }
    }

    /// The link failed: stop first; the event loop explains the cause.
    fn on_link_error(&mut self, e: String) {
        self.updater.on_link_lost();
        if let Some(v) = &self.video {
            v.stop(); // no frames queue up while offline; viewers ask again
        }
        if let Some(d) = &self.detections {
            d.set_online(false); // results are not queued while offline
        }
        if self.cfg.safety.stop_on_link_loss {
            self.inbox.stop(StopCause::LinkLost(e.clone()));
        }
        if self.connected {
            announce(format!("link lost   {e}"));
        }
        self.connected = false;
    }

    /// While the wheels turn, stops them once when nothing came from the
    /// broker for `[safety] link_timeout_ms` (a half-open connection).
    fn check_link(&mut self, moving: bool) {
        let timeout = Duration::from_millis(self.cfg.safety.link_timeout_ms);
        if self.connected
            && !self.watchdog_fired
            && moving
            && self.last_incoming.elapsed() > timeout
        {
            self.watchdog_fired = true;
            self.inbox.stop(StopCause::LinkLost(format!(
                "nothing from the broker for {} ms",
                timeout.as_millis()
            )));
        }
    }

    fn send_input(&self, input: Input) -> Result<(), String> {
        self.inbox.push(input).map_err(|e: Refused| e.to_string())
    }

    fn reject(&self, id: String, reason: String) {
        let r = CommandResult {
            id,
            status: CommandStatus::Rejected,
            reason: Some(reason),
        };
        publish(
            &self.client,
            &self.t.report,
            QoS::AtLeastOnce,
            false,
            to_json(&r),
        );
    }

    /// A result that waits for room in the client's queue rather than
    /// being dropped (the outcome of a stop).
    fn report(&self, id: String, status: CommandStatus, reason: Option<String>) {
        publish_result(
            &self.client,
            &self.t.report,
            &CommandResult { id, status, reason },
        );
    }

    /// A stop never waits for queue space: the stop slot takes it, cancels
    /// the queued motions, and the executor reports it within a tick.
    fn stop(&self, id: Option<String>) {
        match self.inbox.stop(StopCause::Command(id.clone())) {
            StopAck::Pending => {}
            StopAck::Merged => {
                let id = id.unwrap_or_else(|| "stop".into());
                let why = "merged with the stops already pending; the wheels stop with them";
                self.report(id.clone(), CommandStatus::Accepted, None);
                self.report(id, CommandStatus::Done, Some(why.into()));
            }
            StopAck::Closed => self.report(
                id.unwrap_or_else(|| "stop".into()),
                CommandStatus::Rejected,
                Some("the executor has stopped (the wheels were stopped when it did)".into()),
            ),
        }
    }

    fn publish_output(&self, out: Output, moving: bool) {
        publish_output(&self.client, &self.t, out, self.connected, moving);
    }

    /// After the inbox closed: the executor's last outputs (the stop's
    /// results, the last telemetry), `online: false`, then DISCONNECT
    /// (bounded to 2 s).
    async fn finish(self, events: &mut Events, out_rx: &mut mpsc::UnboundedReceiver<Output>) {
        tracing::info!("stopping the motors");
        while let Some(out) = out_rx.recv().await {
            self.publish_output(out, false);
        }
        if !self.connected {
            return;
        }
        let off = Status {
            since: unix_ms(),
            ..self.offline
        };
        publish(
            &self.client,
            &self.t.status,
            QoS::AtLeastOnce,
            true,
            to_json(&off),
        );
        let _ = self.client.try_disconnect();
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                e = events.recv() => match e {
                    Some(Ok(Event::Outgoing(Outgoing::Disconnect))) | Some(Err(_)) | None => break,
                    _ => {}
                }
            }
        }
    }
}

/// Runs the MQTT session until `shutdown` completes or the executor ends
/// (the error); `moving` is the executor's "wheels driven" flag.
pub(crate) async fn run(
    cfg: &AgentConfig,
    camera: CameraLink,
    onboard: Option<crate::onboard::Onboard>,
    inbox: Arc<Inbox>,
    mut out_rx: mpsc::UnboundedReceiver<Output>,
    moving: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    // Closing the inbox (also on an early error return, or if this task
    // unwinds) ends the executor, which stops and floats the motors.
    let closer = CloseOnDrop(inbox.clone());
    let (mut session, mut events, poller) = Session::start(cfg, camera, onboard, inbox)?;
    announce(format!(
        "agent       thing={} broker={}:{} commands={}",
        cfg.thing, cfg.mqtt.host, cfg.mqtt.port, session.t.command
    ));
    let mut watchdog = tokio::time::interval(Duration::from_millis(50));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    let exit = loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break Ok(()),
            Some(event) = events.recv() => session.on_event(event),
            out = out_rx.recv() => match out {
                Some(out) => session.publish_output(out, moving.load(Ordering::Relaxed)),
                None => {
                    // The executor thread ended on its own: it panicked (it
                    // stopped the motors and reported why). Exit so that a
                    // supervisor restarts the agent.
                    tracing::error!("the executor has ended; the agent stops");
                    break Err(AgentError::ExecutorEnded);
                }
            },
            _ = watchdog.tick() => session.check_link(moving.load(Ordering::Relaxed)),
        }
    };
    // Shutdown: motors first (closing the inbox ends the executor, which
    // stops and floats them), then the last results, offline status, disconnect.
    drop(closer);
    session.finish(&mut events, &mut out_rx).await;
    poller.abort();
    exit
}

/// Most executor results waiting, on their own tasks, for room in a full
/// client queue.
const MAX_RESULT_BACKLOG: usize = 1024;
/// How many wait now.
static RESULT_BACKLOG: AtomicUsize = AtomicUsize::new(0);

/// Publishes an executor result (the outcome of a stop among them): when the
/// client's queue is full (a burst of commands), the result waits for room
/// on its own task instead of being dropped, up to [`MAX_RESULT_BACKLOG`].
fn publish_result(client: &AsyncClient, topic: &str, r: &CommandResult) {
    let payload = to_json(r);
    let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, payload.clone()) else {
        return;
    };
    if RESULT_BACKLOG.fetch_add(1, Ordering::SeqCst) >= MAX_RESULT_BACKLOG {
        RESULT_BACKLOG.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(id = %r.id, error = %e, "result dropped: the client queue is full and {MAX_RESULT_BACKLOG} results already wait");
        return;
    }
    let (client, topic) = (client.clone(), topic.to_string());
    tokio::spawn(async move {
        if let Err(e) = client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
        {
            tracing::warn!(error = %e, "result dropped: the MQTT client has stopped");
        }
        RESULT_BACKLOG.fetch_sub(1, Ordering::SeqCst);
    });
}

fn publish_output(client: &AsyncClient, t: &Topics, out: Output, connected: bool, moving: bool) {
    match out {
        Output::Result(r) => publish_result(client, &t.report, &r),
        Output::Reported(s) => publish(
            client,
            &t.shadow_update,
            QoS::AtLeastOnce,
            false,
            to_json(&shadow::report(&s)),
        ),
        Output::Telemetry(tm) if connected => {
            // QoS 1 while moving: the PUBACKs feed the link watchdog.
            let qos = if moving {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            publish(client, &t.telemetry, qos, false, to_json(&tm));
        }
        Output::Telemetry(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_results_echo_the_id_when_there_is_one() {
        let table: [(&[u8], &str); 5] = [
            (br#"{"id":"a7","action":"fly"}"#, "a7"),
            (br#"{"action":"fly"}"#, "unparsed"),
            (b"jump", "unparsed"),
            (br#"{"id":7}"#, "unparsed"),
            (&[0xff, 0xfe], "unparsed"),
        ];
        for (payload, id) in table {
            assert_eq!(id_of_unparsed(payload), id);
        }
    }

    fn config(command: Option<&str>) -> AgentConfig {
        let text = r#"
thing = "r1"
[mqtt]
host = "localhost"
client_id = "r1"
ca_file = "ca.pem"
cert_file = "cert.pem"
key_file = "key.pem"
"#;
        let mut cfg = AgentConfig::from_toml(text, std::path::Path::new("robot.toml")).unwrap();
        cfg.topics.command = command.map(str::to_string);
        cfg
    }

    #[test]
    fn messages_are_routed_by_their_topic() {
        let t = Topics::new(&config(None));
        let table: &[(&str, Option<Inbound>)] = &[
            ("gopigo/r1/cmd", Some(Inbound::Command)),
            ("$aws/things/r1/shadow/update/delta", Some(Inbound::Delta)),
            (
                "$aws/things/r1/shadow/get/accepted",
                Some(Inbound::Document),
            ),
            (
                "$aws/things/r1/shadow/get/rejected",
                Some(Inbound::NoShadow),
            ),
            // another robot's, a named shadow, answers the robot ignores
            ("gopigo/r1/video/request", Some(Inbound::VideoRequest)),
            ("gopigo/r2/cmd", None),
            ("gopigo/r2/video/request", None),
            ("gopigo/r1/video", None),
            ("$aws/things/r2/shadow/update/delta", None),
            ("$aws/things/r1/shadow/name/cam/update/delta", None),
            ("$aws/things/r1/shadow/update/accepted", None),
            ("gopigo/r1/cmd/result", None),
            ("gopigo/r1/status", None),
            ("seed/cmd", None),
        ];
        for (topic, want) in table {
            assert_eq!(t.route(topic), *want, "{topic}");
        }
        assert_eq!(
            t.subscriptions,
            [
                "gopigo/r1/cmd",
                "gopigo/r1/video/request",
                "$aws/things/r1/shadow/update/delta",
                "$aws/things/r1/shadow/get/accepted",
                "$aws/things/r1/shadow/get/rejected",
            ]
        );
    }

    #[test]
    fn the_seeds_command_topic_replaces_the_default() {
        let t = Topics::new(&config(Some("seed/cmd")));
        assert_eq!(t.route("seed/cmd"), Some(Inbound::Command));
        assert_eq!(t.route("gopigo/r1/cmd"), None);
        assert_eq!(t.subscriptions[0], "seed/cmd");
        assert_eq!(
            t.route("$aws/things/r1/shadow/update/delta"),
            Some(Inbound::Delta)
        );
    }
}
