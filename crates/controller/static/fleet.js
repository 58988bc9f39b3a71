// The fleet as the page knows it, kept from the server's WebSocket
// messages (`hello`, `broker`, `robot`, `telemetry`, `detections`,
// `on_screen`; see
// crates/controller/src/hub.rs). No DOM: `apply` returns what changed and
// main.js decides what to redraw.

/** How much telemetry the plots keep. */
export const PLOT_WINDOW_MS = 60000;
/** Detections older than this are not drawn over a frame. */
export const DETECTION_TTL_MS = 1500;
/** The detections line counts arrivals over this window. */
export const DETECTION_RATE_WINDOW_MS = 2000;
/** The detections line shows the newest ones while they are this fresh. */
export const DETECTION_SHOWN_MS = 5000;
const RECENT_DETECTIONS = 20;

/** A robot that can stream: online and announcing a camera. */
const ready = (r) => !!(r && r.online && r.has_camera);

export class Fleet {
  constructor() {
    this.robots = new Map();          // thing -> the server's robot view
    this.broker = null;               // {endpoint, connected, error}
    this.detectionNote = null;        // why detection is unavailable, if it is
    this.selected = null;
    this.telemetry = new Map();       // thing -> [{t, battery, distance, left, right}]
    this.lastTelemetry = new Map();   // thing -> the newest telemetry message
    this.recentDetections = new Map();// thing -> the last few {at, msg}
    this.detectionTimes = [];         // arrival times for the selected robot
    this.onScreen = null;             // {full_rate, waiting, limit}: robots followed at full rate
  }

  /**
   * Takes one server message. Returns what changed: `banner`, `list`,
   * `robot` (the selected robot's panel), `select` (a robot to select,
   * none being selected yet), `settings` (the selected robot reported its
   * settings for the first time), `video` (the selected robot became able
   * to stream), `offline` (the selected robot went offline), `telemetry`
   * and `detections` (for the selected robot), `onScreen` (the robots
   * followed at full rate changed). Other message types
   * return `{}`.
   */
  apply(msg, now = Date.now()) {
    switch (msg.type) {
      case "hello": return this.hello(msg);
      case "broker":
        this.broker = msg.broker;
        return { banner: true, robot: true };
      case "robot": return this.robot(msg.robot);
      case "telemetry": return this.onTelemetry(msg.thing, msg.telemetry, now);
      case "detections": return this.onDetections(msg.thing, msg.detections, now);
      case "on_screen":
        this.onScreen = msg.on_screen;
        return { onScreen: true };
      default: return {};
    }
  }

  hello(msg) {
    this.robots = new Map(msg.robots.map((r) => [r.thing, r]));
    this.broker = msg.broker;
    this.detectionNote = msg.detection && msg.detection.note;
    this.onScreen = msg.on_screen || null;
    const out = { banner: true, list: true, robot: true, onScreen: true };
    if (!this.selected && msg.robots.length) out.select = msg.robots[0].thing;
    return out;
  }

  robot(robot) {
    const prev = this.robots.get(robot.thing);
    this.robots.set(robot.thing, robot);
    const out = { list: true };
    if (!this.selected) out.select = robot.thing;
    if (robot.thing === this.selected) {
      out.robot = true;
      out.settings = !!prev && prev.reported == null && robot.reported != null;
      out.video = !!prev && !ready(prev) && ready(robot);
      out.offline = !robot.online;
    }
    return out;
  }

  onTelemetry(thing, t, now) {
    const r = this.robots.get(thing);
    if (r) { r.battery_v = t.battery_v; r.last_seen_ms = now; }
    let series = this.telemetry.get(thing);
    if (!series) { series = []; this.telemetry.set(thing, series); }
    series.push({ t: now, battery: t.battery_v, distance: t.distance_mm, left: t.wheel_dps.left, right: t.wheel_dps.right });
    while (series.length && series[0].t < now - PLOT_WINDOW_MS) series.shift();
    this.lastTelemetry.set(thing, t);
    return { telemetry: thing === this.selected };
  }

  onDetections(thing, d, now) {
    let recent = this.recentDetections.get(thing);
    if (!recent) { recent = []; this.recentDetections.set(thing, recent); }
    recent.push({ at: now, msg: d });
    if (recent.length > RECENT_DETECTIONS) recent.shift();
    if (thing !== this.selected) return {};
    this.detectionTimes.push(now);
    this.trimDetectionTimes(now);
    return { detections: true };
  }

  trimDetectionTimes(now) {
    const since = now - DETECTION_RATE_WINDOW_MS;
    while (this.detectionTimes.length && this.detectionTimes[0] < since) this.detectionTimes.shift();
  }

  get current() {
    return this.robots.get(this.selected) || null;
  }

  /** Commands need the robot online, the broker connected and our socket open. */
  controlsEnabled(wsOpen) {
    const r = this.current;
    return !!(r && r.online && this.broker && this.broker.connected && wsOpen);
  }

  /** Why the selected robot's video cannot play, or null when it can. */
  videoUnavailable(thing) {
    const r = this.robots.get(thing);
    if (!r || !r.online) return `video unavailable: ${thing} is offline`;
    if (!r.has_camera) return `video unavailable: ${thing} announces no camera`;
    return null;
  }

  /**
   * The detections to draw over a frame of `thing` captured at
   * `capturedMs`: of those still fresh, the one whose frame time is
   * closest (the newest on a tie), or the newest when the capture time is
   * unknown. Null when none is fresh.
   */
  detectionsFor(thing, capturedMs, now = Date.now()) {
    let best = null;
    for (const e of this.recentDetections.get(thing) || []) {
      if (now - e.at > DETECTION_TTL_MS) continue;
      const gap = capturedMs == null ? 0 : Math.abs(e.msg.frame_ts_ms - capturedMs);
      if (!best || gap < best.gap || (gap === best.gap && e.at > best.e.at)) best = { e, gap };
    }
    return best ? best.e.msg : null;
  }

  /** The detections line's inputs for the selected robot. */
  detectionState(now = Date.now()) {
    const r = this.current;
    const recent = this.recentDetections.get(this.selected) || [];
    const newest = recent[recent.length - 1];
    this.trimDetectionTimes(now);
    return {
      online: r ? r.online : undefined,
      latest: newest && now - newest.at < DETECTION_SHOWN_MS ? newest.msg : null,
      perSecond: this.detectionTimes.length / (DETECTION_RATE_WINDOW_MS / 1000),
      note: this.detectionNote,
    };
  }
}
