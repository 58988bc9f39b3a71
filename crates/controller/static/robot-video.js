// <robot-video thing="robot1">: one robot's camera, read from the dashboard's
// /robots/{thing}/video with fetch() and split into frames by their part
// headers (multipart.js), drawn on a canvas with the detection boxes of the
// frame's capture time. The age shown is now minus the part's
// X-Captured-At-Ms (the camera's capture clock). Frames that arrive while one
// is being drawn are skipped: the newest wins.
//
// Its children, when the page provides them (else it makes its own):
// `canvas`, `[data-role=state]` (why there is no video), `[data-role=fps]`
// and `[data-role=age]`. Properties set by the page: `unavailable(thing)`
// (a reason, or null when the robot can stream) and `detections(thing,
// capturedMs)` (what to draw over a frame, or null).
//
// What it shows is also on the element, for scripts and tests: `data-frames`
// (frames drawn), `data-age-ms` (the last frame's age), `data-boxes` (boxes
// drawn), and a `frame` event per drawn frame, detail {seq, capturedAtMs,
// ageMs}.
//
// Two paths (docs/dashboard.md): direct MJPEG (/robots/{thing}/video) when
// the robot's camera answers, else the robot's video through the broker
// (/robots/{thing}/video/mqtt), also when the user picks "MQTT" with the
// `[data-role=path-toggle]` button. `[data-role=path]` says which path is in
// use and, for MQTT, the running cost; `data-path` holds "direct" or "mqtt".
// A hidden tab stops the stream (so the dashboard stops asking for video).

import { PartSplitter, numberHeader } from "./multipart.js";
import { classColor, detectionLabel } from "./format.js";

const RETRY_MS = 2000;
/** AWS IoT Core messaging, USD per million messages (us-east-1, first
 * billion a month; docs/dashboard.md). Each 5 KB of a message is one message;
 * an MQTT frame is billed when the robot publishes it and when it is delivered. */
export const AWS_PRICE_PER_MILLION_MESSAGES = 1.0;
const AWS_BILLING_UNIT_BYTES = 5 * 1024;

/** USD per hour of a stream of `fps` frames averaging `frameBytes`. */
export function mqttCostPerHour(fps, frameBytes) {
  const units = Math.max(1, Math.ceil(frameBytes / AWS_BILLING_UNIT_BYTES));
  return (fps * 3600 * units * 2 * AWS_PRICE_PER_MILLION_MESSAGES) / 1e6;
}
const FPS_WINDOW_MS = 1000;

export class RobotVideo extends HTMLElement {
  static observedAttributes = ["thing"];

  constructor() {
    super();
    this.unavailable = () => null;
    this.detections = () => null;
    this.abort = null;
    this.drawTimes = [];
    this.framesDrawn = 0;
    this.boxesDrawn = 0;
  }

  connectedCallback() {
    this.canvas = this.part("canvas", "canvas");
    this.stateEl = this.part("[data-role=state]", "div", "state");
    this.fpsEl = this.part("[data-role=fps]", "span", "fps");
    this.ageEl = this.part("[data-role=age]", "span", "age");
    this.pathEl = this.part("[data-role=path]", "span", "path");
    this.toggle = this.part("[data-role=path-toggle]", "button", "path-toggle");
    this.preferMqtt = false;
    this.toggle.textContent = "use MQTT";
    this.toggle.onclick = () => {
      this.preferMqtt = !this.preferMqtt;
      this.toggle.textContent = this.preferMqtt ? "use direct" : "use MQTT";
      this.restart();
    };
    this.onVisibility = () => (document.hidden ? this.stop() : this.restart());
    document.addEventListener("visibilitychange", this.onVisibility);
    // Numbers of a stalled stream must not look live.
    this.ticker = setInterval(() => this.showRate(Date.now()), FPS_WINDOW_MS);
    this.restart();
  }

  disconnectedCallback() {
    clearInterval(this.ticker);
    document.removeEventListener("visibilitychange", this.onVisibility);
    this.stop();
  }

  attributeChangedCallback() {
    if (this.canvas) this.restart(); // before connectedCallback, that one starts it
  }

