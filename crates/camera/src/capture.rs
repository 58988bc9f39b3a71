//! The capture loop: runs a [`FrameSource`] at a frame rate on a blocking
//! thread and publishes to a [`FrameBus`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{CameraError, FrameBus, FrameSource};

/// Switches capture on and off at run time (the shadow's `camera` field).
/// While off, the source is not called and viewers keep the last frame.
#[derive(Debug)]
pub struct CameraControl {
    /// True while frames are captured.
    pub enabled: AtomicBool,
}

impl CameraControl {
    /// A control that starts on or off.
    pub fn new(enabled: bool) -> Arc<Self> {
        Arc::new(Self {
            enabled: AtomicBool::new(enabled),
        })
    }

    /// Turns capture on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Whether capture is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
}

/// Sleeps up to `d`, waking early when `shutdown` is cancelled.
fn nap(d: Duration, shutdown: &CancellationToken) {
    let end = Instant::now() + d;
    while !shutdown.is_cancelled() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Runs `source` on a blocking thread, at most `fps` frames a second,
/// publishing each frame on `bus`, until `shutdown` is cancelled or the
/// source reports [`CameraError::EndOfStream`]. Other source errors are
/// logged and retried with a growing pause (up to 5 s). Must be called
/// inside a tokio runtime. `fps` must be finite and in 0.1..=240.
pub fn spawn_capture(
    mut source: Box<dyn FrameSource>,
    fps: f64,
    bus: FrameBus,
    control: Arc<CameraControl>,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, CameraError> {
    if !(fps.is_finite() && (0.1..=240.0).contains(&fps)) {
        return Err(CameraError::Config {
            field: "fps",
            reason: format!("{fps} is not a frame rate between 0.1 and 240"),
        });
    }
    let period = Duration::from_secs_f64(1.0 / fps);
    Ok(tokio::task::spawn_blocking(move || {
        let mut next = Instant::now();
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            if !control.is_enabled() {
                nap(Duration::from_millis(50), &shutdown);
                next = Instant::now();
                continue;
            }
            match source.next_frame() {
                Ok(frame) => {
                    failures = 0;
                    bus.publish(frame);
                }
                Err(e @ CameraError::EndOfStream { .. }) => {
                    tracing::info!(error = %e, "camera source finished");
                    break;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, failures, "camera source failed; retrying");
                    nap(
                        Duration::from_millis(250 * u64::from(failures.min(20))),
                        &shutdown,
                    );
                    next = Instant::now();
                    continue;
                }
            }
            next += period;
            let now = Instant::now();
            if next > now {
                nap(next - now, &shutdown);
            } else {
                // Running late (slow source): don't try to catch up.
                next = now;
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{jpeg, Frame};

    struct Counter {
        n: u64,
        jpeg: Vec<u8>,
        end_after: u64,
    }

    impl FrameSource for Counter {
        fn next_frame(&mut self) -> Result<Frame, CameraError> {
            if self.n >= self.end_after {
                return Err(CameraError::EndOfStream {
                    source_name: "counter".into(),
                    reason: "done".into(),
                });
            }
            self.n += 1;
            Frame::from_jpeg(&self.jpeg, self.n, gopigo_protocol::unix_ms(), "counter")
        }
    }

    fn tiny_jpeg() -> Vec<u8> {
        jpeg::encode_jpeg(&jpeg::RgbImage::filled(8, 8, [10, 20, 30]), 80).unwrap()
    }

    #[tokio::test]
    async fn capture_runs_at_the_rate_pauses_and_stops() {
        let bus = FrameBus::new();
        let control = CameraControl::new(true);
        let stop = CancellationToken::new();
        let src = Box::new(Counter {
            n: 0,
            jpeg: tiny_jpeg(),
            end_after: u64::MAX,
        });
        let h = spawn_capture(src, 50.0, bus.clone(), control.clone(), stop.clone()).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let seq = bus.latest().unwrap().seq;
        // 50 fps for 0.4 s is about 20 frames; allow a slow machine.
        assert!((5..=30).contains(&seq), "seq {seq}");
        control.set_enabled(false);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let paused = bus.latest().unwrap().seq;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(bus.latest().unwrap().seq, paused, "no frames while off");
        control.set_enabled(true);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(bus.latest().unwrap().seq > paused);
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn capture_ends_with_the_source() {
        let bus = FrameBus::new();
        let src = Box::new(Counter {
            n: 0,
            jpeg: tiny_jpeg(),
            end_after: 3,
        });
        let h = spawn_capture(
            src,
            200.0,
            bus.clone(),
            CameraControl::new(true),
            CancellationToken::new(),
        )
        .unwrap();
        tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bus.latest().unwrap().seq, 3);
    }

    #[test]
    fn bad_fps_is_rejected() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _g = rt.enter();
        for fps in [0.0, -1.0, f64::NAN, 1000.0] {
            let src = Box::new(Counter {
                n: 0,
                jpeg: vec![],
                end_after: 0,
            });
            let r = spawn_capture(
                src,
                fps,
                FrameBus::new(),
                CameraControl::new(true),
                CancellationToken::new(),
            );
            assert!(
                matches!(r, Err(CameraError::Config { field: "fps", .. })),
                "{fps}"
            );
        }
    }
}
