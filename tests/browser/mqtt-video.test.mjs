// <robot-video> through the broker, in headless Chromium against `gopigo
// demo`: the user picks MQTT with the path toggle, frames keep coming (now
// the robot's MQTT video relayed by the dashboard), and the element shows
// the path, fps, frame age and the running cost.
//
// Run: (cd tests/browser && node --test mqtt-video.test.mjs)   [needs target/debug/gopigo]
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { launch, sleep, startDemo, until } from "./demo.mjs";

// The dashboard's request asks for 10 s (REQUEST_TTL_MS) and is renewed
// every 3 s: once it stops asking, the robot stops within the TTL.
const TTL_MS = 10000;

/** Watches the robots' video topics on the broker with mosquitto_sub as the
 * demo's `operator` (a controller identity): when each message arrived. */
function watchVideo(demo) {
  const cfgPath = demo.info.operator_config;
  const text = readFileSync(cfgPath, "utf8");
  const mqtt = text.slice(text.indexOf("[mqtt]"));
  const key = (k) => new RegExp(`^${k}\\s*=\\s*"?([^"\\n]+)"?`, "m").exec(mqtt)[1];
  const file = (k) => path.resolve(path.dirname(cfgPath), key(k));
  const proc = spawn("mosquitto_sub", [
    "-h", key("host"), "-p", key("port"), "-i", key("client_id"),
    "--cafile", file("ca_file"), "--cert", file("cert_file"), "--key", file("key_file"),
    "-t", "gopigo/+/video", "-q", "0", "-F", "%t",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  const seen = [];
  let buf = "";
  let err = "";
  proc.stdout.on("data", (d) => {
    buf += d;
    const lines = buf.split("\n");
    buf = lines.pop();
    for (const t of lines) seen.push({ topic: t.trim(), at: Date.now() });
  });
  proc.stderr.on("data", (d) => { err += d; });
  const last = (thing) => seen.filter((m) => m.topic === `gopigo/${thing}/video`).at(-1)?.at ?? 0;
  return { seen, last, error: () => err, stop: () => proc.kill("SIGTERM") };
}

/** Waits until `thing`'s video has been quiet for 3 s; when its last frame came. */
async function videoStops(watch, thing, since) {
  await until(`${thing}'s video to stop`, async () => Date.now() - Math.max(watch.last(thing), since) > 3000,
    TTL_MS + 10000, 200);
  return watch.last(thing);
}

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

  it("stops asking for video when the tab is hidden or the robot deselected", async () => {
    // `page` still shows robot1 over MQTT (the first test); nothing else asks.
    assert.equal(await video(page, "path"), "mqtt");
    const watch = watchVideo(demo);
    try {
      await until("robot1's video on the broker", async () => watch.last("robot1") > 0, 20000);

      const hidden = Date.now();
      await page.evaluate(() => {
        Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
        document.dispatchEvent(new Event("visibilitychange"));
      });
      const lastHidden = await videoStops(watch, "robot1", hidden);
      assert.ok(lastHidden - hidden <= TTL_MS + 2000,
        `robot1 sent video ${lastHidden - hidden} ms after the tab was hidden`);

      // visible again: the video comes back; then another robot is selected
      await page.evaluate(() => {
        Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
        document.dispatchEvent(new Event("visibilitychange"));
      });
      const shown = Date.now();
      await until("robot1's video again", async () => watch.last("robot1") > shown, 20000);
      await page.locator('li[data-thing="robot2"] button').click();
      const deselected = Date.now();
      await until("robot2's video", async () => watch.last("robot2") > deselected, 20000);
      const lastDeselected = await videoStops(watch, "robot1", deselected);
      assert.ok(lastDeselected - deselected <= TTL_MS + 2000,
        `robot1 sent video ${lastDeselected - deselected} ms after it was deselected`);
      // robot2, on screen, still streams
      await sleep(1000);
      assert.ok(Date.now() - watch.last("robot2") < 3000, "robot2's video stopped too");
    } finally {
      watch.stop();
    }
    assert.ok(watch.seen.length > 0, `mosquitto_sub saw nothing: ${watch.error()}`);
  });
});
