//! Camera video over MQTT (`gopigo/{thing}/video`): published only while a
//! viewer's request (`video/request`) is fresh, within a budget of bytes
//! and frames per second (`[video]` in `robot.toml`), newest frame only.
//!
//! Parts: [`VideoConfig`] (the budget), [`Budget`] (a one-second sliding
//! window: the bytes and frames sent in any second never exceed it),
//! [`Fitter`] (adapts JPEG quality and resolution so a frame fits its share
//! of the budget, and never builds one over AWS's 128 KiB message limit),
//! and [`Publisher`] (the task; the session hands it each request).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopigo_camera::{Frame, FrameBus};
use gopigo_protocol::video::{encode_frame, VideoFrame, VideoRequest, MAX_JPEG_BYTES};
use rumqttc::{AsyncClient, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// AWS IoT Core's per-connection publish limit, bytes per second (512 KiB/s).
pub const AWS_CONNECTION_BYTES_PER_S: u64 = 512 * 1024;
/// AWS IoT Core's per-connection publish limit, messages per second.
pub const AWS_CONNECTION_PUBLISHES_PER_S: u32 = 100;

/// `[video]`: the budget of the MQTT video stream. The default leaves half
/// of AWS's per-connection limits (512 KiB/s, 100 publishes/s) to
/// telemetry, results and the shadow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoConfig {
    /// Most bytes of video messages in any one second (default 256 KiB).
    pub max_bytes_per_s: u64,
    /// Most frames in any one second (default 15).
    pub max_fps: u32,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            max_bytes_per_s: AWS_CONNECTION_BYTES_PER_S / 2,
            max_fps: 15,
        }
    }
}

impl VideoConfig {
    /// Allowed `max_bytes_per_s`: one small frame a second up to half the
    /// connection.
    pub const BYTES_RANGE: std::ops::RangeInclusive<u64> =
        8 * 1024..=AWS_CONNECTION_BYTES_PER_S / 2;
    /// Allowed `max_fps`: at most half the connection's publishes.
    pub const FPS_RANGE: std::ops::RangeInclusive<u32> = 1..=AWS_CONNECTION_PUBLISHES_PER_S / 2;
}

/// The frames and bytes sent in the last second.
#[derive(Debug)]
pub struct Budget {
    max_bytes: u64,
    max_fps: u32,
    sent: VecDeque<(Instant, u64)>,
    bytes_in_window: u64,
}

const WINDOW: Duration = Duration::from_secs(1);

impl Budget {
    /// A budget of `cfg`'s bytes and frames per second.
    pub fn new(cfg: &VideoConfig) -> Self {
        Self {
            max_bytes: cfg.max_bytes_per_s,
            max_fps: cfg.max_fps.max(1),
            sent: VecDeque::new(),
            bytes_in_window: 0,
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&(t, b)) = self.sent.front() {
            if now.duration_since(t) < WINDOW {
                break;
            }
            self.sent.pop_front();
            self.bytes_in_window -= b;
        }
    }

    /// Whether a frame may start now: under the frame cap, at least
    /// 3/4 of 1/`max_fps` after the last one.
    pub fn frame_due(&mut self, now: Instant) -> bool {
        self.prune(now);
        // Three quarters of the even spacing: a camera at exactly `max_fps`
        // jitters, and an even spacing would skip every other late frame;
        // the count in the window still caps the rate.
        let spacing = WINDOW * 3 / (4 * self.max_fps);
        let spaced = self
            .sent
            .back()
            .is_none_or(|&(t, _)| now.duration_since(t) >= spacing);
        spaced && (self.sent.len() as u32) < self.max_fps
    }

    /// Sends `bytes` if they fit the window now (and records them).
    pub fn try_spend(&mut self, now: Instant, bytes: u64) -> bool {
        if !self.frame_due(now) || self.bytes_in_window + bytes > self.max_bytes {
            return false;
        }
        self.sent.push_back((now, bytes));
        self.bytes_in_window += bytes;
        true
    }

    /// The share of the budget one frame should take.
    pub fn frame_target(&self) -> usize {
        ((self.max_bytes / u64::from(self.max_fps)) as usize).min(MAX_JPEG_BYTES)
    }
}

/// Lowest and highest JPEG quality the fitter uses.
const MIN_QUALITY: u8 = 20;
const MAX_QUALITY: u8 = 85;
/// Largest downscale (1/8 of each side).
const MAX_SHRINK: u32 = 8;

/// Adapts quality and resolution so frames fit `target` bytes.
#[derive(Debug)]
pub struct Fitter {
    quality: u8,
    shrink: u32,
}

impl Default for Fitter {
    fn default() -> Self {
        Self {
            quality: 70,
            shrink: 1,
        }
    }
}

