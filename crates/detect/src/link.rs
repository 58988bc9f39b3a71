//! The detector's one MQTT connection (a controller identity).
//!
//! It publishes detections, and routes what it reads:
//! - `gopigo/{thing}/status` (retained): each robot's camera token, for
//!   streams read over HTTP, and — with `--all-online` — robots going on-
//!   and offline;
//! - with `--all-online`, `gopigo/+/telemetry`: a robot that sends telemetry
//!   is online. AWS IoT Core (and the local core) send retained messages only
//!   to a subscription on the topic itself, never to a wildcard one, so the
//!   retained statuses alone would not show the robots that were online
//!   before the detector started;
//! - `gopigo/{thing}/video`: GPV1 frames ([`gopigo_protocol::video`]) of the
//!   robots it watches over MQTT, into the detector's [`Inbox`].
//!
//! While it watches a robot over MQTT it sends the same renewable request as
//! the dashboard ([`VideoRequest::viewer`] every [`VIEWER_RENEW_EVERY`]);
//! when it stops (exit, or the robot went offline) the robot stops
//! publishing within the request's TTL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gopigo_camera::Frame;
use gopigo_protocol::topic::Filter;
use gopigo_protocol::video::{decode_frame, VideoRequest, VIEWER_RENEW_EVERY};
use gopigo_protocol::{RobotTopic, Status, Topic};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::watch;

use crate::schedule::Inbox;
use crate::{load_mqtt_settings, token_of_status, DetectError};

/// What the link reads.
#[derive(Debug, Clone, Default)]
pub struct Wants {
    /// Robots whose status gives a camera token (streams read over HTTP).
    pub tokens: BTreeSet<String>,
    /// Robots whose MQTT video the detector reads.
    pub video: BTreeSet<String>,
    /// Also every robot that is online (`--all-online`), over MQTT.
    pub all_online: bool,
}