  part(selector, tag, role) {
    let el = this.querySelector(selector);
    if (!el) {
      el = document.createElement(tag);
      if (role) el.dataset.role = role;
      this.append(el);
    }
    return el;
  }

  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
  }

  /** Starts over: for a newly selected robot, or one that became able to stream. */
  restart() {
    this.stop();
    this.drawTimes = [];
    this.canvas.getContext("2d").clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.fpsEl.textContent = "– fps";
    this.ageEl.textContent = "age –";
    const thing = this.getAttribute("thing");
    if (!thing || document.hidden) return;
    this.abort = new AbortController();
    this.run(thing, this.abort.signal);
  }

  setState(text) {
    this.stateEl.textContent = text || "";
    this.stateEl.hidden = !text;
  }

  async run(thing, signal) {
    while (!signal.aborted) {
      const why = this.unavailable(thing);
      if (why) this.setState(why);
      else if (this.preferMqtt || !(await this.stream(thing, signal, "direct"))) {
        if (!signal.aborted) await this.stream(thing, signal, "mqtt");
      }
      if (signal.aborted) return;
      await new Promise((res) => setTimeout(res, RETRY_MS));
    }
  }

  /** Streams one path; false when it never delivered a frame (try the other). */
  async stream(thing, signal, path) {
    const before = this.framesDrawn;
    this.path = path;
    this.dataset.path = path;
    this.bytes = [];
    this.showPath(Date.now());
    try {
      this.setState(path === "mqtt" ? "asking the robot for video through the broker…" : "connecting to the camera…");
      const url = `/robots/${encodeURIComponent(thing)}/video${path === "mqtt" ? "/mqtt" : ""}`;
      const resp = await fetch(url, { signal, cache: "no-store" });
      if (!resp.ok) {
        this.setState((await resp.text()).trim() || `video unavailable (HTTP ${resp.status})`);
        return false;
      }
      await this.readFrames(thing, resp.body.getReader(), signal);
      if (!signal.aborted) this.setState("video unavailable: the stream ended; retrying…");
    } catch (e) {
      if (!signal.aborted) this.setState(`video unavailable: ${e.message || e}`);
    }
    return this.framesDrawn > before;
  }

  /** Which path, and for MQTT the cost at the measured rate. */
  showPath(now) {
    if (!this.path) return;
    this.bytes = (this.bytes || []).filter(([t]) => t >= now - FPS_WINDOW_MS);
    if (this.path === "direct") {
      this.pathEl.textContent = "direct";
      return;
    }
    const n = this.bytes.length;
    const avg = n ? this.bytes.reduce((s, [, b]) => s + b, 0) / n : 0;
    const bytesPerS = this.bytes.reduce((s, [, b]) => s + b, 0);
    const cost = n ? mqttCostPerHour(n, avg) : 0;
    this.dataset.bytesPerS = bytesPerS;
    this.pathEl.textContent = `MQTT · ${(bytesPerS / 1024).toFixed(0)} KiB/s · MQTT video ≈ $${cost.toFixed(2)}/h`;
  }

  async readFrames(thing, reader, signal) {
    const splitter = new PartSplitter();
    let pending = null, drawing = false;
    const drawLatest = async () => {
      drawing = true;
      while (pending && !signal.aborted) {
        const part = pending;
        pending = null;
        await this.draw(thing, part);
      }
      drawing = false;
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || signal.aborted) return;
        const parts = splitter.push(value);
        if (!parts.length) continue;
        const now = Date.now();
        for (const p of parts) this.bytes.push([now, p.body.length]);
        pending = parts[parts.length - 1];
        if (!drawing) drawLatest();
      }
    } finally {
      reader.cancel().catch(() => {}); // a bad stream is not read on
    }
  }

  async draw(thing, { headers, body }) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(new Blob([body], { type: "image/jpeg" }));
    } catch {
      return;
    }
    const c = this.canvas;
    if (c.width !== bitmap.width || c.height !== bitmap.height) {
      c.width = bitmap.width;
      c.height = bitmap.height;
    }
    const ctx = c.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    if (bitmap.close) bitmap.close();
    const capturedAtMs = numberHeader(headers, "x-captured-at-ms");
    this.drawBoxes(ctx, this.detections(thing, capturedAtMs));
    this.drawn(capturedAtMs, numberHeader(headers, "x-frame-seq"), Date.now());
  }

  drawn(capturedAtMs, seq, now) {
    const ageMs = capturedAtMs == null ? null : now - capturedAtMs;
    this.framesDrawn++;
    this.dataset.frames = this.framesDrawn;
    if (ageMs != null) {
      this.dataset.ageMs = ageMs;
      this.ageEl.textContent = `age ${ageMs} ms`;
    }
    this.drawTimes.push(now);
    this.showRate(now);
    this.setState("");
    this.dispatchEvent(new CustomEvent("frame", { detail: { seq, capturedAtMs, ageMs } }));
  }

  showRate(now) {
    while (this.drawTimes.length && this.drawTimes[0] < now - FPS_WINDOW_MS) this.drawTimes.shift();
    this.fpsEl.textContent = `${this.drawTimes.length} fps`;
    this.showPath(now);
    if (!this.drawTimes.length) this.ageEl.textContent = "age –";
  }

  /** Boxes and labels of `d` (a `detections` message), scaled to the frame. */
  drawBoxes(ctx, d) {
    if (!d) return;
    const { width: w, height: h } = this.canvas;
    const sx = w / (d.width || w), sy = h / (d.height || h);
    ctx.lineWidth = Math.max(2, w / 320);
    ctx.font = `${Math.max(12, Math.round(w / 40))}px system-ui`;
    for (const det of d.detections) {
      const [x, y, bw, bh] = det.box;
      const color = classColor(det.class);
      ctx.strokeStyle = color;
      ctx.strokeRect(x * sx, y * sy, bw * sx, bh * sy);
      const label = detectionLabel(det);
      const tw = ctx.measureText(label).width + 6;
      const th = parseInt(ctx.font, 10) + 4;
      const ly = y * sy > th ? y * sy - th : y * sy;
      ctx.fillStyle = color;
      ctx.fillRect(x * sx, ly, tw, th);
      ctx.fillStyle = "#000";
      ctx.fillText(label, x * sx + 3, ly + th - 4);
    }
    this.boxesDrawn += d.detections.length;
    this.dataset.boxes = this.boxesDrawn;
  }
}

customElements.define("robot-video", RobotVideo);
