// format.js: the page's text from plain values.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fmt from "../../../crates/controller/static/format.js";

describe("format", () => {
  it("says how long ago, from seconds to minutes, and never for null", () => {
    const now = 1_700_000_000_000;
    assert.equal(fmt.ago(null, now), "never");
    assert.equal(fmt.ago(now - 500, now), "just now");
    assert.equal(fmt.ago(now + 5000, now), "just now", "a clock a little ahead is not negative");
    assert.equal(fmt.ago(now - 12_000, now), "12 s ago");
    assert.equal(fmt.ago(now - 89_000, now), "89 s ago");
    assert.equal(fmt.ago(now - 180_000, now), "3 min ago");
    assert.equal(fmt.ago(now - 7_200_000, now), new Date(now - 7_200_000).toLocaleString());
  });

  it("writes battery, distance and wheel readings with their units", () => {
    assert.equal(fmt.battery(7.954), "7.95 V");
    assert.equal(fmt.battery(null), "– V");
    assert.equal(fmt.distance(null), "–");
    assert.equal(fmt.distance(420), "420 mm");
    assert.equal(fmt.distance(3000), "> 3 m", "the sensor's range ends at 3 m");
    assert.equal(fmt.distance(null, "transfer on /dev/i2c-1 failed"), "sensor error");
    assert.equal(fmt.distance(420, null), "420 mm");
    assert.equal(fmt.wheels({ left: 299.6, right: -12.2 }), "300 / -12 dps");
  });

  it("describes each command the way the log shows it", () => {
    assert.equal(fmt.describeCommand({ action: "drive", direction: "forward", speed_dps: 300, duration_ms: 400 }), "drive forward @300 400 ms");
    assert.equal(fmt.describeCommand({ action: "drive", direction: "left" }), "drive left");
    assert.equal(fmt.describeCommand({ action: "turn", degrees: 90 }), "turn 90°");
    assert.equal(fmt.describeCommand({ action: "drive_cm", cm: 20 }), "drive 20 cm");
    assert.equal(fmt.describeCommand({ action: "servo", angle: 30 }), "servo 30°");
    assert.equal(fmt.describeCommand({ action: "led", color: [255, 128, 0] }), "eyes rgb(255,128,0)");
    assert.equal(fmt.describeCommand({ action: "stop" }), "stop");
  });

  it("logs rejections and endings but not heartbeat chatter", () => {
    assert.deepEqual(fmt.resultLine({ id: "c1", status: "rejected", reason: "obstacle at 80 mm" }, false),
      { text: "✗ c1 rejected: obstacle at 80 mm", cls: "rejected" });
    assert.deepEqual(fmt.resultLine({ id: "c1", status: "rejected" }, true),
      { text: "✗ c1 rejected: no reason given", cls: "rejected" }, "rejections show even while holding");
    assert.equal(fmt.resultLine({ id: "c2", status: "done", reason: "preempted by c3" }, false), null);
    assert.deepEqual(fmt.resultLine({ id: "c2", status: "done", reason: "stopped" }, true),
      { text: "■ c2 ended: stopped", cls: "done" });
    assert.equal(fmt.resultLine({ id: "c4", status: "accepted" }, true), null, "no accepted lines while a drive is held");
    assert.equal(fmt.resultLine({ id: "c4", status: "accepted" }, false), null);
    assert.deepEqual(fmt.resultLine({ id: "c4", status: "done" }, false), { text: "✓ c4 done", cls: "done" });
  });

  it("converts eye colours between the colour input and RGB", () => {
    assert.equal(fmt.hexColor([255, 128, 0]), "#ff8000");
    assert.equal(fmt.hexColor([0, 1, 2]), "#000102");
    assert.deepEqual(fmt.rgbOf("#ff8000"), [255, 128, 0]);
    assert.deepEqual(fmt.rgbOf(fmt.hexColor([12, 200, 7])), [12, 200, 7]);
  });

  it("summarises the shadow: what was reported and what is pending", () => {
    assert.equal(fmt.shadowSummary(null, null), "reported: –");
    assert.equal(fmt.shadowSummary({ servo_angle: 30, led: [1, 2, 3] }, { servo_angle: 30, led: [0, 0, 0], speed_dps: 300 }),
      "reported: servo 30°, eyes rgb(0,0,0), speed 300 · pending: led");
    assert.equal(fmt.shadowSummary({ servo_angle: 90 }, {}), "reported: – · pending: servo_angle");
  });

  it("says why a robot is offline and what detection shows", () => {
    assert.equal(fmt.offlineNotice({ thing: "r1", offline_reason: "last will" }),
      "r1 is offline (last will). Commands are disabled until it reconnects.");
    assert.equal(fmt.detectionState({ online: false, latest: { detections: [] }, perSecond: 1 }), "detections: robot offline");
    assert.equal(fmt.detectionState({ online: true, latest: { detections: [{ class: "person", score: 0.876 }, { class: "dog", score: 0.5 }] }, perSecond: 2.5 }),
      "detections 2.5/s: person 88%, dog 50%");
    assert.equal(fmt.detectionState({ online: true, latest: { detections: [] }, perSecond: 1 }), "detections 1.0/s: nothing");
    assert.equal(fmt.detectionState({ online: true, latest: null, perSecond: 0, note: "no model" }), "detection unavailable: no model");
    assert.equal(fmt.detectionState({ online: true, latest: null, perSecond: 0 }), "detections: none received yet");
  });

  it("gives each class one colour", () => {
    assert.equal(fmt.classColor("person"), fmt.classColor("person"));
    assert.notEqual(fmt.classColor("person"), fmt.classColor("dog"));
    assert.match(fmt.classColor("cat"), /^hsl\(\d+ 90% 55%\)$/);
  });

  it("puts the connection state into the banner and the pill", () => {
    assert.deepEqual(fmt.connectionState(false, { connected: true, endpoint: "h:1" }),
      { banner: "The dashboard server is unreachable; reconnecting…", pill: "dashboard offline", ok: false });
    const down = fmt.connectionState(true, { connected: false, endpoint: "h:8883", error: "connection refused" });
    assert.equal(down.banner, "Broker h:8883 unreachable: connection refused. Robot states may be stale; commands are disabled.");
    assert.equal(down.pill, "broker unreachable");
    assert.deepEqual(fmt.connectionState(true, { connected: true, endpoint: "h:8883" }), { banner: "", pill: "broker h:8883", ok: true });
  });
});
