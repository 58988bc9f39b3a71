//! Wiring: board, camera, debug endpoint, executor thread and the MQTT
//! session, started from one [`AgentConfig`] and stopped by one future.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gopigo3::sim::{ClockMode, SimHandle};
use gopigo3::{DistanceSensor, GoPiGo3, SpiBus};
use gopigo_client::diagnose;
use gopigo_protocol::{parse_command, topics, CommandResult, CommandStatus, Status};
use rumqttc::{AsyncClient, Event, LastWill, Outgoing, Packet, QoS, SubscribeFilter};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::{AgentConfig, BoardKind};
use crate::executor::{self, Executor, Input, Limits, Output, SharedRobot};
use crate::inbox::{CloseOnDrop, Inbox, Refused, StopAck, StopCause};
use crate::link::{LinkError, LinkReporter};
use crate::{shadow, AgentError};

/// The agent's version, reported in `status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn unix_ms() -> u64 {
    gopigo_camera::unix_ms_now()
}

/// Prints a line for people and test harnesses (bound URLs, final state).
pub(crate) fn announce(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the agent until `shutdown` completes; then stops and floats the
/// motors, publishes `online: false` and disconnects.
pub async fn run(
    cfg: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    match crate::limits::raise_open_files() {
        Ok(files) => {
            tracing::debug!(
                before = files.before,
                now = files.now,
                "open-file limit (RLIMIT_NOFILE)"
            );
            announce(format!(
                "files       up to {} open (RLIMIT_NOFILE; was {})",
                files.now, files.before
            ));
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let geometry = cfg.board.geometry();
    let why = cfg.board.reason();
    match cfg.board.kind() {
        BoardKind::Sim => {
            let kit = gopigo3::sim::new_robot(gopigo3::sim::SimConfig {
                geometry,
                clock: ClockMode::RealTime,
                ..gopigo3::sim::SimConfig::default()
            })?;
            announce(format!("board       simulated GoPiGo3 ({why})"));
            run_with(
                cfg,
                kit.gopigo,
                Some(Box::new(kit.distance)),
                Some(kit.handle),
                shutdown,
            )
            .await
        }
        BoardKind::Hardware => {
            #[cfg(feature = "hardware")]
            {
                let spi = gopigo3::linux::LinuxSpiConfig {
                    hold_power_line: cfg.board.hold_power_line,
                    ..gopigo3::linux::LinuxSpiConfig::default()
                };
                let g = gopigo3::linux::open_gopigo3(&spi, geometry)?;
                let distance: Option<Box<dyn DistanceSensor + Send>> =
                    match gopigo3::linux::Vl53l0xSensor::open_default() {
                        Ok(s) => Some(Box::new(s)),
                        Err(e) => {
                            tracing::warn!(error = %e, "no distance sensor: the obstacle stop is OFF");
                            None
                        }
                    };
                announce(format!("board       GoPiGo3 on /dev/spidev0.1 ({why})"));
                run_with(cfg, g, distance, None, shutdown).await
            }
            #[cfg(not(feature = "hardware"))]
            {
                let _ = why;
                Err(AgentError::HardwareNotBuilt)
            }
        }
    }
}

/// A panic anywhere becomes a reported stop (see [`executor::stop_on_panic`]).
fn install_panic_stop<B: SpiBus + Send + 'static>(robot: SharedRobot<B>, inbox: Arc<Inbox>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let done = executor::stop_on_panic(&inbox, &robot, info);
        previous(info);
        eprintln!("gopigo agent: panic; {done}");
    }));
}

