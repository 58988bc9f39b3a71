//! The robots' MQTT video (`gopigo/{thing}/video`) relayed to the page: the
//! route `/robots/{thing}/video/mqtt` streams the same multipart format as
//! the direct camera proxy. While at least one page watches a robot, the
//! dashboard renews that robot's `video/request` every [`RENEW_EVERY`]
//! (TTL [`REQUEST_TTL_MS`]); when the last one leaves, it stops asking and
//! the robot stops publishing within the TTL and the dashboard unsubscribes
//! from its video topic. So the controller's one connection carries video
//! only for the robots on screen, at most
//! [`crate::onscreen::MAX_VIDEO_ROBOTS`] of them (each is a subscription).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gopigo_camera::Frame;
use gopigo_protocol::video::{decode_frame, VideoRequest};
use gopigo_protocol::{RobotTopic, Topic};
use tokio::sync::watch;

use crate::hub::Outgoing;

/// How often a watched robot's request is renewed.
pub const RENEW_EVERY: Duration = gopigo_protocol::video::VIEWER_RENEW_EVERY;
/// The TTL each request asks for: three renewals may be lost.
pub const REQUEST_TTL_MS: u64 = gopigo_protocol::video::VIEWER_TTL_MS;

type Latest = watch::Sender<Option<Arc<Frame>>>;

/// The newest MQTT frame of every robot someone watches.
#[derive(Debug, Default)]
pub struct Relay {
    streams: Mutex<HashMap<String, (Latest, usize)>>,
}

/// One page watching one robot; leaving is dropping it.
pub struct Viewer {
    relay: Arc<Relay>,
    link: tokio::sync::mpsc::Sender<Outgoing>,
    thing: String,
    /// The robot's frames as they arrive.
    pub frames: watch::Receiver<Option<Arc<Frame>>>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut s = self.relay.lock();
        if let Some((_, n)) = s.get_mut(&self.thing) {
            *n -= 1;
            if *n == 0 {
                s.remove(&self.thing);
                let _ = self.link.try_send(Outgoing::Unsubscribe {
                    filter: Topic::robot(&self.thing, RobotTopic::Video).to_string(),
                });
            }
        }
    }
}

impl Relay {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Latest, usize)>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a video message; `false` when `topic` is not a video topic.
    /// A malformed frame is dropped (and logged).
    pub fn ingest(&self, topic: &str, payload: &[u8]) -> bool {
        let Ok(Topic::Robot {
            thing,
            kind: RobotTopic::Video,
        }) = Topic::parse(topic)
        else {
            return false;
        };
        let f = match decode_frame(payload) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(thing, error = %e, "video message dropped");
                return true;
            }
        };
        if let Some((tx, _)) = self.lock().get(thing) {
            tx.send_replace(Some(Arc::new(Frame::from(f))));
        }
        true
    }

    /// Whether anyone watches `thing`.
    pub fn watched(&self, thing: &str) -> bool {
        self.lock().contains_key(thing)
    }

    /// Starts watching `thing`: the first viewer subscribes to its video
    /// topic and starts renewing its request through `link`. Refused when
    /// [`crate::onscreen::MAX_VIDEO_ROBOTS`] other robots are watched.
    pub fn watch(
        self: &Arc<Self>,
        thing: &str,
        link: &tokio::sync::mpsc::Sender<Outgoing>,
    ) -> Result<Viewer, String> {
        let (rx, first) = {
            let mut s = self.lock();
            let max = crate::onscreen::MAX_VIDEO_ROBOTS;
            if !s.contains_key(thing) && s.len() >= max {
                return Err(format!(
                    "{max} robots' video is relayed already (the dashboard's MQTT \
                     connection has room for no more); close another robot's video"
                ));
            }
            let (tx, n) = s
                .entry(thing.to_string())
                .or_insert_with(|| (watch::channel(None).0, 0));
            *n += 1;
            (tx.subscribe(), *n == 1)
        };
        if first {
            let _ = link.try_send(Outgoing::Subscribe {
                filter: Topic::robot(thing, RobotTopic::Video).to_string(),
            });
            tokio::spawn(renew(self.clone(), thing.to_string(), link.clone()));
        }
        Ok(Viewer {
            relay: self.clone(),
            link: link.clone(),
            thing: thing.to_string(),
            frames: rx,
        })
    }
}

/// Asks for `thing`'s video every [`RENEW_EVERY`] while someone watches.
async fn renew(relay: Arc<Relay>, thing: String, link: tokio::sync::mpsc::Sender<Outgoing>) {
    let topic = Topic::robot(&thing, RobotTopic::VideoRequest).to_string();
    let payload = VideoRequest::viewer().payload();
    while relay.watched(&thing) {
        let _ = link.try_send(Outgoing::Publish {
            topic: topic.clone(),
            payload: payload.clone(),
        });
        tokio::time::sleep(RENEW_EVERY).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use gopigo_protocol::video::{encode_frame, VideoFrame};

    fn msg(seq: u64) -> Vec<u8> {
        encode_frame(&VideoFrame {
            seq,
            captured_at_ms: 42,
            width: 4,
            height: 2,
            jpeg: &[0xFF, 0xD8, 0xFF, 0xD9],
        })
        .unwrap()
    }

    #[tokio::test]
    async fn at_most_max_video_robots_are_relayed_at_once() {
        let relay = Arc::new(Relay::default());
        let (tx, _rx) = tokio::sync::mpsc::channel(256);
        let max = crate::onscreen::MAX_VIDEO_ROBOTS;
        let viewers: Vec<Viewer> = (0..max)
            .map(|i| relay.watch(&format!("r{i}"), &tx).unwrap())
            .collect();
        let e = relay.watch("one-more", &tx).err().unwrap();
        assert!(e.contains("close another robot's video"), "{e}");
        // a robot already relayed takes another viewer; one leaving frees a slot
        let again = relay.watch("r0", &tx).unwrap();
        drop(viewers);
        assert!(relay.watched("r0"));
        assert!(relay.watch("one-more", &tx).is_ok());
        drop(again);
    }

    #[tokio::test]
    async fn frames_reach_viewers_and_the_request_stops_with_the_last_one() {
        let relay = Arc::new(Relay::default());
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let v = relay.watch("r1", &tx).unwrap();
        assert!(
            matches!(rx.recv().await, Some(Outgoing::Subscribe { filter }) if filter == "gopigo/r1/video")
        );
        assert!(
            matches!(rx.recv().await, Some(Outgoing::Publish { topic, .. }) if topic == "gopigo/r1/video/request")
        );
        assert!(relay.ingest("gopigo/r1/video", &msg(7)));
        assert!(relay.ingest("gopigo/r1/video", b"garbage"));
        assert!(!relay.ingest("gopigo/r1/telemetry", b"{}"));
        let f = v.frames.borrow().clone().unwrap();
        assert_eq!((f.seq, f.captured_at_ms, f.width), (7, 42, 4));
        drop(v);
        assert!(!relay.watched("r1"));
        assert!(
            matches!(rx.recv().await, Some(Outgoing::Unsubscribe { filter }) if filter == "gopigo/r1/video")
        );
        // no viewer: frames for r1 go nowhere, nothing is kept
        assert!(relay.ingest("gopigo/r1/video", &msg(8)));
        assert!(!relay.watched("r1"));
    }
}
