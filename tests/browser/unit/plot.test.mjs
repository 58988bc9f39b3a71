// plot.js: how a telemetry series maps onto a canvas.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { scale, label } from "../../../crates/controller/static/plot.js";

const close = (a, b, what) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);

describe("plot scaling", () => {
  const now = 100_000;

  it("has nothing to draw without values", () => {
    assert.equal(scale([], ["battery"], now, 300, 70), null);
    assert.equal(scale([{ t: now, battery: null }], ["battery"], now, 300, 70), null);
  });

  it("maps the window's time onto the width: now at the right edge", () => {
    const s = scale([{ t: now, v: 1 }, { t: now - 30_000, v: 2 }], ["v"], now, 300, 70, 60_000);
    close(s.x(now), 300, "now");
    close(s.x(now - 60_000), 0, "a window ago");
    close(s.x(now - 30_000), 150, "half a window ago");
  });

  it("pads the range by a tenth, higher values drawn higher", () => {
    const s = scale([{ t: now, v: 10 }, { t: now, v: 20 }], ["v"], now, 300, 100);
    close(s.lo, 9, "lo");
    close(s.hi, 21, "hi");
    close(s.y(s.lo), 100, "lo at the bottom");
    close(s.y(s.hi), 0, "hi at the top");
    assert.ok(s.y(20) < s.y(10), "20 above 10");
    close(s.y(15), 50, "the middle in the middle");
  });

  it("widens a flat line to ±1 so it sits mid-height", () => {
    const s = scale([{ t: now, v: 7.5 }, { t: now - 1, v: 7.5 }], ["v"], now, 300, 70);
    close(s.lo, 6.3, "lo");
    close(s.hi, 8.7, "hi");
    close(s.y(7.5), 35, "mid-height");
  });

  it("spans every key plotted together, skipping gaps", () => {
    const s = scale([{ t: now, left: -100, right: 50 }, { t: now, left: null, right: 300 }], ["left", "right"], now, 10, 10);
    close(s.lo, -140, "lo from left");
    close(s.hi, 340, "hi from right");
  });

  it("labels volts with two decimals and other units whole", () => {
    assert.equal(label(7.456, "V"), "7.46");
    assert.equal(label(512.6, "mm"), "513");
  });
});
