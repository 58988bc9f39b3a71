// robot-video.js's cost arithmetic (docs/dashboard.md): AWS bills each 5 KB
// of a message as one message, and an MQTT frame twice (published, delivered).
import { describe, it } from "node:test";
import assert from "node:assert/strict";

globalThis.HTMLElement ??= class {};
globalThis.customElements ??= { define() {} };
const { mqttCostPerHour, AWS_PRICE_PER_MILLION_MESSAGES } = await import("../../../crates/controller/static/robot-video.js");

describe("MQTT video cost", () => {
  it("bills 5 KB units twice per frame at the documented rate", () => {
    assert.equal(AWS_PRICE_PER_MILLION_MESSAGES, 1.0);
    // 10 fps of 10 KB frames: 10 × 3600 × 2 units × 2 = 144,000 messages/h
    assert.ok(Math.abs(mqttCostPerHour(10, 10 * 1024) - 0.144) < 1e-9);
    // 15 fps of 17.5 KB (the default budget's worst case): 4 units → $0.432/h
    assert.ok(Math.abs(mqttCostPerHour(15, 17.5 * 1024) - 0.432) < 1e-9);
    // a tiny frame is still one whole unit
    assert.ok(Math.abs(mqttCostPerHour(1, 10) - 0.0072) < 1e-9);
    assert.equal(mqttCostPerHour(0, 5000), 0);
  });
});
