// The dashboard in a real browser (Debian's Chromium, headless, driven by
// playwright-core) against `gopigo demo`: two simulated robots, the local
// core, the dashboard. Screenshots go to tests/artifacts/.
//
// Run: (cd tests/browser && npm ci && npm test)   [needs target/debug/gopigo]
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { ARTIFACTS, GOPIGO, alive, launch, sim, sleep, startDemo, until } from "./demo.mjs";

// A loopback port that was free a moment ago (and is closed now).
const closedPort = () => new Promise((res) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const { port } = s.address();
    s.close(() => res(port));
  });
});

// What the page shows, read from its DOM: the production page has no
// test hooks (no window.__… object); <robot-video> keeps its counts in data
// attributes and fires a `frame` event per drawn frame.
const framesDrawn = (page) => page.evaluate(() => Number(document.querySelector("robot-video").dataset.frames || 0));

const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, `dashboard-${name}.png`) });

describe("dashboard against gopigo demo", { timeout: 600000 }, () => {
  let demo, browser, context, page;
  const cspViolations = [];

  before(async () => {
    demo = await startDemo();
    browser = await launch();
    // One context (one cookie jar), as one browser profile: the attack
    // below opens its page beside the operator's.
    context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    page = await context.newPage();
    page.on("pageerror", (e) => console.error("page error:", e));
    page.on("console", (m) => { if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text()); });
    await page.goto(demo.url);
  });

  after(async () => {
    if (browser) await browser.close();
    if (demo) {
      const pids = [demo.info.core_pid, demo.info.dashboard_pid,
        ...Object.values(demo.info.robots).map((r) => r.pid),
        ...Object.values(demo.info.detectors || {}).map((d) => d.pid)];
      const { code } = await demo.stop();
      assert.equal(code, 0, `gopigo demo exit code; output:\n${demo.output()}`);
      // Ctrl-C leaves no process behind.
      await until("every child to be gone", () => pids.every((p) => !alive(p)), 10000);
    }
  });

  it("signs in from the printed URL and lands on the clean URL", async () => {
    assert.equal(page.url(), demo.cleanUrl, "redirected to the URL without the token");
    const cookies = await page.context().cookies(demo.cleanUrl);
    const session = cookies.find((c) => c.name.startsWith("gopigo_dashboard_"));
    assert.ok(session, `a session cookie (${JSON.stringify(cookies)})`);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    assert.notEqual(session.value, demo.token, "the cookie is not the token");
    assert.equal(await page.evaluate(() => document.cookie), "", "scripts cannot read the session");
    // a browser that has not signed in sees only the sign-in form
    const other = await browser.newPage();
    const resp = await other.goto(demo.cleanUrl);
    assert.equal(resp.status(), 401);
    assert.ok(await other.locator('input[name="token"]').isVisible());
    await other.locator('input[name="token"]').fill(demo.token);
    await other.locator('button[type="submit"]').click();
    await other.locator('li[data-thing="robot1"]').waitFor({ timeout: 30000 });
    assert.equal(other.url(), demo.cleanUrl);
    await other.close();
  });

  it("lists both robots online with their battery", async () => {
    for (const thing of ["robot1", "robot2"]) {
      await page.locator(`li[data-thing="${thing}"] button[data-online="true"]`).waitFor({ timeout: 30000 });
    }
    await until("a battery reading", async () => /\d+\.\d\d V/.test(await page.locator('li[data-thing="robot1"]').innerText()));
    assert.match(await page.locator("#broker").innerText(), /broker/);
    await shot(page, "fleet-1280x720");
  });

  it("follows only the selected robot at full rate, and none while the tab is hidden", async () => {
    // What the dashboard's broker connection is subscribed to at full rate,
    // as its own API says (docs/dashboard.md, "What is subscribed when").
    const fullRate = async () => (await page.evaluate(async () => (await fetch("/api/fleet")).json())).on_screen.full_rate.join(",");
    const setHidden = (hidden) => page.evaluate((h) => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => h });
      document.dispatchEvent(new Event("visibilitychange"));
    }, hidden);
    const reading = /\d+\.\d\d V/;
    const row = (thing) => page.locator(`li[data-thing="${thing}"]`).innerText();
    await until("robot1 followed", async () => (await fullRate()) === "robot1", 10000);
    // robot2 is online in the list, from its status, but none of its
    // telemetry (the battery) has reached the dashboard
    assert.doesNotMatch(await row("robot2"), reading);
    await page.locator('li[data-thing="robot2"] button').click();
    await until("the subscription to move to robot2", async () => (await fullRate()) === "robot2", 10000);
    await until("robot2's telemetry", async () => reading.test(await row("robot2")), 10000);
    await setHidden(true);
    await until("nothing followed while hidden", async () => (await fullRate()) === "", 10000);
    await setHidden(false);
    await until("robot2 followed again", async () => (await fullRate()) === "robot2", 10000);
    assert.ok(await page.locator("#full-rate").isHidden(), "no 'waiting for a full-rate slot' note");
    await page.locator('li[data-thing="robot1"] button').click();
    await until("back on robot1", async () => (await fullRate()) === "robot1", 10000);
  });

  it("draws video frames with their FPS and age", async () => {
    await until("frames to be drawn", async () => (await framesDrawn(page)) > 5, 30000);
    assert.ok(await page.locator("#video-state").isHidden(), "no 'video unavailable' over live video");
    const fps = await page.locator("#fps").innerText();
    assert.match(fps, /^[1-9]\d* fps$/);
    assert.match(await page.locator("#frame-age").innerText(), /^age \d+ ms$/);
    // The frames are the robot's own: each part of the stream carries the
    // simulated camera's capture time and sequence number as headers.
    const frame = await page.evaluate(() => new Promise((res) =>
      document.querySelector("robot-video").addEventListener("frame", (e) => res({ ...e.detail, now: Date.now() }), { once: true })));
    assert.ok(Number.isInteger(frame.seq) && frame.seq > 0, `a frame sequence number (${JSON.stringify(frame)})`);
    assert.ok(frame.capturedAtMs <= frame.now && frame.capturedAtMs > frame.now - 60000,
      `a capture time from this run (${JSON.stringify(frame)})`);
    assert.ok(frame.ageMs >= 0 && frame.capturedAtMs + frame.ageMs <= frame.now,
      `the age shown counts from the capture time (${JSON.stringify(frame)})`);
    assert.deepEqual(await page.evaluate(() => Object.keys(window).filter((k) => k.startsWith("__"))), [],
      "no test hooks on the production page");
    await shot(page, "video");
  });

  it("clicking forward moves the robot and changes its telemetry", async () => {
    const encoders = () => page.evaluate(() => {
      const v = document.getElementById("telemetry").dataset.encoderLeftDeg;
      return v === undefined ? undefined : Number(v);
    });
    const { v: before } = await until("telemetry", async () => {
      const v = await encoders();
      return typeof v === "number" ? { v } : null;
    });
    const poseBefore = (await sim(demo, "robot1")).pose.x_mm;
    await page.locator('.dir[data-dir="forward"]').click();
    await until("the encoders to advance", async () => (await encoders()) > before + 20, 5000);
    assert.ok((await sim(demo, "robot1")).pose.x_mm > poseBefore, "the simulated robot moved forward");
    await until("a logged command", async () => (await page.locator("#log li").count()) > 0);
    assert.match(await page.locator("#log").innerText(), /drive forward/);
  });

  it("a page from another origin cannot read the fleet, open the WebSocket or move the robot", async () => {
    // The attacker's page, on another loopback port, opened in the same
    // browser (same cookie jar) where the operator is signed in.
    const evil = createHttpServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>cute cats</title><p>nothing to see</p>");
    });
    await new Promise((res) => evil.listen(0, "127.0.0.1", res));
    const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
    const p = await context.newPage();
    try {
      await until("robot1 to be stopped", async () => (await sim(demo, "robot1")).wheel_dps.left === 0, 5000);
      const before = (await sim(demo, "robot1")).pose;
      await p.goto(evilUrl);
      const got = await p.evaluate(async (dash) => {
        const out = {};
        try {
          const r = await fetch(dash + "api/fleet", { credentials: "include" });
          out.fetch = `read ${r.status}: ${await r.text()}`;
        } catch (e) { out.fetch = `error: ${e.message}`; }
        out.ws = await new Promise((done) => {
          const msgs = [];
          let opened = false;
          const ws = new WebSocket(dash.replace(/^http/, "ws") + "ws");
          ws.onopen = () => {
            opened = true;
            for (let i = 0; i < 5; i++) {
              ws.send(JSON.stringify({ type: "command", thing: "robot1",
                command: { action: "drive", direction: "forward", duration_ms: 3000 } }));
            }
          };
          ws.onmessage = (m) => msgs.push(String(m.data));
          ws.onclose = (ev) => done({ opened, code: ev.code, msgs });
          setTimeout(() => done({ opened, timeout: true, msgs }), 5000);
        });
        return out;
      }, demo.cleanUrl);
      console.log(`# evil page: fetch -> ${got.fetch}; ws -> opened=${got.ws.opened} code=${got.ws.code}`);
      assert.match(got.fetch, /^error/, "the fleet is unreadable from another origin");
      assert.equal(got.ws.opened, false, "the WebSocket does not open");
      assert.equal(got.ws.msgs.length, 0, "nothing is received");
      await sleep(1500);
      const after = await sim(demo, "robot1");
      assert.deepEqual(after.pose, before, "the robot did not move");
      assert.equal(after.wheel_dps.left, 0);
      // the operator's own page still drives
      await page.bringToFront();
      const x0 = after.pose.x_mm;
      await page.locator('.dir[data-dir="forward"]').click();
      await until("the robot to move for its operator", async () => (await sim(demo, "robot1")).pose.x_mm > x0 + 10, 5000);
    } finally {
      await p.close();
      evil.close();
    }
  });

  it("holding a key drives and releasing it stops", async () => {
    await until("robot1 to be stopped", async () => (await sim(demo, "robot1")).wheel_dps.left === 0, 5000);
    await page.locator("body").click({ position: { x: 5, y: 700 } });
    await page.keyboard.down("ArrowUp");
    await until("wheels turning while the key is held", async () => (await sim(demo, "robot1")).wheel_dps.left > 0, 3000, 20);
    // Still driving well after one heartbeat drive (400 ms) would have ended.
    await sleep(1200);
    assert.ok((await sim(demo, "robot1")).wheel_dps.left > 0, "still driving after 1.2 s of holding");
    await page.keyboard.up("ArrowUp");
    const released = Date.now();
    await until("wheels stopped after release", async () => (await sim(demo, "robot1")).wheel_dps.left === 0, 2000, 20);
    console.log(`# stopped ${Date.now() - released} ms after key release`);
  });

  it("stops when the tab loses focus while a key is held", async () => {
    await page.keyboard.down("q");
    await until("spinning", async () => (await sim(demo, "robot1")).wheel_dps.left !== 0, 3000, 20);
    await page.evaluate(() => window.dispatchEvent(new Event("blur")));
    await until("stopped after blur", async () => (await sim(demo, "robot1")).wheel_dps.left === 0, 2000, 20);
    await page.keyboard.up("q");
  });

  it("shows a rejected command with the robot's reason", async () => {
    const s = await sim(demo, "robot1");
    // A wall 100 mm in front of the robot (it faces +x at the start).
    const x = s.pose.x_mm + 100;
    await fetch(demo.info.robots.robot1.sim_url + "/obstacle", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ x_mm: x, y_mm: s.pose.y_mm - 500, w_mm: 50, h_mm: 1000 }),
    });
    await page.locator('.dir[data-dir="forward"]').click();
    // The obstacle's rejection, not an earlier one: a heartbeat drive still
    // queued when the previous test's stop arrived is rejected as cancelled.
    const rejected = page.locator("#log li.rejected", { hasText: "obstacle" }).first();
    await rejected.waitFor({ timeout: 5000 });
    assert.match(await rejected.innerText(), /rejected: obstacle/);
    assert.match(await page.locator("#toast").innerText(), /rejected/);
    await shot(page, "rejected");
    await fetch(demo.info.robots.robot1.sim_url.replace(/\/sim$/, "/sim/obstacles"), { method: "DELETE" });
  });

  it("sets the servo and the eyes through the shadow and shows what the robot reported", async () => {
    await page.locator("#servo").fill("30");
    await page.locator("#servo-set").click();
    await page.locator("#led").fill("#ff8000");
    await page.locator("#led-set").click();
    await until("the reported settings", async () => {
      const t = await page.locator("#shadow-state").innerText();
      return /servo 30°/.test(t) && /eyes rgb\(255,128,0\)/.test(t);
    }, 10000);
  });

  it("draws detection boxes, or says why detection is unavailable", async () => {
    if (demo.info.detection_note) {
      await until("the detection note", async () => /detection unavailable/.test(await page.locator("#det-state").innerText()));
      console.log(`# detection unavailable: ${demo.info.detection_note}`);
    } else {
      await until("boxes drawn", () => page.evaluate(() => Number(document.querySelector("robot-video").dataset.boxes || 0) > 0), 60000);
      await shot(page, "detections");
    }
  });

  it("keyboard only: tab to the controls, see the focus, select a robot", async () => {
    const kb = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await kb.goto(demo.url);
    await kb.locator('li[data-thing="robot2"] button').waitFor();
    const seen = new Set();
    let outline = null;
    for (let i = 0; i < 30; i++) {
      await kb.keyboard.press("Tab");
      const f = await kb.evaluate(() => {
        const el = document.activeElement;
        const cs = getComputedStyle(el);
        return { id: el.id, dir: el.dataset.dir || null, thing: el.closest("li")?.dataset.thing || null,
          outline: cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2 };
      });
      seen.add(f.thing ? `robot:${f.thing}` : f.dir ? `dir:${f.dir}` : f.id);
      if (f.dir === "forward") outline = f.outline;
      if (f.thing === "robot2") {
        await kb.keyboard.press("Enter");
        await until("robot2 selected", async () => (await kb.locator("#robot-title").innerText()) === "robot2", 3000);
      }
    }
    for (const want of ["robot:robot1", "robot:robot2", "dir:forward", "stop", "speed", "servo-set", "led-set"]) {
      assert.ok(seen.has(want), `Tab reaches ${want} (reached: ${[...seen].join(", ")})`);
    }
    assert.equal(outline, true, "focused controls show a visible outline");
    await shot(kb, "keyboard-focus");
    // Drive robot2 with the keyboard alone: Enter on the focused forward
    // button nudges it; holding W drives until released.
    assert.equal(await kb.locator("#robot-title").innerText(), "robot2");
    await kb.locator('.dir[data-dir="forward"]').focus();
    const x0 = (await sim(demo, "robot2")).pose.x_mm;
    await kb.keyboard.press("Enter");
    await until("robot2 nudged forward", async () => (await sim(demo, "robot2")).pose.x_mm > x0 + 20, 5000);
    await until("robot2 stopped after the nudge", async () => (await sim(demo, "robot2")).wheel_dps.left === 0, 5000, 20);
    await kb.keyboard.down("w");
    await until("robot2 driving while W is held", async () => (await sim(demo, "robot2")).wheel_dps.left > 0, 3000, 20);
    await kb.keyboard.up("w");
    await until("robot2 stopped on release", async () => (await sim(demo, "robot2")).wheel_dps.left === 0, 2000, 20);
    await kb.close();
  });

  for (const [name, viewport] of [["1280x720", { width: 1280, height: 720 }], ["phone-390x844", { width: 390, height: 844 }]]) {
    it(`is usable at ${name}`, async () => {
      const p = await browser.newPage({ viewport, hasTouch: name.startsWith("phone") });
      await p.goto(demo.url);
      await p.locator('li[data-thing="robot1"] button[data-online="true"]').waitFor();
      await until("video", async () => (await framesDrawn(p)) > 0, 20000);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling (overflow ${overflow}px)`);
      for (const sel of [".dir", "#stop", "#speed", "#servo-set", "#led-set", "#video"]) {
        for (const el of await p.locator(sel).all()) {
          await el.scrollIntoViewIfNeeded();
          const b = await el.boundingBox();
          assert.ok(b && b.width > 0 && b.x >= 0 && b.x + b.width <= viewport.width + 0.5,
            `${sel} lies within the ${viewport.width}px wide viewport (${JSON.stringify(b)})`);
          if (sel !== "#video") assert.ok(b.height >= 24 || sel === "#speed", `${sel} is big enough to hit (${b.height}px)`);
        }
      }
      await p.evaluate(() => window.scrollTo(0, 0));
      await p.screenshot({ path: path.join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });
      await p.close();
    });
  }

  it("says the broker is unreachable and disables driving", async () => {
    // A second dashboard whose broker port has nobody listening.
    const dir = mkdtempSync(path.join(tmpdir(), "gopigo-dash-"));
    const cfg = readFileSync(demo.info.dashboard_config, "utf8")
      .replace(/^port = \d+$/m, `port = ${await closedPort()}`)
      // the bundle names its files relative to itself: point at them from the copy
      .replace(/^(\w+_file) = "(?!\/)/gm, `$1 = "${path.dirname(demo.info.dashboard_config)}/`);
    writeFileSync(path.join(dir, "controller.toml"), cfg);
    const dash = spawn(GOPIGO, ["dashboard", "--config", path.join(dir, "controller.toml"), "--port", "0"],
      { stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      dash.stdout.on("data", (d) => { out += d; });
      const url = await until("the dashboard URL", () => (/(http:\/\/\S+)/.exec(out) || [])[1], 20000);
      const p = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      await p.goto(url);
      await until("the unreachable banner", async () => /Broker .* unreachable/.test(await p.locator("#banner").innerText()), 10000);
      assert.match(await p.locator("#broker").innerText(), /unreachable/);
      await shot(p, "broker-unreachable");
      await p.close();
    } finally {
      dash.kill("SIGTERM");
    }
  });

  it("runs under its Content-Security-Policy without violations", async () => {
    assert.deepEqual(cspViolations, [], "no CSP violation was reported on the console");
  });

  it("shows a robot offline when its agent stops", async () => {
    const pid = demo.info.robots.robot2.pid;
    process.kill(pid, "SIGKILL");   // no goodbye: the broker notices and sends the will
    const t0 = Date.now();
    await page.locator('li[data-thing="robot2"] button[data-online="false"]').waitFor({ timeout: 45000 });
    console.log(`# robot2 shown offline ${Date.now() - t0} ms after its agent was killed`);
    await page.locator('li[data-thing="robot2"] button').click();
    await until("offline notice", async () => /offline/.test(await page.locator("#robot-offline").innerText()));
    assert.ok(await page.locator('.dir[data-dir="forward"]').isDisabled(), "driving is disabled for an offline robot");
    await until("video unavailable", async () => /unavailable/.test(await page.locator("#video-state").innerText()), 10000);
    await shot(page, "robot-offline");
  });
});
