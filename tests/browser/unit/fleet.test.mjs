// fleet.js: the fleet state kept from the server's WebSocket messages.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Fleet, PLOT_WINDOW_MS, DETECTION_TTL_MS } from "../../../crates/controller/static/fleet.js";

const robot = (thing, more = {}) => ({ thing, online: true, has_camera: true, reported: null, ...more });
const broker = { endpoint: "localhost:8883", connected: true };
const telemetry = (battery_v, left = 0) => ({ battery_v, distance_mm: 500, wheel_dps: { left, right: left }, motion: "idle" });

function helloed(robots = [robot("r1"), robot("r2")]) {
  const f = new Fleet();
  const changed = f.apply({ type: "hello", robots, broker, detection: { note: null } });
  if (changed.select) f.selected = changed.select;
  return f;
}

describe("fleet", () => {
  it("hello lists the robots and selects the first when none is selected", () => {
    const f = new Fleet();
    const changed = f.apply({ type: "hello", robots: [robot("r1"), robot("r2", { online: false })], broker, detection: { note: "no model" } });
    assert.deepEqual([...f.robots.keys()], ["r1", "r2"]);
    assert.equal(changed.select, "r1");
    assert.equal(f.detectionNote, "no model");
    assert.ok(changed.banner && changed.list && changed.robot);
    f.selected = "r2";
    assert.equal(f.apply({ type: "hello", robots: [robot("r1"), robot("r2")], broker }).select, undefined,
      "a later hello (after a reconnect) keeps the selection");
  });

  it("a robot message restarts the video only when the selected robot becomes able to stream", () => {
    const f = helloed([robot("r1", { online: false })]);
    assert.equal(f.apply({ type: "robot", robot: robot("r1", { online: true, has_camera: false }) }).video, false, "no camera yet");
    const c = f.apply({ type: "robot", robot: robot("r1") });
    assert.equal(c.video, true);
    assert.equal(c.offline, false);
    assert.equal(f.apply({ type: "robot", robot: robot("r1", { battery_v: 8 }) }).video, false, "already streaming");
  });

  it("a robot going offline ends driving; other robots do not touch the panel", () => {
    const f = helloed();
    assert.equal(f.apply({ type: "robot", robot: robot("r1", { online: false }) }).offline, true);
    const other = f.apply({ type: "robot", robot: robot("r2", { online: false }) });
    assert.deepEqual(other, { list: true }, "only the list changes for a robot not shown");
    assert.equal(f.robots.get("r2").online, false);
  });

  it("the inputs follow the robot's settings when it first reports them", () => {
    const f = helloed();
    assert.equal(f.apply({ type: "robot", robot: robot("r1", { reported: { servo_angle: 30 } }) }).settings, true);
    assert.equal(f.apply({ type: "robot", robot: robot("r1", { reported: { servo_angle: 40 } }) }).settings, false,
      "later reports do not overwrite what the user is editing");
  });

  it("telemetry updates the battery and last seen and keeps one minute of plot", () => {
    const f = helloed();
    const t0 = 1_000_000;
    assert.deepEqual(f.apply({ type: "telemetry", thing: "r1", telemetry: telemetry(7.9, 100) }, t0), { telemetry: true });
    assert.deepEqual(f.apply({ type: "telemetry", thing: "r2", telemetry: telemetry(8.1) }, t0), { telemetry: false });
    assert.equal(f.robots.get("r1").battery_v, 7.9);
    assert.equal(f.robots.get("r1").last_seen_ms, t0);
    f.apply({ type: "telemetry", thing: "r1", telemetry: telemetry(7.8) }, t0 + 30_000);
    f.apply({ type: "telemetry", thing: "r1", telemetry: telemetry(7.7) }, t0 + PLOT_WINDOW_MS + 1);
    assert.deepEqual(f.telemetry.get("r1").map((p) => p.battery), [7.8, 7.7], "points older than the window are dropped");
    assert.deepEqual(f.telemetry.get("r1")[0], { t: t0 + 30_000, battery: 7.8, distance: 500, left: 0, right: 0 });
    assert.equal(f.lastTelemetry.get("r1").battery_v, 7.7);
  });

  it("controls need the robot online, the broker connected and the socket open", () => {
    const f = helloed();
    assert.equal(f.controlsEnabled(true), true);
    assert.equal(f.controlsEnabled(false), false, "socket closed");
    f.apply({ type: "broker", broker: { endpoint: "x", connected: false } });
    assert.equal(f.controlsEnabled(true), false, "broker down");
    f.apply({ type: "broker", broker });
    f.apply({ type: "robot", robot: robot("r1", { online: false }) });
    assert.equal(f.controlsEnabled(true), false, "robot offline");
    f.selected = null;
    assert.equal(f.controlsEnabled(true), false, "nothing selected");
  });

  it("says why video is unavailable", () => {
    const f = helloed([robot("r1"), robot("r2", { has_camera: false }), robot("r3", { online: false })]);
    assert.equal(f.videoUnavailable("r1"), null);
    assert.equal(f.videoUnavailable("r2"), "video unavailable: r2 announces no camera");
    assert.equal(f.videoUnavailable("r3"), "video unavailable: r3 is offline");
    assert.equal(f.videoUnavailable("nobody"), "video unavailable: nobody is offline");
  });

  it("matches detections to a frame by capture time, newest on a tie, and forgets stale ones", () => {
    const f = helloed();
    const det = (frame_ts_ms) => ({ type: "detections", thing: "r1", detections: { frame_ts_ms, width: 640, height: 480, detections: [] } });
    const now = 5_000_000;
    f.apply(det(1000), now - 300);
    f.apply(det(1100), now - 200);
    f.apply(det(1200), now - 100);
    assert.equal(f.detectionsFor("r1", 1090, now).frame_ts_ms, 1100);
    assert.equal(f.detectionsFor("r1", 5000, now).frame_ts_ms, 1200);
    assert.equal(f.detectionsFor("r1", null, now).frame_ts_ms, 1200, "without a capture time: the newest");
    assert.equal(f.detectionsFor("r1", 1000, now + DETECTION_TTL_MS - 250).frame_ts_ms, 1100, "the first is too old by then");
    assert.equal(f.detectionsFor("r1", 1000, now + DETECTION_TTL_MS + 1), null, "all stale");
    assert.equal(f.detectionsFor("r2", 1000, now), null, "another robot's are not drawn");
  });

  it("counts detections per second for the selected robot only", () => {
    const f = helloed();
    const det = (thing) => ({ type: "detections", thing, detections: { frame_ts_ms: 1, detections: [{ class: "cat", score: 0.9 }] } });
    const now = 9_000_000;
    for (let i = 0; i < 4; i++) assert.deepEqual(f.apply(det("r1"), now - 1500 + i * 500), { detections: true });
    assert.deepEqual(f.apply(det("r2"), now), {});
    const s = f.detectionState(now);
    assert.equal(s.perSecond, 2, "4 in the last 2 s");
    assert.equal(s.latest.detections[0].class, "cat");
    assert.equal(s.online, true);
    assert.equal(f.detectionState(now + 10_000).latest, null, "old detections are not shown as current");
    assert.equal(f.detectionState(now + 10_000).perSecond, 0);
  });
});