async fn run_with<B: SpiBus + Send + 'static>(
    cfg: AgentConfig,
    gopigo: GoPiGo3<B>,
    distance: Option<Box<dyn DistanceSensor + Send>>,
    sim: Option<SimHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let cancel = CancellationToken::new();
    let robot: SharedRobot<B> = Arc::new(Mutex::new(gopigo));
    let inbox = Arc::new(Inbox::new());
    install_panic_stop(robot.clone(), inbox.clone());

    // Simulation-only debug endpoint, with the board's frame log.
    if let (Some(h), Some(port)) = (&sim, cfg.sim.debug_port) {
        let (tx, rx) = std::sync::mpsc::channel();
        h.set_frame_log(Some(tx));
        let frames = crate::debug::collect_frames(rx).map_err(|source| AgentError::Io {
            what: "start the frame log thread".into(),
            source,
        })?;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| AgentError::Io {
                what: format!("bind the sim debug port 127.0.0.1:{port} ([sim] debug_port)"),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AgentError::Io {
            what: "read the sim debug address".into(),
            source,
        })?;
        announce(format!("sim debug   http://{addr}/sim"));
        let app = crate::debug::router(h.clone(), frames);
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
    }

    // Camera, guarded by a per-boot token that the online status carries.
    let camera = crate::camera::start(&cfg, sim.as_ref(), cancel.clone()).await?;
    let (camera_ctl, camera_link) = match camera {
        Some(c) => (Some(c.control), Some((c.url, c.token))),
        None => (None, None),
    };

    // Executor.
    let limits = Limits {
        deadman: Duration::from_millis(cfg.safety.deadman_ms),
        obstacle_mm: cfg.safety.obstacle_mm,
        telemetry_period: Duration::from_secs_f64(1.0 / cfg.telemetry.hz),
        speed_dps: cfg.board.speed_dps,
    };
    let exec = Executor::new(robot.clone(), distance, sim.clone(), camera_ctl, limits)?;
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let moving = Arc::new(AtomicBool::new(false));
    let thread =
        executor::spawn(exec, inbox.clone(), out_tx, moving.clone()).map_err(|source| {
            AgentError::Io {
                what: "start the executor thread".into(),
                source,
            }
        })?;

    let result = session(&cfg, camera_link, inbox, out_rx, moving, shutdown).await;
    // The executor stopped when the session closed the inbox; wait for it.
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    cancel.cancel();
    if let Some(h) = &sim {
        let (l, r) = (
            h.motor(gopigo3::MotorPort::Left),
            h.motor(gopigo3::MotorPort::Right),
        );
        announce(format!(
            "sim final   {}",
            json!({"motor_modes": [l.mode, r.mode], "wheel_dps": [l.speed_dps, r.speed_dps]})
        ));
    }
    result
}

/// The topics of one robot.
struct Topics {
    command: String,
    report: String,
    telemetry: String,
    status: String,
    shadow_get: String,
    shadow_get_accepted: String,
    shadow_get_rejected: String,
    shadow_update: String,
    shadow_delta: String,
}

