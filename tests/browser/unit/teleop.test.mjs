// teleop.js: what keys and buttons send, and when, on node's mock clock.
import { describe, it, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { Teleop, bindKeys, bindPad, HEARTBEAT_MS, HOLD_DRIVE_MS, CLICK_MS } from "../../../crates/controller/static/teleop.js";

/** A key event as the browser dispatches it. */
const key = (type, k, more = {}) => Object.assign(new Event(type, { cancelable: true }), { key: k, repeat: false, ...more });
const pointer = (type) => Object.assign(new Event(type, { cancelable: true }), { pointerId: 1 });

/**
 * Moves the mock clock on a millisecond at a time: node 20's tick() fires a
 * long step's timers with Date already at its end, which would hide when
 * each command was sent.
 */
function advance(ms) {
  for (let i = 0; i < ms; i++) mock.timers.tick(1);
}

function rig({ enabled = true } = {}) {
  const sent = [];
  const refusals = [];
  const held = [];
  const teleop = new Teleop({
    command: (c) => sent.push({ at: Date.now(), ...c }),
    enabled: () => rig.enabled,
    speed: () => 300,
    refused: () => refusals.push(Date.now()),
    onHold: (dir) => held.push(dir),
    now: () => Date.now(),
  });
  rig.enabled = enabled;
  const doc = new EventTarget();
  doc.hidden = false;
  const win = new EventTarget();
  bindKeys(teleop, doc, win);
  const buttons = ["forward", "left"].map((dir) => Object.assign(new EventTarget(), { dataset: { dir } }));
  const stop = new EventTarget();
  bindPad(teleop, buttons, stop);
  const drives = () => sent.filter((c) => c.action === "drive");
  const stops = () => sent.filter((c) => c.action === "stop");
  return { teleop, sent, refusals, held, doc, win, buttons, stop, drives, stops };
}

describe("teleop", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setInterval", "setTimeout", "Date"], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it("a held key drives at once and re-sends a short drive every heartbeat", () => {
    const r = rig();
    const down = key("keydown", "w");
    r.doc.dispatchEvent(down);
    assert.equal(down.defaultPrevented, true, "the page does not scroll");
    assert.deepEqual(r.sent, [{ at: 1_000_000, action: "drive", direction: "forward", speed_dps: 300, duration_ms: HOLD_DRIVE_MS }]);
    advance(1000);
    const times = r.drives().map((c) => c.at - 1_000_000);
    assert.deepEqual(times, [0, 150, 300, 450, 600, 750, 900]);
    assert.ok(HEARTBEAT_MS < HOLD_DRIVE_MS, "each drive outlasts the gap to the next");
    assert.equal(r.stops().length, 0);
    assert.deepEqual(r.held, ["forward"]);
  });

  it("key auto-repeat does not restart the hold", () => {
    const r = rig();
    r.doc.dispatchEvent(key("keydown", "ArrowUp"));
    advance(100);
    r.doc.dispatchEvent(key("keydown", "ArrowUp", { repeat: true }));
    r.doc.dispatchEvent(key("keydown", "ArrowUp", { repeat: true }));
    advance(50);
    assert.deepEqual(r.drives().map((c) => c.at - 1_000_000), [0, 150]);
  });

  it("releasing the key sends stop and nothing after it", () => {
    const r = rig();
    r.doc.dispatchEvent(key("keydown", "s"));
    advance(500);
    r.doc.dispatchEvent(key("keyup", "s"));
    assert.deepEqual(r.sent.at(-1), { at: 1_000_500, action: "stop" });
    const n = r.sent.length;
    advance(5000);
    assert.equal(r.sent.length, n, "no command after the stop");
    assert.deepEqual(r.held.at(-1), null);
  });

  it("releasing another key leaves the hold alone", () => {
    const r = rig();
    r.doc.dispatchEvent(key("keydown", "q"));
    r.doc.dispatchEvent(key("keyup", "w"));
    advance(300);
    assert.equal(r.stops().length, 0);
    assert.deepEqual(r.drives().map((c) => c.direction), ["spin_left", "spin_left", "spin_left"]);
  });

  it("a second direction replaces the first without a stop in between", () => {
    const r = rig();
    r.doc.dispatchEvent(key("keydown", "w"));
    advance(200);
    r.doc.dispatchEvent(key("keydown", "d"));
    advance(200);
    assert.equal(r.stops().length, 0);
    assert.deepEqual(r.drives().map((c) => c.direction), ["forward", "forward", "right", "right"]);
    r.doc.dispatchEvent(key("keyup", "w"));
    assert.equal(r.stops().length, 0, "the released key no longer drives");
    r.doc.dispatchEvent(key("keyup", "d"));
    assert.equal(r.stops().length, 1);
  });

  it("losing focus stops a held drive", () => {
    const r = rig();
    r.doc.dispatchEvent(key("keydown", "q"));
    advance(400);
    r.win.dispatchEvent(new Event("blur"));
    assert.deepEqual(r.sent.at(-1), { at: 1_000_400, action: "stop" });
    const n = r.sent.length;
    advance(2000);
    r.doc.dispatchEvent(key("keyup", "q"));
    assert.equal(r.sent.length, n, "neither the heartbeat nor the late keyup sends anything");
  });

  it("hiding the tab stops a held drive; showing it does nothing", () => {
    const r = rig();
    r.doc.dispatchEvent(new Event("visibilitychange"));
    assert.equal(r.sent.length, 0);
    r.doc.dispatchEvent(key("keydown", "e"));
    advance(200);
    r.doc.hidden = true;
    r.doc.dispatchEvent(new Event("visibilitychange"));
    assert.deepEqual(r.sent.at(-1), { at: 1_000_200, action: "stop" });
    const n = r.sent.length;
    advance(2000);
    assert.equal(r.sent.length, n);
  });

  it("Space stops at once, held or not", () => {
    const r = rig();
    r.doc.dispatchEvent(key("keydown", "a"));
    advance(160);
    const space = key("keydown", " ");
    r.doc.dispatchEvent(space);
    assert.equal(space.defaultPrevented, true);
    assert.deepEqual(r.sent.at(-1), { at: 1_000_160, action: "stop" });
    advance(1000);
    assert.equal(r.sent.at(-1).action, "stop", "the heartbeat ended");
    r.doc.dispatchEvent(key("keydown", " "));
    assert.equal(r.stops().length, 2);
  });

  it("keys with a modifier, or typed into a field, do not drive", () => {
    const r = rig();
    r.doc.dispatchEvent(key("keydown", "w", { ctrlKey: true }));
    r.doc.dispatchEvent(key("keydown", "x"));
    // A key typed into a field reaches the document with the field as its target.
    const typed = key("keydown", "w");
    Object.defineProperty(typed, "target", { value: { tagName: "INPUT" } });
    r.doc.dispatchEvent(typed);
    assert.equal(typed.defaultPrevented, false, "the field gets its letter");
    advance(500);
    assert.equal(r.sent.length, 0);
  });

  it("while commands are disabled a press tells why and sends nothing", () => {
    const r = rig({ enabled: false });
    r.doc.dispatchEvent(key("keydown", "w"));
    r.buttons[0].dispatchEvent(pointer("pointerdown"));
    advance(1000);
    assert.equal(r.sent.length, 0);
    assert.equal(r.refusals.length, 2);
    r.buttons[0].dispatchEvent(Object.assign(new Event("click"), { detail: 0 }));
    assert.equal(r.sent.length, 0, "no nudge either");
  });

  it("a held button drives until released, then stops", () => {
    const r = rig();
    r.buttons[0].dispatchEvent(pointer("pointerdown"));
    advance(CLICK_MS + 200);
    r.buttons[0].dispatchEvent(pointer("pointerup"));
    assert.equal(r.sent.at(-1).action, "stop");
    const n = r.sent.length;
    advance(1000);
    assert.equal(r.sent.length, n);
    assert.ok(r.drives().every((c) => c.direction === "forward"));
  });

  it("a short click is a nudge: one drive that runs out by itself, no stop", () => {
    const r = rig();
    r.buttons[1].dispatchEvent(pointer("pointerdown"));
    advance(100);
    r.buttons[1].dispatchEvent(pointer("pointerup"));
    advance(1000);
    assert.deepEqual(r.sent, [{ at: 1_000_000, action: "drive", direction: "left", speed_dps: 300, duration_ms: HOLD_DRIVE_MS }]);
  });

  it("a cancelled pointer (lost capture) stops like a release", () => {
    const r = rig();
    r.buttons[0].dispatchEvent(pointer("pointerdown"));
    advance(600);
    r.buttons[0].dispatchEvent(pointer("pointercancel"));
    assert.equal(r.sent.at(-1).action, "stop");
    r.buttons[0].dispatchEvent(pointer("lostpointercapture"));
    assert.equal(r.stops().length, 1, "one stop for one release");
  });

  it("Enter on a focused button (a click without a pointer) nudges", () => {
    const r = rig();
    r.buttons[0].dispatchEvent(Object.assign(new Event("click"), { detail: 0 }));
    r.buttons[0].dispatchEvent(Object.assign(new Event("click"), { detail: 1 }));
    assert.deepEqual(r.sent, [{ at: 1_000_000, action: "drive", direction: "forward", speed_dps: 300, duration_ms: 400 }]);
  });

  it("the stop button ends a hold and stops", () => {
    const r = rig();
    r.doc.dispatchEvent(key("keydown", "w"));
    r.stop.dispatchEvent(new Event("click"));
    assert.equal(r.sent.at(-1).action, "stop");
    const n = r.sent.length;
    advance(1000);
    assert.equal(r.sent.length, n);
  });

  it("a lost connection ends the heartbeat without a stop it could not send", () => {
    const r = rig();
    r.doc.dispatchEvent(key("keydown", "w"));
    advance(300);
    r.teleop.stop(false);
    const n = r.sent.length;
    advance(1000);
    assert.equal(r.sent.length, n);
    assert.equal(r.stops().length, 0);
  });
});
