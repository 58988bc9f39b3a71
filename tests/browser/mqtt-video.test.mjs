// <robot-video> through the broker, in headless Chromium against `gopigo
// demo`: the user picks MQTT with the path toggle, frames keep coming (now
// the robot's MQTT video relayed by the dashboard), and the element shows
// the path, fps, frame age and the running cost.
//
// Run: (cd tests/browser && node --test mqtt-video.test.mjs)   [needs target/debug/gopigo]
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, startDemo, until } from "./demo.mjs";

const video = (page, key) => page.evaluate((k) => document.querySelector("robot-video").dataset[k], key);

describe("MQTT video in the dashboard", { timeout: 300000 }, () => {
  let demo, browser, page;

  before(async () => {
    demo = await startDemo();
    browser = await launch();
    page = await browser.newPage();
    await page.goto(demo.url);
  });

  after(async () => {
    if (browser) await browser.close();
    if (demo) await demo.stop();
  });

  it("switches to MQTT video on request and shows path, fps, age and cost", async () => {
    await until("direct frames", async () => Number(await video(page, "frames") || 0) > 2, 60000);
    assert.equal(await video(page, "path"), "direct");
    await page.locator("[data-role=path-toggle]").click();
    await until("the MQTT path", async () => (await video(page, "path")) === "mqtt", 10000);
    const before = Number(await video(page, "frames"));
    await until("MQTT frames", async () => Number(await video(page, "frames")) > before + 5, 60000);
    const text = await page.locator("robot-video [data-role=path]").innerText();
    assert.match(text, /^MQTT · \d+ KiB\/s · MQTT video ≈ \$\d+\.\d\d\/h$/);
    assert.match(await page.locator("#frame-age").innerText(), /^age \d+ ms$/);
    assert.ok(Number(await video(page, "bytesPerS")) > 0);
  });

  it("falls back to MQTT video when the robot's camera does not answer", async () => {
    // A second page whose direct camera route fails, as for a robot behind
    // NAT: the dashboard cannot reach the camera, the broker still can.
    const other = await browser.newPage();
    await other.route(/\/robots\/[^/]+\/video$/, (route) => route.abort("connectionrefused"));
    await other.goto(demo.url);
    await until("MQTT frames", async () => (await video(other, "path")) === "mqtt"
      && Number(await video(other, "frames") || 0) > 3, 60000);
    assert.match(await other.locator("robot-video [data-role=path]").innerText(), /MQTT video ≈ \$/);
    await other.close();
  });
});