impl Topics {
    fn new(cfg: &AgentConfig) -> Self {
        let shadow = topics::shadow(&cfg.thing);
        Self {
            command: cfg.command_topic(),
            report: cfg.report_topic(),
            telemetry: topics::telemetry(&cfg.thing),
            status: topics::status(&cfg.thing),
            shadow_get: format!("{shadow}/get"),
            shadow_get_accepted: format!("{shadow}/get/accepted"),
            shadow_get_rejected: format!("{shadow}/get/rejected"),
            shadow_update: format!("{shadow}/update"),
            shadow_delta: format!("{shadow}/update/delta"),
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
) -> (
    mpsc::UnboundedReceiver<Result<Event, String>>,
    tokio::task::JoinHandle<()>,
) {
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

/// A session that lasted this long restarts the reconnect backoff.
const STABLE_SESSION: Duration = Duration::from_secs(10);

async fn session(
    cfg: &AgentConfig,
    camera: Option<(String, gopigo_camera::mjpeg::AccessToken)>,
    inbox: Arc<Inbox>,
    mut out_rx: mpsc::UnboundedReceiver<Output>,
    moving: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    // Closing the inbox (also on an early error return, or if this task
    // unwinds) ends the executor, which stops and floats the motors.
    let closer = CloseOnDrop(inbox.clone());
    let t = Topics::new(cfg);
    let started_ms = unix_ms();
    let offline = Status {
        online: false,
        since: started_ms,
        version: crate::update::version(),
        camera_url: None,
        camera_token: None,
    };
    let mut opts = cfg.mqtt.options()?;
    // Acknowledge incoming QoS 1 messages ourselves, once handled (see
    // `Packet::Publish` below): rumqttc's automatic PUBACK is written before
    // the message is handed over, and that write wakes the broker ahead of
    // the executor on the command's critical path.
    opts.set_manual_acks(true);
    opts.set_last_will(LastWill::new(
        &t.status,
        to_json(&offline),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, ev) = gopigo_client::new_client(opts, 256);
    let mut updater = crate::update::Updater::new(&cfg.thing, client.clone());
    let reporter = LinkReporter::new(
        format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port),
        cfg.mqtt.client_id.clone(),
        cfg.path.clone(),
    );
    let (mut events, poller) = spawn_event_loop(ev, reporter);
    let link_timeout = Duration::from_millis(cfg.safety.link_timeout_ms);
    let mut connected = false;
    let mut last_incoming = Instant::now();
    let mut watchdog_fired = false;
    let mut deltas = shadow::DeltaDedup::default();
    let mut watchdog = tokio::time::interval(Duration::from_millis(50));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let send_input = |input: Input| inbox.push(input).map_err(|e: Refused| e.to_string());
    let reject = |id: String, reason: String| {
        let r = CommandResult {
            id,
            status: CommandStatus::Rejected,
            reason: Some(reason),
        };
        publish(&client, &t.report, QoS::AtLeastOnce, false, to_json(&r));
    };
    // The outcome of a stop waits for room rather than being dropped.
    let report = |id: String, status: CommandStatus, reason: Option<String>| {
        publish_result(&client, &t.report, &CommandResult { id, status, reason });
    };
    // A stop never waits for queue space: the stop slot takes it, cancels
    // the queued motions, and the executor reports it within a tick.
    let stop = |id: Option<String>| match inbox.stop(StopCause::Command(id.clone())) {
        StopAck::Pending => {}
        StopAck::Merged => {
            let id = id.unwrap_or_else(|| "stop".into());
            let why = "merged with the stops already pending; the wheels stop with them";
            report(id.clone(), CommandStatus::Accepted, None);
            report(id, CommandStatus::Done, Some(why.into()));
        }
        StopAck::Closed => report(
            id.unwrap_or_else(|| "stop".into()),
            CommandStatus::Rejected,
            Some("the executor has stopped (the wheels were stopped when it did)".into()),
        ),
    };
    let mut exit = Ok(());
    announce(format!(
        "agent       thing={} broker={}:{} commands={}",
        cfg.thing, cfg.mqtt.host, cfg.mqtt.port, t.command
    ));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(event) = events.recv() => match event {
                Ok(Event::Incoming(packet)) => {
                    last_incoming = Instant::now();
                    watchdog_fired = false;
                    match packet {
                        Packet::ConnAck(_) => {
                            connected = true;
                            tracing::info!(thing = %cfg.thing, "connected to the broker");
                            let subs = [&t.command, &t.shadow_delta, &t.shadow_get_accepted, &t.shadow_get_rejected]
                                .into_iter()
                                .map(|s| SubscribeFilter::new(s.clone(), QoS::AtLeastOnce));
                            if let Err(e) = client.try_subscribe_many(subs) {
                                tracing::error!(error = %e, "cannot subscribe");
                            }
                            let online = Status {
                                online: true,
                                since: unix_ms(),
                                version: crate::update::version(),
                                camera_url: camera.as_ref().map(|(url, _)| url.clone()),
                                camera_token: camera.as_ref().map(|(_, t)| t.expose().to_string()),
                            };
                            publish(&client, &t.status, QoS::AtLeastOnce, true, to_json(&online));
                            publish(&client, &t.shadow_get, QoS::AtLeastOnce, false, Vec::new());
                            updater.on_connect();
                            announce(format!("connected   {}:{}", cfg.mqtt.host, cfg.mqtt.port));
                        }
                        Packet::SubAck(ack) => updater.on_suback(&ack.return_codes),
                        Packet::Publish(p) => {
                            if p.topic == t.command {
                                // Off unless RUST_LOG enables target `latency`.
                                tracing::trace!(target: "latency", "agent command in");
                                match parse_command(&p.payload) {
                                    Ok(cmd) if cmd.is_stop() => stop(cmd.id),
                                    Ok(cmd) => {
                                        let id = cmd.id.clone();
                                        if let Err(reason) = send_input(Input::Command(cmd)) {
                                            reject(id.unwrap_or_else(|| "unqueued".into()), reason);
                                        }
                                    }
                                    Err(e) => {
                                        tracing::info!(error = %e, "command rejected");
                                        reject(id_of_unparsed(&p.payload), e.to_string());
                                    }
                                }
                            } else if p.topic == t.shadow_delta || p.topic == t.shadow_get_accepted {
                                let doc: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
                                if p.topic == t.shadow_get_accepted {
                                    deltas.reset();
                                } else if !deltas.is_new(&doc) {
                                    tracing::debug!("repeated shadow delta ignored");
                                    continue;
                                }
                                let (settings, problems) = shadow::desired_settings(&doc);
                                for problem in problems {
                                    tracing::warn!(%problem, "shadow value ignored");
                                }
                                if let Err(e) = send_input(Input::Settings(settings)) {
                                    tracing::warn!(error = %e, "shadow update not applied");
                                }
                            } else if p.topic == t.shadow_get_rejected {
                                // No shadow yet: report what we have.
                                let _ = send_input(Input::Settings(Default::default()));
                            } else if updater.handles(&p.topic) {
                                updater.on_message(&p.topic, &p.payload);
                            }
                            // After the command is with the executor, as paho acks after on_message.
                            if p.qos != QoS::AtMostOnce {
                                if let Err(e) = client.try_ack(&p) {
                                    tracing::warn!(error = %e, "PUBACK dropped (client queue full)");
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => {
                    updater.on_link_lost();
                    // Stop first; the event loop explains the cause to the user.
                    if cfg.safety.stop_on_link_loss {
                        inbox.stop(StopCause::LinkLost(e.clone()));
                    }
                    if connected {
                        announce(format!("link lost   {e}"));
                    }
                    connected = false;
                }
            },
            out = out_rx.recv() => match out {
                Some(out) => publish_output(&client, &t, out, connected, moving.load(Ordering::Relaxed)),
                None => {
                    // The executor thread ended on its own: it panicked (it
                    // stopped the motors and reported why). Exit so that a
                    // supervisor restarts the agent.
                    tracing::error!("the executor has ended; the agent stops");
                    exit = Err(AgentError::ExecutorEnded);
                    break;
                }
            },
            _ = watchdog.tick() => {
                if connected && !watchdog_fired && moving.load(Ordering::Relaxed)
                    && last_incoming.elapsed() > link_timeout
                {
                    watchdog_fired = true;
                    inbox.stop(StopCause::LinkLost(format!(
                        "nothing from the broker for {} ms",
                        link_timeout.as_millis()
                    )));
                }
            }
        }
    }
    // Shutdown: motors first (closing the inbox ends the executor, which
    // stops and floats them), then the last results, offline status, disconnect.
    drop(closer);
    tracing::info!("stopping the motors");
    while let Some(out) = out_rx.recv().await {
        publish_output(&client, &t, out, connected, false);
    }
    if connected {
        let off = Status {
            since: unix_ms(),
            ..offline
        };
        publish(&client, &t.status, QoS::AtLeastOnce, true, to_json(&off));
        let _ = client.try_disconnect();
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
}
