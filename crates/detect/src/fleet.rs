//! One detector for several robots.
//!
//! Each stream is a robot's camera, read either as MJPEG over HTTP (the
//! robot's `http://host:8081/stream`) or as MQTT video through the broker
//! (`gopigo/{thing}/video`, for a robot the detector cannot reach directly).
//! Receiving tasks leave each stream's newest frame in the [`Inbox`];
//! workers take them round-robin (see [`crate::schedule`]), so every stream
//! gets its turn and none piles up a backlog.
//!
//! A worker is a detector (its own ONNX Runtime session, `--threads / K`
//! intra-op threads) on a blocking thread, one frame at a time. With K
//! workers K frames of different streams are under way at once: decode,
//! letterbox and inference of one overlap another's, which on a small CPU
//! gets more from the cores than one session's intra-op threads do. A
//! stream is on one worker at a time, so its results stay in capture order.
//! The workers cannot share one session: `ort`'s `Session::run` takes
//! `&mut self` (ONNX Runtime's run is not safe to call concurrently for
//! every execution provider, the crate's docs say), so each has its own.
//!
//! [`plan_streams`] turns the command line's `--url`/`--thing` lists into
//! streams and [`plan_workers`] `--workers`/`--threads` into workers (both
//! pure); [`run_fleet`] runs them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use gopigo_camera::{Frame, FrameBus};
use gopigo_protocol::topics;
use gopigo_vision::Detector;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::link::{self, Link, Wants};
use crate::schedule::Inbox;
use crate::{
    connect_first, detect_frame, emit, publish, serve_annotated, sleep_until_some, DetectError,
    Detected, LiveStream, Rate, Throttle, Token, FIRST_BACKOFF,
};

/// Where a stream's frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The robot's MJPEG stream at this URL.
    Mjpeg(String),
    /// The robot's MQTT video (`gopigo/{thing}/video`), asked for with a
    /// renewable request.
    Mqtt,
}

/// One robot's camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// The robot; names its detections topic. Required for [`Source::Mqtt`].
    pub thing: Option<String>,
    /// Where its frames come from.
    pub source: Source,
}

impl StreamSpec {
    /// The stream's name in logs and the inbox: the thing, else the URL.
    pub fn key(&self) -> &str {
        match (&self.thing, &self.source) {
            (Some(t), _) => t,
            (None, Source::Mjpeg(url)) => url,
            (None, Source::Mqtt) => "",
        }
    }
}

/// The streams of `--url` and `--thing` (pure): URLs paired with things in
/// the order given, URLs alone (no publishing), or things alone (their MQTT
/// video). The error says which flags to change.
pub fn plan_streams(urls: &[String], things: &[String]) -> Result<Vec<StreamSpec>, String> {
    let mut seen = BTreeSet::new();
    if let Some(dup) = things.iter().chain(urls).find(|k| !seen.insert(k.as_str())) {
        return Err(format!("{dup} is given twice; name each robot once"));
    }
    let specs: Vec<StreamSpec> = match (urls.len(), things.len()) {
        (0, _) => things
            .iter()
            .map(|t| StreamSpec {
                thing: Some(t.clone()),
                source: Source::Mqtt,
            })
            .collect(),
        (_, 0) => urls
            .iter()
            .map(|u| StreamSpec {
                thing: None,
                source: Source::Mjpeg(u.clone()),
            })
            .collect(),
        (u, t) if u == t => urls
            .iter()
            .zip(things)
            .map(|(u, t)| StreamSpec {
                thing: Some(t.clone()),
                source: Source::Mjpeg(u.clone()),
            })
            .collect(),
        (u, t) => {
            return Err(format!(
            "{u} stream URL(s) and {t} --thing(s): give one --thing per URL, in the same order, \
                 or only --thing to read each robot's MQTT video"
        ))
        }
    };
    Ok(specs)
}

/// The most detector workers `--workers` may ask for.
pub const MAX_WORKERS: usize = 16;

/// How many detector workers run, and the intra-op threads of each one's
/// ONNX Runtime session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPlan {
    /// Workers, each with its own session, each on one stream at a time.
    pub workers: usize,
    /// Each session's intra-op threads: the `--threads` budget shared out,
    /// at least 1.
    pub threads_each: usize,
}

