// onscreen.js: what the page reports it shows, so that the server follows
// only those robots at full rate.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ScreenReport, fullRateNote } from "../../../crates/controller/static/onscreen.js";

function recorder(accept = true) {
  const sent = [];
  return { sent, send: (m) => { if (accept) sent.push(m); return accept; } };
}

describe("onscreen", () => {
  it("reports the selected robot once, and each change of selection", () => {
    const r = recorder();
    const s = new ScreenReport(r.send);
    assert.equal(s.update({ selected: "r1", hidden: false, open: true }), true);
    assert.equal(s.update({ selected: "r1", hidden: false, open: true }), false, "no change, nothing sent");
    s.update({ selected: "r2", hidden: false, open: true });
    assert.deepEqual(r.sent, [{ type: "view", things: ["r1"] }, { type: "view", things: ["r2"] }]);
  });

  it("a hidden tab shows nothing, and shows its robot again when visible", () => {
    const r = recorder();
    const s = new ScreenReport(r.send);
    s.update({ selected: "r1", hidden: false, open: true });
    s.update({ selected: "r1", hidden: true, open: true });
    s.update({ selected: "r1", hidden: false, open: true });
    assert.deepEqual(r.sent.map((m) => m.things), [["r1"], [], ["r1"]]);
  });

  it("a reopened socket is told again; nothing is sent while closed or before a selection", () => {
    const r = recorder();
    const s = new ScreenReport(r.send);
    assert.equal(s.update({ selected: null, hidden: false, open: true }), true, "none selected: an empty view");
    s.update({ selected: "r1", hidden: false, open: true });
    assert.equal(s.update({ selected: "r1", hidden: false, open: false }), false);
    assert.equal(s.update({ selected: "r1", hidden: false, open: true }), true, "the new server session learns it");
    assert.deepEqual(r.sent.map((m) => m.things), [[], ["r1"], ["r1"]]);
  });

  it("a send that failed is tried again on the next update", () => {
    const down = recorder(false);
    const s = new ScreenReport(down.send);
    assert.equal(s.update({ selected: "r1", hidden: false, open: true }), false);
    s.send = recorder().send;
    assert.equal(s.update({ selected: "r1", hidden: false, open: true }), true);
  });

  it("says why a waiting robot's telemetry does not come", () => {
    const on = { full_rate: ["a", "b"], waiting: ["c"], limit: 2 };
    assert.equal(fullRateNote(on, "a"), null);
    assert.equal(fullRateNote(null, "c"), null);
    const note = fullRateNote(on, "c");
    assert.match(note, /c wait/);
    assert.match(note, /2 robots are already followed/);
  });
});