/// A frame ready to publish: JPEG and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// The encoded frame, small enough to fit the message byte budget.
    pub jpeg: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Fitter {
    /// The frame as it is when it fits `target`, else re-encoded at the
    /// current quality and scale (which then adapt to the size obtained).
    /// `None` when it cannot be brought under AWS's message limit.
    pub fn fit(&mut self, frame: &Frame, target: usize) -> Option<Fitted> {
        if frame.jpeg.len() <= target && self.shrink == 1 {
            return Some(Fitted {
                jpeg: frame.jpeg.to_vec(),
                width: frame.width,
                height: frame.height,
            });
        }
        let image = gopigo_camera::jpeg::decode_jpeg(&frame.jpeg, "camera frame").ok()?;
        let (w, h) = (
            (image.width / self.shrink).max(1),
            (image.height / self.shrink).max(1),
        );
        let small = if self.shrink > 1 {
            image.resized(w, h)
        } else {
            image
        };
        let jpeg = gopigo_camera::jpeg::encode_jpeg(&small, self.quality).ok()?;
        self.adapt(jpeg.len(), target, frame.jpeg.len());
        (jpeg.len() <= MAX_JPEG_BYTES).then_some(Fitted {
            jpeg,
            width: w,
            height: h,
        })
    }

    /// Steps quality (then resolution) down when `got` is over `target`,
    /// up when well under.
    fn adapt(&mut self, got: usize, target: usize, original: usize) {
        if got > target {
            if self.quality > MIN_QUALITY {
                self.quality = (self.quality - 10).max(MIN_QUALITY);
            } else if self.shrink < MAX_SHRINK {
                self.shrink *= 2;
                self.quality = 60;
            }
        } else if got < target / 2 {
            if self.quality < MAX_QUALITY {
                self.quality = (self.quality + 5).min(MAX_QUALITY);
            } else if self.shrink > 1 && original <= target * self.shrink as usize {
                self.shrink /= 2;
                self.quality = 50;
            }
        }
    }

    /// Current JPEG quality and downscale factor.
    pub fn state(&self) -> (u8, u32) {
        (self.quality, self.shrink)
    }
}

/// The session's handle on the publisher: each request renews the deadline.
#[derive(Clone)]
pub struct Publisher {
    deadline: Arc<watch::Sender<Option<Instant>>>,
}

impl Publisher {
    /// Starts the publisher task on `bus`, publishing to `topic` through `client`.
    pub fn spawn(cfg: VideoConfig, bus: FrameBus, client: AsyncClient, topic: String) -> Self {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(run(cfg, bus, client, topic, rx));
        Self {
            deadline: Arc::new(tx),
        }
    }

    /// A viewer's request: publish until its TTL runs out.
    pub fn on_request(&self, payload: &[u8]) {
        match VideoRequest::parse(payload) {
            Ok(r) => {
                let until = Instant::now() + r.ttl();
                self.deadline
                    .send_modify(|d| *d = Some(d.map_or(until, |d| d.max(until))));
            }
            Err(e) => tracing::warn!(error = %e, "video request ignored"),
        }
    }

    /// Stops at once (the link dropped: viewers will ask again).
    pub fn stop(&self) {
        self.deadline.send_replace(None);
    }
}

fn watched(deadline: &watch::Receiver<Option<Instant>>) -> Option<Instant> {
    (*deadline.borrow()).filter(|d| *d > Instant::now())
}

async fn run(
    cfg: VideoConfig,
    bus: FrameBus,
    client: AsyncClient,
    topic: String,
    mut deadline: watch::Receiver<Option<Instant>>,
) {
    let mut frames = bus.subscribe();
    let mut budget = Budget::new(&cfg);
    let mut fitter = Fitter::default();
    loop {
        let Some(until) = watched(&deadline) else {
            if deadline.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            r = frames.changed() => if r.is_err() { return },
            _ = tokio::time::sleep_until(until.into()) => continue,
            r = deadline.changed() => { if r.is_err() { return } continue },
        }
        let Some(frame) = frames.borrow_and_update().clone() else {
            continue;
        };
        if budget.frame_due(Instant::now()) {
            send(&client, &topic, &frame, &mut budget, &mut fitter).await;
        }
    }
}