/// The workers for `requested` (`--workers N`; `None` = auto), `threads`
/// (`--threads`, the budget for all sessions together) and `streams`
/// robots (`None` with `--all-online`: not known up front), pure.
///
/// Auto is one worker per stream up to `threads`, so one stream keeps one
/// session with every thread. More workers than streams would never get a
/// frame (a stream is on one worker at a time), so they are not started.
pub fn plan_workers(
    requested: Option<usize>,
    threads: usize,
    streams: Option<usize>,
) -> Result<WorkerPlan, String> {
    let threads = threads.max(1);
    let workers = match requested {
        Some(0) => return Err("--workers 0: give 1 or more, or auto".into()),
        Some(n) if n > MAX_WORKERS => {
            return Err(format!(
                "--workers {n} is more than {MAX_WORKERS}: each worker loads its own copy of the model; give fewer, or auto"
            ))
        }
        Some(n) => n,
        None => threads,
    };
    let workers = streams.map_or(workers, |s| workers.min(s.max(1)));
    Ok(WorkerPlan {
        workers,
        threads_each: (threads / workers).max(1),
    })
}

/// How to run on several robots.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// The robots given by name or URL.
    pub streams: Vec<StreamSpec>,
    /// Also every robot that is online (it sends telemetry; its status says
    /// when it goes offline), over MQTT video: robots that come online later
    /// join, those that go offline leave.
    pub all_online: bool,
    /// A TOML file with an `[mqtt]` table (a controller identity's bundle).
    pub mqtt_config: Option<PathBuf>,
    /// Port for the annotated MJPEG stream (one stream only; 0 = any free port).
    pub serve_port: Option<u16>,
    /// Stop after this many frames, over all streams.
    pub max_frames: Option<u64>,
    /// The camera's access token (one MJPEG stream only); otherwise learned
    /// from each robot's retained status.
    pub camera_token: Option<String>,
    /// The most detections messages a second published per robot
    /// (`--max-publish-hz`; the newest result wins).
    pub publish_hz: f64,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            streams: Vec::new(),
            all_online: false,
            mqtt_config: None,
            serve_port: None,
            max_frames: None,
            camera_token: None,
            publish_hz: crate::DEFAULT_PUBLISH_HZ,
        }
    }
}

impl FleetOptions {
    /// Refuses combinations that cannot work, saying what to give instead.
    pub fn check(&self) -> Result<(), DetectError> {
        let usage = |s: &str| Err(DetectError::Usage(s.to_string()));
        if !(self.publish_hz.is_finite() && self.publish_hz >= 0.1) {
            return Err(DetectError::Usage(format!(
                "--max-publish-hz {} is not a rate: give a number of messages a second, 0.1 or more",
                self.publish_hz
            )));
        }
        let mjpeg = self
            .streams
            .iter()
            .filter(|s| matches!(s.source, Source::Mjpeg(_)))
            .count();
        let mqtt_video = self.all_online || mjpeg < self.streams.len();
        if self.streams.is_empty() && !self.all_online {
            return usage(
                "no robot given: give a stream URL, --thing (MQTT video) or --all-online",
            );
        }
        if mqtt_video && self.mqtt_config.is_none() {
            return usage(
                "reading a robot's MQTT video needs --mqtt-config with a controller identity's bundle config",
            );
        }
        if self.serve_port.is_some() && (self.all_online || self.streams.len() > 1) {
            return usage("--serve-port shows one robot's stream; give one robot, or leave it out");
        }
        if self.camera_token.is_some() && mjpeg > 1 {
            return usage("--camera-token is one robot's; with several, give --mqtt-config (a controller identity) and each token is read from the robot's status");
        }
        if let (Some(path), true) = (
            &self.mqtt_config,
            self.streams.iter().any(|s| s.thing.is_none()),
        ) {
            return Err(DetectError::Config {
                path: path.clone(),
                reason: "--thing is required to know which robot's detections topic to use".into(),
            });
        }
        Ok(())
    }