/// The running link: a client to publish with, tokens and the online set.
pub struct Link {
    /// Publishes detections.
    pub client: AsyncClient,
    /// The newest camera token of each robot in [`Wants::tokens`].
    pub tokens: BTreeMap<String, watch::Receiver<Option<String>>>,
    /// The robots online now, by their telemetry and status (with `all_online`).
    pub online: watch::Receiver<BTreeSet<String>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Link {
    /// Stops renewing, disconnects, and ends the routing task. Robots stop
    /// publishing video for the detector within their request's TTL.
    pub async fn close(self) {
        let _ = self.client.disconnect().await;
        // let the event loop send the DISCONNECT before it is stopped
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Routing state of the event loop.
struct Router {
    tokens: BTreeMap<String, watch::Sender<Option<String>>>,
    video: BTreeSet<String>,
    online: watch::Sender<BTreeSet<String>>,
    all_online: bool,
    inbox: Arc<Inbox<Arc<Frame>>>,
    /// When each robot's last frame arrived (for the silence warning).
    seen: Seen,
}

/// When each robot's last MQTT frame arrived.
type Seen = Arc<Mutex<BTreeMap<String, Instant>>>;

/// How long a robot the detector asks for video may send none before the
/// detector says so (once, until frames come).
pub const NO_VIDEO_WARN: Duration = Duration::from_secs(15);

/// Whether a robot asked for video since `asked` is silent at `now`: no
/// frame in [`NO_VIDEO_WARN`] since the later of `asked` and its last frame.
pub fn silent(now: Instant, asked: Instant, last_frame: Option<Instant>) -> bool {
    let since = last_frame.map_or(asked, |f| f.max(asked));
    now.duration_since(since) >= NO_VIDEO_WARN
}

/// Connects with the `[mqtt]` table of `path` and starts routing; frames of
/// watched robots go to `inbox` under the robot's name.
pub fn start(
    path: &Path,
    wants: &Wants,
    inbox: Arc<Inbox<Arc<Frame>>>,
) -> Result<Link, DetectError> {
    let settings = load_mqtt_settings(path)?;
    let (client, events) = gopigo_client::new_client(settings.options()?, 64);
    let mut senders = BTreeMap::new();
    let mut tokens = BTreeMap::new();
    for thing in &wants.tokens {
        let (tx, rx) = watch::channel(None);
        senders.insert(thing.clone(), tx);
        tokens.insert(thing.clone(), rx);
    }
    let (online_tx, online) = watch::channel(BTreeSet::new());
    let seen = Seen::default();
    let router = Router {
        tokens: senders,
        video: wants.video.clone(),
        online: online_tx,
        all_online: wants.all_online,
        inbox,
        seen: seen.clone(),
    };
    let mut tasks = vec![tokio::spawn(route(events, client.clone(), router))];
    if wants.all_online || !wants.video.is_empty() {
        let (c, v, o) = (client.clone(), wants.video.clone(), online.clone());
        tasks.push(tokio::spawn(renew(c, v, o, seen)));
    }
    Ok(Link {
        client,
        tokens,
        online,
        tasks,
    })
}

impl Router {
    /// The filters to (re)subscribe after each connect.
    fn filters(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.all_online {
            out.push(Filter::EveryRobot(RobotTopic::Status).to_string());
            out.push(Filter::EveryRobot(RobotTopic::Telemetry).to_string());
            out.push(Filter::EveryRobot(RobotTopic::Video).to_string());
        }
        for thing in self.tokens.keys() {
            out.push(Topic::robot(thing, RobotTopic::Status).to_string());
        }
        for thing in &self.video {
            out.push(Topic::robot(thing, RobotTopic::Video).to_string());
        }
        out.sort();
        out.dedup();
        out
    }

    /// One incoming message.
    fn on_publish(&self, topic: &str, payload: &[u8]) {
        let Ok(Topic::Robot { thing, kind }) = Topic::parse(topic) else {
            return;
        };
        match kind {
            RobotTopic::Status => self.on_status(thing, payload),
            RobotTopic::Telemetry if self.all_online => {
                self.online
                    .send_if_modified(|set| set.insert(thing.to_string()));
            }
            RobotTopic::Video if self.watches(thing) => match decode_frame(payload) {
                Ok(f) => {
                    let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                    seen.insert(thing.to_string(), Instant::now());
                    self.inbox.put(thing, Arc::new(Frame::from(f)));
                }
                Err(e) => tracing::debug!(thing, error = %e, "video message dropped"),
            },
            _ => {}
        }
    }

    fn on_status(&self, thing: &str, payload: &[u8]) {
        if let Some(tx) = self.tokens.get(thing) {
            tx.send_replace(token_of_status(payload));
        }
        if self.all_online {
            let online = serde_json::from_slice::<Status>(payload).is_ok_and(|s| s.online);
            self.online.send_if_modified(|set| match online {
                true => set.insert(thing.to_string()),
                false => set.remove(thing),
            });
            if !online {
                self.inbox.remove(thing);
            }
        }
    }

    /// Whether frames of `thing` are for the detector.
    fn watches(&self, thing: &str) -> bool {
        self.video.contains(thing) || (self.all_online && self.online.borrow().contains(thing))
    }
}

/// Runs the event loop: subscribes after each connect, routes messages,
/// retries a lost connection every second.
async fn route(mut events: rumqttc::EventLoop, client: AsyncClient, router: Router) {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                for f in router.filters() {
                    if let Err(e) = client.try_subscribe(f.clone(), QoS::AtMostOnce) {
                        tracing::warn!(filter = f, error = %e, "cannot subscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => router.on_publish(&p.topic, &p.payload),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "MQTT connection lost; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Asks for the video of `things` and of every robot online now, every
/// [`VIEWER_RENEW_EVERY`], for as long as the detector runs; says so when a
/// robot it asks sends nothing.
async fn renew(
    client: AsyncClient,
    things: BTreeSet<String>,
    online: watch::Receiver<BTreeSet<String>>,
    seen: Seen,
) {
    let payload = VideoRequest::viewer().payload();
    let mut asked: BTreeSet<String> = BTreeSet::new();
    let mut since: BTreeMap<String, Instant> = BTreeMap::new();
    let mut warned: BTreeSet<String> = BTreeSet::new();
    let mut tick = tokio::time::interval(VIEWER_RENEW_EVERY);
    let mut online = online;
    loop {
        tokio::select! {
            _ = tick.tick() => asked.clear(),
            r = online.changed() => if r.is_err() { return },
        }
        // a robot that just came online is asked at once, the others on the tick
        let now: BTreeSet<String> = things.union(&online.borrow_and_update()).cloned().collect();
        for thing in now.difference(&asked) {
            let topic = Topic::robot(thing, RobotTopic::VideoRequest).to_string();
            if let Err(e) = client.try_publish(topic, QoS::AtMostOnce, false, payload.clone()) {
                tracing::debug!(thing, error = %e, "video request not sent");
            }
        }
        since.retain(|t, _| now.contains(t));
        let t = Instant::now();
        for thing in &now {
            let asked_at = *since.entry(thing.clone()).or_insert(t);
            let last = seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(thing)
                .copied();
            if !silent(t, asked_at, last) {
                warned.remove(thing);
            } else if warned.insert(thing.clone()) {
                tracing::warn!(thing, "no video from {thing} for {}s: is it online, is its agent new enough to publish MQTT video, and is this identity a controller?", NO_VIDEO_WARN.as_secs());
            }
        }
        asked = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(wants: &Wants) -> (Router, Arc<Inbox<Arc<Frame>>>) {
        let inbox = Inbox::new();
        let tokens = wants
            .tokens
            .iter()
            .map(|t| (t.clone(), watch::channel(None).0))
            .collect();
        let r = Router {
            tokens,
            video: wants.video.clone(),
            online: watch::channel(BTreeSet::new()).0,
            all_online: wants.all_online,
            inbox: inbox.clone(),
            seen: Seen::default(),
        };
        (r, inbox)
    }

    fn frame(seq: u64) -> Vec<u8> {
        gopigo_protocol::video::encode_frame(&gopigo_protocol::video::VideoFrame {
            seq,
            captured_at_ms: 5,
            width: 4,
            height: 2,
            jpeg: &[0xFF, 0xD8, 0xFF, 0xD9],
        })
        .unwrap()
    }

    const ONLINE: &[u8] = br#"{"online":true,"since":1,"version":"v","camera_token":"t1"}"#;
    const OFFLINE: &[u8] = br#"{"online":false,"since":2,"version":"v"}"#;

    #[test]
    fn a_robot_is_silent_after_15_s_without_a_frame() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        assert!(!silent(s(14), t0, None));
        assert!(silent(s(15), t0, None));
        assert!(!silent(s(20), t0, Some(s(10))));
        assert!(silent(s(26), t0, Some(s(10))));
        // a frame from before the detector asked does not count
        assert!(silent(s(15), t0, Some(t0 - Duration::from_secs(5))));
    }

    #[test]
    fn subscriptions_follow_what_is_wanted() {
        let wants = Wants {
            tokens: ["r1".to_string()].into(),
            video: ["r2".to_string()].into(),
            all_online: false,
        };
        let (r, _) = router(&wants);
        assert_eq!(r.filters(), ["gopigo/r1/status", "gopigo/r2/video"]);
        let (r, _) = router(&Wants {
            all_online: true,
            ..Wants::default()
        });
        assert_eq!(
            r.filters(),
            ["gopigo/+/status", "gopigo/+/telemetry", "gopigo/+/video"]
        );
    }

    #[tokio::test]
    async fn frames_of_watched_robots_reach_the_inbox_and_others_do_not() {
        let (r, inbox) = router(&Wants {
            video: ["r2".to_string()].into(),
            ..Wants::default()
        });
        r.on_publish("gopigo/r1/video", &frame(1));
        r.on_publish("gopigo/r2/video", b"not a frame");
        r.on_publish("gopigo/r2/video", &frame(9));
        let (thing, f) = inbox.next().await;
        assert_eq!((thing.as_str(), f.seq, f.captured_at_ms), ("r2", 9, 5));
        assert_eq!(inbox.replaced(), 0, "r1's frame was never put");
    }

    #[tokio::test]
    async fn all_online_follows_the_status_and_takes_their_tokens_too() {
        let (r, inbox) = router(&Wants {
            tokens: ["r1".to_string()].into(),
            all_online: true,
            ..Wants::default()
        });
        let mut online = r.online.subscribe();
        r.on_publish("gopigo/r1/status", ONLINE);
        // online before the detector started: known by its telemetry
        r.on_publish("gopigo/r3/telemetry", b"{}");
        assert_eq!(
            *online.borrow_and_update(),
            ["r1".to_string(), "r3".to_string()].into()
        );
        assert_eq!(r.tokens["r1"].borrow().as_deref(), Some("t1"));
        r.on_publish("gopigo/r3/video", &frame(3));
        r.on_publish("gopigo/r3/status", OFFLINE);
        r.on_publish("gopigo/r3/video", &frame(4));
        assert_eq!(*online.borrow(), ["r1".to_string()].into());
        // the offline robot's waiting frame is gone and its later one ignored
        r.on_publish("gopigo/r1/video", &frame(5));
        assert_eq!(inbox.next().await.0, "r1");
    }
}
