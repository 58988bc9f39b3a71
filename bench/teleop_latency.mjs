// Teleop and video latency of the dashboard, end to end, printed as a table.
//
//   key-down (key-up) → motor frame: from the browser's keydown (keyup) event (its timestamp,
//   on the Unix clock through performance.timeOrigin) to the first SPI motor
//   frame the simulated GoPiGo3 board received after it (the agent's sim
//   debug endpoint logs each frame's wall-clock time). The path: page →
//   WebSocket → dashboard → MQTT over mutual TLS → local core → agent →
//   executor → SPI.
//
//   video frame age: capture time stamped by the simulated camera (the
//   X-Captured-At-Ms header of each part the dashboard re-serves) to the
//   moment the page drew the frame on its canvas. The path: camera → agent's
//   MJPEG server → dashboard proxy → fetch() stream → createImageBitmap →
//   canvas.
//
// The page has no test hooks: the bench listens for itself (key events on
// the document, <robot-video>'s `frame` events) in window.__bench.
//
// Both clocks are this machine's. Run after `cargo build -p gopigo` and
// `(cd tests/browser && npm ci)`:
//   node bench/teleop_latency.mjs [--presses 40] [--video-seconds 10]
import { launch, sim, sleep, startDemo, until } from "../tests/browser/demo.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const PRESSES = arg("--presses", 40);
const VIDEO_S = arg("--video-seconds", 10);

function pct(values, p) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)];
}

const demo = await startDemo(["--no-detect"]);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await page.goto(demo.url);
  await page.locator('li[data-thing="robot1"] button[data-online="true"]').waitFor({ timeout: 60000 });
  await until("video", () => page.evaluate(() => Number(document.querySelector("robot-video").dataset.frames || 0) > 3), 30000);
  await page.evaluate(() => {
    const b = (window.__bench = { keyDowns: [], keyUps: [], frameAges: [], framesDrawn: 0 });
    const at = (e) => performance.timeOrigin + e.timeStamp;
    document.addEventListener("keydown", (e) => { if (!e.repeat) b.keyDowns.push(at(e)); }, true);
    document.addEventListener("keyup", (e) => b.keyUps.push(at(e)), true);
    document.querySelector("robot-video").addEventListener("frame", (e) => {
      b.framesDrawn++;
      if (e.detail.ageMs != null) b.frameAges.push(e.detail.ageMs);
    });
  });
  await page.locator("body").click({ position: { x: 5, y: 5 } });

  // Teleop: spin in place (Q) so that the robot never reaches a wall.
  const lat = [];
  const stopLat = [];
  for (let i = 0; i < PRESSES; i++) {
    await until("robot stopped", async () => (await sim(demo, "robot1")).wheel_dps.left === 0, 5000, 20);
    await sleep(150 + Math.random() * 100);
    const before = await page.evaluate(() => window.__bench.keyDowns.length);
    await page.keyboard.down("q");
    const down = await until("the keydown", () => page.evaluate((n) => window.__bench.keyDowns[n], before), 2000, 5);
    const frame = await until("a motor frame", async () => {
      const s = await sim(demo, "robot1");
      return s.motor_frames.find((f) => f.unix_us / 1000 > down && /Dps|Pwm|Position/.test(f.message));
    }, 5000, 10);
    lat.push(frame.unix_us / 1000 - down);
    await sleep(200);
    const ups = await page.evaluate(() => window.__bench.keyUps.length);
    await page.keyboard.up("q");
    const up = await until("the keyup", () => page.evaluate((n) => window.__bench.keyUps[n], ups), 2000, 5);
    const stopFrame = await until("a stop frame", async () => {
      const s = await sim(demo, "robot1");
      return s.motor_frames.find((f) => f.unix_us / 1000 > up && /Dps|Pwm|Float/.test(f.message));
    }, 5000, 10);
    stopLat.push(stopFrame.unix_us / 1000 - up);
  }

  // Video frame age while the page shows robot1.
  await page.evaluate(() => { window.__bench.frameAges.length = 0; window.__bench.framesDrawn = 0; });
  await sleep(VIDEO_S * 1000);
  const ages = await page.evaluate(() => [...window.__bench.frameAges]);
  const drawn = await page.evaluate(() => window.__bench.framesDrawn);

  const rows = [
    ["teleop key-down → first SPI motor frame", lat],
    ["teleop key-up → first SPI motor frame (stop)", stopLat],
    ["video frame age when drawn", ages],
  ];
  console.log("");
  console.log("| metric | n | p50 ms | p99 ms | max ms |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const [name, v] of rows) {
    console.log(`| ${name} | ${v.length} | ${pct(v, 50).toFixed(1)} | ${pct(v, 99).toFixed(1)} | ${Math.max(...v).toFixed(1)} |`);
  }
  console.log(`\nvideo: ${(drawn / VIDEO_S).toFixed(1)} frames drawn per second (camera set to 10 fps); ` +
    `machine: ${(await import("node:os")).cpus().length} CPUs, load ${(await import("node:os")).loadavg()[0].toFixed(2)}`);
} finally {
  await browser.close();
  await demo.stop();
}