    /// What the MQTT link must read.
    fn wants(&self) -> Wants {
        let mut w = Wants {
            all_online: self.all_online,
            ..Wants::default()
        };
        for s in &self.streams {
            match (&s.thing, &s.source) {
                (Some(t), Source::Mqtt) => {
                    w.video.insert(t.clone());
                }
                (Some(t), Source::Mjpeg(_)) if self.camera_token.is_none() => {
                    w.tokens.insert(t.clone());
                }
                _ => {}
            }
        }
        w
    }
}

/// Connects to every MJPEG stream (each must answer, as for one robot) and
/// starts a task per stream that leaves its newest frame in `inbox`.
async fn start_mjpeg(
    opts: &FleetOptions,
    link: Option<&Link>,
    inbox: &Arc<Inbox<Arc<Frame>>>,
) -> Result<Vec<JoinHandle<()>>, DetectError> {
    let mut tasks = Vec::new();
    for spec in &opts.streams {
        let Source::Mjpeg(url) = &spec.source else {
            continue;
        };
        let status = spec
            .thing
            .as_ref()
            .and_then(|t| link.and_then(|l| l.tokens.get(t)).cloned());
        let mut token = match (&opts.camera_token, status) {
            (Some(t), _) => Token::Given(t.clone()),
            (None, Some(rx)) => Token::Status(rx),
            (None, None) => Token::None,
        };
        let latest = connect_first(url, &mut token).await?.latest();
        let mut stream = LiveStream {
            url: url.clone(),
            latest,
            token,
            backoff: FIRST_BACKOFF,
        };
        let (key, inbox) = (spec.key().to_string(), inbox.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if let Some(f) = stream.next().await {
                    inbox.put(&key, f);
                }
            }
        }));
    }
    Ok(tasks)
}

/// Runs the detector's workers, one per detector in `detectors` (each its
/// own ONNX Runtime session), over the newest frames of every stream,
/// round-robin, until `shutdown` resolves or `max_frames` are done. One JSON
/// line per processed frame goes to `out` (with `"thing"` when the robot is
/// known), each stream's in capture order; detections go to
/// `gopigo/{thing}/detections` when `mqtt_config` is set.
pub async fn run_fleet(
    detectors: Vec<Detector>,
    opts: FleetOptions,
    out: &mut (dyn Write + Send),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<u64, DetectError> {
    opts.check()?;
    if detectors.is_empty() {
        return Err(DetectError::Usage(
            "no detector to run: give --workers 1 or more".into(),
        ));
    }
    let inbox: Arc<Inbox<Arc<Frame>>> = Inbox::new();
    let link = match &opts.mqtt_config {
        Some(path) => Some(link::start(path, &opts.wants(), inbox.clone())?),
        None => None,
    };
    let annotated = FrameBus::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    if let Some(port) = opts.serve_port {
        serve_annotated(port, annotated.clone(), stop_rx).await?;
    }
    let pumps = start_mjpeg(&opts, link.as_ref(), &inbox).await?;
    let topics: BTreeMap<String, String> = opts
        .streams
        .iter()
        .filter_map(|s| s.thing.clone())
        .map(|t| (t.clone(), topics::detections(&t)))
        .collect();
    let run = Loop {
        inbox,
        link: link.as_ref(),
        topics,
        all_online: opts.all_online,
        annotated,
        draw: opts.serve_port.is_some(),
        max: opts.max_frames.unwrap_or(u64::MAX),
        publish_hz: opts.publish_hz,
    };
    tracing::info!(workers = detectors.len(), "detector workers");
    let done = run.detect(detectors, out, shutdown).await;
    let _ = stop_tx.send(true);
    pumps.iter().for_each(JoinHandle::abort);
    if let Some(link) = link {
        link.close().await;
    }
    done
}

/// The detector loop's fixed parts.
struct Loop<'a> {
    inbox: Arc<Inbox<Arc<Frame>>>,
    link: Option<&'a Link>,
    /// Detections topic by thing, for the robots named up front.
    topics: BTreeMap<String, String>,
    /// Streams not in `topics` are robots found online (their name is the thing).
    all_online: bool,
    annotated: FrameBus,
    draw: bool,
    max: u64,
    /// Each robot's detections rate limit.
    publish_hz: f64,
}