/// Fits the newest frame and publishes it if the budget has room.
async fn send(
    client: &AsyncClient,
    topic: &str,
    frame: &Arc<Frame>,
    budget: &mut Budget,
    fitter: &mut Fitter,
) {
    let target = budget.frame_target();
    let mut f = std::mem::take(fitter);
    let frame2 = frame.clone();
    let Ok((fitted, f)) = tokio::task::spawn_blocking(move || (f.fit(&frame2, target), f)).await
    else {
        return;
    };
    *fitter = f;
    let Some(fitted) = fitted else {
        tracing::debug!("video frame skipped: over 128 KiB even at the lowest quality");
        return;
    };
    let msg = encode_frame(&VideoFrame {
        seq: frame.seq,
        captured_at_ms: frame.captured_at_ms,
        width: fitted.width.min(u32::from(u16::MAX)) as u16,
        height: fitted.height.min(u32::from(u16::MAX)) as u16,
        jpeg: &fitted.jpeg,
    });
    let Ok(msg) = msg else { return };
    if !budget.try_spend(Instant::now(), msg.len() as u64) {
        return;
    }
    if let Err(e) = client.try_publish(topic, QoS::AtMostOnce, false, msg) {
        tracing::debug!(error = %e, "video frame dropped (client queue full)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gopigo_camera::jpeg::{encode_jpeg, RgbImage};

    fn cfg(bytes: u64, fps: u32) -> VideoConfig {
        VideoConfig {
            max_bytes_per_s: bytes,
            max_fps: fps,
        }
    }

    /// Offers frames of `size` every `every` for `total`; returns the send times.
    fn offer(b: &mut Budget, size: u64, every: Duration, total: Duration) -> Vec<(Instant, u64)> {
        let t0 = Instant::now();
        let mut sent = Vec::new();
        let mut t = t0;
        while t < t0 + total {
            if b.try_spend(t, size) {
                sent.push((t, size));
            }
            t += every;
        }
        sent
    }

    fn worst_second(sent: &[(Instant, u64)]) -> (u64, usize) {
        let mut worst = (0, 0);
        for (i, &(t, _)) in sent.iter().enumerate() {
            let in_win: Vec<_> = sent[i..]
                .iter()
                .take_while(|(u, _)| u.duration_since(t) < WINDOW)
                .collect();
            let bytes = in_win.iter().map(|(_, b)| b).sum();
            worst = (worst.0.max(bytes), worst.1.max(in_win.len()));
        }
        worst
    }

    #[test]
    fn bytes_per_second_never_exceed_the_budget() {
        let mut b = Budget::new(&cfg(100_000, 50));
        let sent = offer(
            &mut b,
            30_000,
            Duration::from_millis(7),
            Duration::from_secs(5),
        );
        let (bytes, _) = worst_second(&sent);
        assert!(bytes <= 100_000, "{bytes} bytes in one second");
        // it does send: 3 frames a second fit
        assert!(sent.len() >= 14, "only {} frames in 5 s", sent.len());
    }

    #[test]
    fn frames_per_second_never_exceed_the_cap() {
        let mut b = Budget::new(&cfg(10_000_000, 10));
        let sent = offer(
            &mut b,
            100,
            Duration::from_millis(3),
            Duration::from_secs(3),
        );
        let (_, frames) = worst_second(&sent);
        assert!(frames <= 10, "{frames} frames in one second");
        assert!(sent.len() >= 25, "only {} frames in 3 s", sent.len());
    }

    #[test]
    fn default_leaves_half_the_connection_free() {
        let c = VideoConfig::default();
        assert!(c.max_bytes_per_s <= AWS_CONNECTION_BYTES_PER_S / 2);
        assert!(c.max_fps <= AWS_CONNECTION_PUBLISHES_PER_S / 2);
        assert!(VideoConfig::BYTES_RANGE.contains(&c.max_bytes_per_s));
        assert!(VideoConfig::FPS_RANGE.contains(&c.max_fps));
    }

    /// A noisy picture that compresses badly.
    fn noisy_frame(w: u32, h: u32) -> Frame {
        let mut x: u32 = 12345;
        let img = RgbImage::from_fn(w, h, |_, _| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let v = (x >> 16) as u8;
            [v, v.wrapping_mul(3), v.wrapping_mul(7)]
        });
        let jpeg = encode_jpeg(&img, 100).unwrap();
        Frame::from_jpeg(&jpeg, 1, 1_700_000_000_000, "test").unwrap()
    }

    #[test]
    fn an_oversize_frame_is_never_sent_as_is_and_shrinks_to_fit() {
        let frame = noisy_frame(640, 480);
        assert!(frame.jpeg.len() > MAX_JPEG_BYTES, "test frame too small");
        let mut fitter = Fitter::default();
        let target = Budget::new(&VideoConfig::default()).frame_target();
        let mut last = None;
        for _ in 0..20 {
            if let Some(f) = fitter.fit(&frame, target) {
                assert!(f.jpeg.len() <= MAX_JPEG_BYTES, "{} bytes", f.jpeg.len());
                last = Some(f);
            }
        }
        let last = last.expect("some frame fits at last");
        assert!(last.jpeg.len() <= target, "{} > {target}", last.jpeg.len());
        assert!(last.jpeg.starts_with(&[0xFF, 0xD8]));
    }

    #[test]
    fn a_small_frame_goes_unchanged() {
        let img = RgbImage::filled(320, 240, [10, 20, 30]);
        let jpeg = encode_jpeg(&img, 70).unwrap();
        let frame = Frame::from_jpeg(&jpeg, 3, 5, "test").unwrap();
        let got = Fitter::default().fit(&frame, 100_000).unwrap();
        assert_eq!(got.jpeg, frame.jpeg.to_vec());
        assert_eq!((got.width, got.height), (320, 240));
    }
}