impl Loop<'_> {
    /// Publishes the results whose throttle slot has come.
    fn flush(&self, throttles: &mut BTreeMap<String, Throttle>) {
        let now = std::time::Instant::now();
        for (stream, throttle) in throttles.iter_mut() {
            let payload = throttle.take_due(now);
            if let (Some(link), Some(topic)) = (self.link, self.topic_of(stream)) {
                publish(&link.client, &topic, payload);
            }
        }
    }

    /// The detections topic of `stream`, if it is a robot.
    fn topic_of(&self, stream: &str) -> Option<String> {
        match self.topics.get(stream) {
            Some(t) => Some(t.clone()),
            None if self.all_online => Some(topics::detections(stream)),
            None => None,
        }
    }

    /// Hands a finished frame on (JSON line, MQTT through the stream's
    /// throttle, annotated stream); `false` for a frame the detector could
    /// not read.
    fn finish(
        &self,
        stream: &str,
        frame: &Frame,
        result: Result<Detected, gopigo_vision::VisionError>,
        out: &mut (dyn Write + Send),
        throttles: &mut BTreeMap<String, Throttle>,
    ) -> Result<bool, DetectError> {
        let (dets, drawn) = match result {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(stream, seq = frame.seq, error = %e, "skipping a frame the detector cannot read");
                return Ok(false);
            }
        };
        let topic = self.topic_of(stream);
        let thing = topic.as_ref().map(|_| stream);
        let throttle = throttles
            .entry(stream.to_string())
            .or_insert_with(|| Throttle::new(self.publish_hz));
        let mqtt = (self.link.zip(topic.as_deref())).map(|(l, t)| (&l.client, t, throttle));
        emit(out, thing, mqtt, &self.annotated, frame, &dets, drawn)?;
        Ok(true)
    }

    /// Runs each of `detectors` as a worker on its own blocking thread: an
    /// idle worker takes the next due stream's newest frame (never a stream
    /// another worker holds), and results are handed on as they finish.
    async fn detect(
        &self,
        detectors: Vec<Detector>,
        out: &mut (dyn Write + Send),
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<u64, DetectError> {
        let mut idle = detectors;
        let mut busy: JoinSet<Finished> = JoinSet::new();
        let mut rate = Rate::new();
        let mut done = 0u64;
        let mut throttles: BTreeMap<String, Throttle> = BTreeMap::new();
        tokio::pin!(shutdown);
        while done < self.max {
            let due = throttles.values().filter_map(Throttle::due).min();
            // never more frames under way than are left to do
            let room = done + (busy.len() as u64) < self.max;
            let mut spare = if room { idle.pop() } else { None };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = sleep_until_some(due.map(tokio::time::Instant::from_std)) => {
                    self.flush(&mut throttles);
                }
                (stream, frame) = self.inbox.next(), if spare.is_some() => {
                    if let Some(mut det) = spare.take() {
                        let draw = self.draw;
                        busy.spawn_blocking(move || {
                            let result = detect_frame(&mut det, &frame, draw);
                            Finished { stream, frame, det, result }
                        });
                    }
                }
                Some(joined) = busy.join_next(), if !busy.is_empty() => {
                    let Finished { stream, frame, det, result } = joined
                        .map_err(|e| DetectError::Usage(format!("detector task failed: {e}")))?;
                    self.inbox.done(&stream);
                    idle.push(det);
                    if self.finish(&stream, &frame, result, out, &mut throttles)? {
                        done += 1;
                        rate.count(done);
                    }
                }
            }
            idle.extend(spare);
        }
        Ok(done)
    }
}

/// A frame a worker has processed, with the worker's detector to use again.
struct Finished {
    stream: String,
    frame: Arc<Frame>,
    det: Detector,
    result: Result<Detected, gopigo_vision::VisionError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn urls_and_things_pair_in_order_or_stand_alone() {
        let p = plan_streams(
            &s(&["http://a/stream", "http://b/stream"]),
            &s(&["r1", "r2"]),
        )
        .unwrap();
        assert_eq!(p[1].thing.as_deref(), Some("r2"));
        assert_eq!(p[1].source, Source::Mjpeg("http://b/stream".into()));
        let p = plan_streams(&[], &s(&["r1", "r2"])).unwrap();
        assert!(p.iter().all(|x| x.source == Source::Mqtt));
        assert_eq!(p[0].key(), "r1");
        let p = plan_streams(&s(&["http://a/stream"]), &[]).unwrap();
        assert_eq!((p[0].thing.clone(), p[0].key()), (None, "http://a/stream"));
        let e = plan_streams(&s(&["http://a/stream"]), &s(&["r1", "r2"])).unwrap_err();
        assert!(e.contains("one --thing per URL"), "{e}");
        let e = plan_streams(&[], &s(&["r1", "r1"])).unwrap_err();
        assert!(e.contains("r1 is given twice"), "{e}");
    }

    #[test]
    fn workers_share_the_threads_and_never_outnumber_the_streams() {
        let plan = |w, t, s| plan_workers(w, t, s).map(|p| (p.workers, p.threads_each));
        // auto: one worker per stream up to the threads
        assert_eq!(plan(None, 2, Some(1)), Ok((1, 2)));
        assert_eq!(plan(None, 2, Some(2)), Ok((2, 1)));
        assert_eq!(plan(None, 2, Some(4)), Ok((2, 1)));
        assert_eq!(plan(None, 4, Some(4)), Ok((4, 1)));
        assert_eq!(plan(None, 8, Some(2)), Ok((2, 4)));
        assert_eq!(plan(None, 2, None), Ok((2, 1)));
        // asked for: never more than the streams, each at least 1 thread
        assert_eq!(plan(Some(1), 2, Some(4)), Ok((1, 2)));
        assert_eq!(plan(Some(3), 2, Some(2)), Ok((2, 1)));
        assert_eq!(plan(Some(4), 2, Some(4)), Ok((4, 1)));
        assert_eq!(plan(Some(3), 2, None), Ok((3, 1)));
        assert!(plan(Some(0), 2, Some(2)).unwrap_err().contains("1 or more"));
        let e = plan(Some(MAX_WORKERS + 1), 2, None).unwrap_err();
        assert!(e.contains("more than 16"), "{e}");
    }

    #[test]
    fn combinations_that_cannot_work_say_what_to_give() {
        let mqtt = |things: &[&str]| FleetOptions {
            streams: plan_streams(&[], &s(things)).unwrap(),
            ..FleetOptions::default()
        };
        let cases: Vec<(FleetOptions, &str)> = vec![
            (FleetOptions::default(), "no robot given"),
            (mqtt(&["r1"]), "--mqtt-config"),
            (
                FleetOptions {
                    all_online: true,
                    ..FleetOptions::default()
                },
                "--mqtt-config",
            ),
            (
                FleetOptions {
                    mqtt_config: Some("c.toml".into()),
                    serve_port: Some(0),
                    ..mqtt(&["r1", "r2"])
                },
                "--serve-port",
            ),
            (
                FleetOptions {
                    streams: plan_streams(&s(&["http://a/", "http://b/"]), &[]).unwrap(),
                    camera_token: Some("t".into()),
                    ..FleetOptions::default()
                },
                "--camera-token",
            ),
            (
                FleetOptions {
                    streams: plan_streams(&s(&["http://a/"]), &[]).unwrap(),
                    mqtt_config: Some("c.toml".into()),
                    ..FleetOptions::default()
                },
                "--thing is required",
            ),
        ];
        for (opts, want) in cases {
            let e = opts.check().unwrap_err().to_string();
            assert!(e.contains(want), "{opts:?}: {e}");
        }
        let ok = FleetOptions {
            mqtt_config: Some("c.toml".into()),
            ..mqtt(&["r1", "r2"])
        };
        ok.check().unwrap();
        let w = ok.wants();
        assert_eq!(w.video.len(), 2);
        assert!(w.tokens.is_empty() && !w.all_online);
    }
}
