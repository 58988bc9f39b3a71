// GoPiGo fleet dashboard: one WebSocket to the dashboard server (state in,
// commands out) and, for the selected robot, its MJPEG stream read with
// fetch() so that each frame can be timed and drawn with its detection boxes.
"use strict";

const $ = (id) => document.getElementById(id);
const HEARTBEAT_MS = 150;     // re-send while a drive is held
const HOLD_DRIVE_MS = 400;    // each re-sent drive lasts this long
const NUDGE_MS = 400;         // Enter on a focused button drives this long
const PLOT_WINDOW_MS = 60000;
const DETECTION_TTL_MS = 1500;

const state = {
  ws: null, wsOpen: false, broker: null, detectionNote: null,
  robots: new Map(),          // thing -> RobotView
  selected: null,
  telemetry: new Map(),       // thing -> array of {t, battery, distance, left, right}
  lastTelemetry: new Map(),
  detections: new Map(),      // thing -> newest {at, msg}
  recentDetections: new Map(),// thing -> the last few, to match frames by capture time
  detTimes: [],
  log: [],                    // {id, thing, text, cls}
  hold: null,                 // {dir, timer, started, source}
  video: null,                // {thing, abort}
  frames: [],                 // draw times for fps
};
// For the browser test and the latency benchmark.
window.__gopigo = { keyDowns: [], keyUps: [], frameAges: [], framesDrawn: 0, sent: [], state };

function fmtAgo(ms) {
  if (ms == null) return "never";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 2) return "just now";
  if (s < 90) return `${s.toFixed(0)} s ago`;
  if (s < 5400) return `${(s / 60).toFixed(0)} min ago`;
  return new Date(ms).toLocaleString();
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

// ---- WebSocket -------------------------------------------------------------

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  state.ws = ws;
  ws.onopen = () => { state.wsOpen = true; renderBanner(); };
  ws.onclose = () => {
    state.wsOpen = false;
    renderBanner();
    stopHold(false);
    setTimeout(reconnect, 1000);
  };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    handle(msg);
  };
}

// A dashboard restarted since this page signed in has a new session secret:
// go to the sign-in page rather than retrying for ever.
async function reconnect() {
  try {
    const r = await fetch("/api/fleet", { cache: "no-store" });
    if (r.status === 401) { location.assign("/"); return; }
  } catch { /* server down: keep retrying */ }
  connect();
}

function send(obj) {
  if (!state.wsOpen) {
    toast("Not sent: the dashboard server is unreachable.");
    return false;
  }
  state.ws.send(JSON.stringify(obj));
  return true;
}

function handle(msg) {
  switch (msg.type) {
    case "hello":
      state.robots = new Map(msg.robots.map((r) => [r.thing, r]));
      state.broker = msg.broker;
      state.detectionNote = msg.detection && msg.detection.note;
      if (!state.selected && msg.robots.length) select(msg.robots[0].thing);
      renderAll();
      break;
    case "broker":
      state.broker = msg.broker;
      renderBanner();
      renderRobot();
      break;
    case "robot": {
      const prev = state.robots.get(msg.robot.thing);
      state.robots.set(msg.robot.thing, msg.robot);
      if (!state.selected) select(msg.robot.thing);
      renderFleet();
      if (msg.robot.thing === state.selected) {
        renderRobot();
        if (prev && prev.reported == null && msg.robot.reported != null) syncSettingInputs();
        const ready = (r) => r && r.online && r.has_camera;
        if (prev && !ready(prev) && ready(msg.robot)) restartVideo();
        if (!msg.robot.online) stopHold(false);
      }
      break;
    }
    case "telemetry": onTelemetry(msg.thing, msg.telemetry); break;
    case "detections": onDetections(msg.thing, msg.detections); break;
    case "result": onResult(msg.thing, msg.result); break;
    case "sent": onSent(msg.thing, msg.command); break;
    case "shadow_sent":
      if (msg.thing === state.selected) $("shadow-state").textContent = `desired sent: ${JSON.stringify(msg.desired)}`;
      break;
    case "error":
      toast(msg.message);
      addLog(msg.thing || "-", `refused: ${msg.message}`, "rejected", msg.id);
      break;
  }
}

// ---- fleet list --------------------------------------------------------------

function renderFleet() {
  const ul = $("robots");
  const things = [...state.robots.keys()].sort();
  $("no-robots").hidden = things.length > 0;
  // Re-use items so keyboard focus survives updates.
  const existing = new Map([...ul.children].map((li) => [li.dataset.thing, li]));
  for (const thing of things) {
    const r = state.robots.get(thing);
    let li = existing.get(thing);
    if (!li) {
      li = document.createElement("li");
      li.dataset.thing = thing;
      const b = document.createElement("button");
      b.type = "button";
      b.className = "robot-btn";
      b.addEventListener("click", () => select(thing));
      li.appendChild(b);
      ul.appendChild(li);
    }
    existing.delete(thing);
    const b = li.firstChild;
    b.setAttribute("aria-current", thing === state.selected ? "true" : "false");
    b.dataset.online = r.online ? "true" : "false";
    const battery = r.battery_v != null ? `${r.battery_v.toFixed(2)} V` : "– V";
    b.innerHTML = "";
    const name = document.createElement("span");
    name.className = "name";
    const dot = document.createElement("span");
    dot.className = r.online ? "dot on" : "dot";
    name.append(dot, document.createTextNode(thing));
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${r.online ? "online" : "offline"} · ${battery} · seen ${fmtAgo(r.last_seen_ms)}`;
    b.append(name, document.createElement("br"), meta);
    b.setAttribute("aria-label", `${thing}, ${r.online ? "online" : "offline"}, battery ${battery}`);
  }
  for (const li of existing.values()) li.remove();
}

function select(thing) {
  if (state.selected === thing) return;
  stopHold(true);
  state.selected = thing;
  $("log").innerHTML = "";
  for (const e of state.log.filter((e) => e.thing === thing)) appendLogItem(e);
  renderAll();
  syncSettingInputs();
  restartVideo();
}

// Show the selected robot's own settings in the inputs (reported, else desired).
function syncSettingInputs() {
  const r = state.robots.get(state.selected);
  if (!r) return;
  const rep = r.reported || {}, des = r.desired || {};
  const angle = rep.servo_angle ?? des.servo_angle;
  if (angle != null) { $("servo").value = angle; $("servo-val").textContent = $("servo").value; }
  const led = rep.led ?? des.led;
  if (Array.isArray(led)) $("led").value = "#" + led.map((v) => v.toString(16).padStart(2, "0")).join("");
  const speed = rep.speed_dps ?? des.speed_dps;
  if (speed != null) { $("speed").value = speed; $("speed-val").textContent = $("speed").value; }
}

// ---- selected robot ------------------------------------------------------------

function controlsEnabled() {
  const r = state.robots.get(state.selected);
  return !!(r && r.online && state.broker && state.broker.connected && state.wsOpen);
}

function renderRobot() {
  const r = state.robots.get(state.selected);
  $("robot").hidden = !r;
  if (!r) return;
  $("robot-title").textContent = r.thing;
  const st = $("robot-state");
  st.textContent = r.online ? "online" : "offline";
  st.className = r.online ? "pill pill-ok" : "pill pill-bad";
  $("robot-seen").textContent = `last seen ${fmtAgo(r.last_seen_ms)}${r.version ? " · agent " + r.version : ""}`;
  const off = $("robot-offline");
  if (!r.online) {
    const since = r.since_ms ? ` since ${new Date(r.since_ms).toLocaleTimeString()}` : "";
    off.textContent = `${r.thing} is offline${since}${r.offline_reason ? " (" + r.offline_reason + ")" : ""}. Commands are disabled until it reconnects.`;
    off.hidden = false;
  } else {
    off.hidden = true;
  }
  const enabled = controlsEnabled();
  for (const el of document.querySelectorAll(".controls button, .controls input")) el.disabled = !enabled;
  const d = r.desired || {}, rep = r.reported || {};
  const parts = [];
  if (rep.servo_angle != null) parts.push(`servo ${rep.servo_angle}°`);
  if (rep.led) parts.push(`eyes rgb(${rep.led.join(",")})`);
  if (rep.speed_dps != null) parts.push(`speed ${rep.speed_dps}`);
  const pending = Object.keys(d).filter((k) => JSON.stringify(d[k]) !== JSON.stringify(rep[k]));
  $("shadow-state").textContent = (parts.length ? `reported: ${parts.join(", ")}` : "reported: –") +
    (pending.length ? ` · pending: ${pending.join(", ")}` : "");
  renderDetState();
}

function renderBanner() {
  const b = $("banner"), pill = $("broker");
  let text = "";
  if (!state.wsOpen) {
    text = "The dashboard server is unreachable; reconnecting…";
    pill.textContent = "dashboard offline";
    pill.className = "pill pill-bad";
  } else if (!state.broker || !state.broker.connected) {
    const why = state.broker && state.broker.error ? `: ${state.broker.error}` : "";
    text = `Broker ${state.broker ? state.broker.endpoint : ""} unreachable${why}. Robot states may be stale; commands are disabled.`;
    pill.textContent = "broker unreachable";
    pill.className = "pill pill-bad";
  } else {
    pill.textContent = `broker ${state.broker.endpoint}`;
    pill.className = "pill pill-ok";
    if (state.broker.error) text = state.broker.error;
  }
  b.textContent = text;
  b.hidden = !text;
}

function renderAll() { renderBanner(); renderFleet(); renderRobot(); }

// ---- telemetry -------------------------------------------------------------------

function onTelemetry(thing, t) {
  const now = Date.now();
  const r = state.robots.get(thing);
  if (r) { r.battery_v = t.battery_v; r.last_seen_ms = now; }
  let series = state.telemetry.get(thing);
  if (!series) { series = []; state.telemetry.set(thing, series); }
  series.push({ t: now, battery: t.battery_v, distance: t.distance_mm, left: t.wheel_dps.left, right: t.wheel_dps.right });
  while (series.length && series[0].t < now - PLOT_WINDOW_MS) series.shift();
  state.lastTelemetry.set(thing, t);
  if (thing === state.selected) scheduleTelemetryDraw();
}

let telemetryFrame = 0;
function scheduleTelemetryDraw() {
  if (telemetryFrame) return;
  telemetryFrame = requestAnimationFrame(() => {
    telemetryFrame = 0;
    drawTelemetry();
  });
}

function drawTelemetry() {
  const t = state.lastTelemetry.get(state.selected);
  if (t) {
    $("t-battery").textContent = `${t.battery_v.toFixed(2)} V`;
    $("t-distance").textContent = t.distance_mm == null ? "–" : t.distance_mm >= 3000 ? "> 3 m" : `${t.distance_mm} mm`;
    $("t-wheels").textContent = `${t.wheel_dps.left.toFixed(0)} / ${t.wheel_dps.right.toFixed(0)} dps`;
    $("t-motion").textContent = t.motion;
  }
  const s = state.telemetry.get(state.selected) || [];
  plot($("plot-battery"), s, [["battery", "#d29922"]], "V");
  plot($("plot-distance"), s, [["distance", "#3b82f6"]], "mm");
  plot($("plot-wheels"), s, [["left", "#2ea043"], ["right", "#db61a2"]], "dps");
}

function plot(canvas, series, keys, unit) {
  // Draw at the canvas's displayed size, in device pixels, so text stays sharp.
  const box = canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(box.width)), h = Math.max(1, Math.round(box.height));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const now = Date.now();
  let lo = Infinity, hi = -Infinity;
  for (const p of series) for (const [k] of keys) {
    const v = p[k];
    if (v == null) continue;
    lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  ctx.fillStyle = "#8b98a8";
  ctx.font = "10px system-ui";
  if (!isFinite(lo)) { ctx.fillText(`no data (${unit})`, 4, 12); return; }
  if (hi - lo < 1e-6) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.1; hi += pad; lo -= pad;
  const x = (t) => w - ((now - t) / PLOT_WINDOW_MS) * w;
  const y = (v) => h - ((v - lo) / (hi - lo)) * h;
  for (const [k, color] of keys) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    for (const p of series) {
      if (p[k] == null) continue;
      if (!started) { ctx.moveTo(x(p.t), y(p[k])); started = true; } else ctx.lineTo(x(p.t), y(p[k]));
    }
    ctx.stroke();
  }
  ctx.fillText(`${hi.toFixed(unit === "V" ? 2 : 0)} ${unit}`, 4, 11);
  ctx.fillText(`${lo.toFixed(unit === "V" ? 2 : 0)}`, 4, h - 3);
}

// ---- commands and their results ----------------------------------------------------

function addLog(thing, text, cls, id) {
  const e = { thing, text, cls, id, at: new Date() };
  state.log.push(e);
  if (state.log.length > 500) state.log.shift();
  if (thing === state.selected || thing === "-") appendLogItem(e);
}

function appendLogItem(e) {
  const li = document.createElement("li");
  li.className = e.cls || "";
  if (e.id) li.dataset.id = e.id;
  li.textContent = `${e.at.toLocaleTimeString()} ${e.text}`;
  const log = $("log");
  log.prepend(li);
  while (log.children.length > 100) log.lastChild.remove();
}

function describeCommand(c) {
  switch (c.action) {
    case "drive": return `drive ${c.direction}${c.speed_dps ? " @" + c.speed_dps : ""}${c.duration_ms ? " " + c.duration_ms + " ms" : ""}`;
    case "turn": return `turn ${c.degrees}°`;
    case "drive_cm": return `drive ${c.cm} cm`;
    case "servo": return `servo ${c.angle}°`;
    case "led": return `eyes rgb(${c.color.join(",")})`;
    default: return c.action;
  }
}

function onSent(thing, c) {
  window.__gopigo.sent.push({ id: c.id, at: Date.now(), action: c.action });
  // Heartbeat re-sends are not logged one by one.
  if (state.hold && c.action === "drive" && c.duration_ms === HOLD_DRIVE_MS && state.hold.logged) return;
  if (state.hold && c.action === "drive") state.hold.logged = true;
  addLog(thing, `→ ${describeCommand(c)} (${c.id})`, "", c.id);
}

function onResult(thing, r) {
  if (r.status === "rejected") {
    addLog(thing, `✗ ${r.id} rejected: ${r.reason || "no reason given"}`, "rejected", r.id);
    if (thing === state.selected) toast(`${thing} rejected the command: ${r.reason || "no reason given"}`);
    return;
  }
  // Each heartbeat drive replaces the one before: not worth a log line.
  if (r.status === "done" && r.reason && /^preempted by/.test(r.reason)) return;
  if (r.status === "done" && r.reason) {
    addLog(thing, `■ ${r.id} ended: ${r.reason}`, "done", r.id);
    return;
  }
  // Plain accepted/done of heartbeat drives would flood the log.
  if (state.hold && r.status !== "done") return;
  if (r.status === "done") addLog(thing, `✓ ${r.id} done`, "done", r.id);
}

function command(cmd) {
  if (!state.selected) return;
  send({ type: "command", thing: state.selected, command: cmd });
}

function speed() { return Number($("speed").value); }

function drive(dir, ms) {
  command({ action: "drive", direction: dir, speed_dps: speed(), duration_ms: ms });
}

function startHold(dir, source) {
  if (!controlsEnabled()) {
    const r = state.robots.get(state.selected);
    toast(r && !r.online ? `${r.thing} is offline` : "Commands are disabled: the broker is unreachable");
    return;
  }
  if (state.hold && state.hold.dir === dir) return;
  stopHold(false);
  drive(dir, HOLD_DRIVE_MS);
  state.hold = {
    dir, source, started: performance.now(), logged: false,
    timer: setInterval(() => drive(dir, HOLD_DRIVE_MS), HEARTBEAT_MS),
  };
  for (const b of document.querySelectorAll(`.dir[data-dir="${dir}"]`)) b.classList.add("active");
}

// Ends a hold; a short press becomes a nudge, a long one ends with a stop.
function stopHold(sendStop, allowNudge) {
  const h = state.hold;
  if (!h) return;
  clearInterval(h.timer);
  state.hold = null;
  for (const b of document.querySelectorAll(".dir.active")) b.classList.remove("active");
  if (allowNudge && performance.now() - h.started < 250) {
    // A click: the drive already sent (HOLD_DRIVE_MS) runs out by itself.
  } else if (sendStop) {
    command({ action: "stop" });
  }
}

function wireControls() {
  for (const b of document.querySelectorAll(".dir")) {
    const dir = b.dataset.dir;
    b.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      b.setPointerCapture && b.setPointerCapture(e.pointerId);
      window.__gopigo.keyDowns.push(performance.timeOrigin + e.timeStamp);
      startHold(dir, "pointer");
    });
    const release = () => { if (state.hold && state.hold.source === "pointer") stopHold(true, true); };
    b.addEventListener("pointerup", release);
    b.addEventListener("pointercancel", release);
    b.addEventListener("lostpointercapture", release);
    // Enter on a focused button (a click without a pointer): one nudge.
    b.addEventListener("click", (e) => { if (e.detail === 0) { if (controlsEnabled()) drive(dir, NUDGE_MS); } });
  }
  $("stop").addEventListener("click", () => { stopHold(false); command({ action: "stop" }); });
  $("speed").addEventListener("input", () => { $("speed-val").textContent = $("speed").value; });
  $("servo").addEventListener("input", () => { $("servo-val").textContent = $("servo").value; });
  $("servo-set").addEventListener("click", () => {
    send({ type: "shadow", thing: state.selected, desired: { servo_angle: Number($("servo").value) } });
  });
  $("led-set").addEventListener("click", () => {
    const hex = $("led").value;
    const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    send({ type: "shadow", thing: state.selected, desired: { led: rgb } });
  });

  const keys = {
    ArrowUp: "forward", w: "forward", W: "forward",
    ArrowDown: "backward", s: "backward", S: "backward",
    ArrowLeft: "left", a: "left", A: "left",
    ArrowRight: "right", d: "right", D: "right",
    q: "spin_left", Q: "spin_left", e: "spin_right", E: "spin_right",
  };
  const typing = (el) => el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (e.key === " " || e.key === "Spacebar") {
      if (e.target && e.target.tagName === "BUTTON" && !e.target.classList.contains("dir") && e.target.id !== "stop") return;
      e.preventDefault();
      stopHold(false);
      command({ action: "stop" });
      return;
    }
    const dir = keys[e.key];
    if (!dir) return;
    e.preventDefault();
    if (e.repeat) return;
    window.__gopigo.keyDowns.push(performance.timeOrigin + e.timeStamp);
    startHold(dir, "key:" + e.key.toLowerCase());
  });
  document.addEventListener("keyup", (e) => {
    const dir = keys[e.key];
    if (dir && state.hold && state.hold.source === "key:" + e.key.toLowerCase()) {
      window.__gopigo.keyUps.push(performance.timeOrigin + e.timeStamp);
      stopHold(true);
    }
  });
  // Losing focus must never leave a robot driving.
  window.addEventListener("blur", () => stopHold(true));
  document.addEventListener("visibilitychange", () => { if (document.hidden) stopHold(true); });
}

// ---- video -----------------------------------------------------------------------

function setVideoState(text) {
  const el = $("video-state");
  el.textContent = text || "";
  el.hidden = !text;
}

function clearVideo() {
  const c = $("video");
  c.getContext("2d").clearRect(0, 0, c.width, c.height);
  $("fps").textContent = "– fps";
  $("frame-age").textContent = "age –";
}

function restartVideo() {
  if (state.video) state.video.abort.abort();
  state.video = null;
  state.frames = [];
  clearVideo();
  const thing = state.selected;
  if (!thing) return;
  const abort = new AbortController();
  state.video = { thing, abort };
  runVideo(thing, abort.signal);
}

async function runVideo(thing, signal) {
  while (!signal.aborted) {
    const r = state.robots.get(thing);
    if (!r || !r.online) {
      setVideoState(`video unavailable: ${thing} is offline`);
    } else if (!r.has_camera) {
      setVideoState(`video unavailable: ${thing} announces no camera`);
    } else {
      try {
        setVideoState("connecting to the camera…");
        const resp = await fetch(`/robots/${encodeURIComponent(thing)}/video`, { signal, cache: "no-store" });
        if (!resp.ok) {
          setVideoState((await resp.text()).trim() || `video unavailable (HTTP ${resp.status})`);
        } else {
          await readParts(resp.body.getReader(), signal);
          if (!signal.aborted) setVideoState("video unavailable: the stream ended; retrying…");
        }
      } catch (e) {
        if (signal.aborted) return;
        setVideoState(`video unavailable: ${e.message || e}`);
      }
    }
    await new Promise((res) => setTimeout(res, 2000));
  }
}

function indexOfSeq(buf, len, seq, from) {
  outer: for (let i = from; i + seq.length <= len; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

// Reads multipart parts (each with Content-Length) and draws each JPEG.
async function readParts(reader, signal) {
  let buf = new Uint8Array(1 << 20), len = 0;
  const CRLF2 = [13, 10, 13, 10];
  let drawing = false, pending = null;
  const drawLatest = async () => {
    drawing = true;
    while (pending) {
      const jpeg = pending; pending = null;
      await drawFrame(jpeg);
    }
    drawing = false;
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done || signal.aborted) return;
    if (len + value.length > buf.length) {
      const bigger = new Uint8Array(Math.max(buf.length * 2, len + value.length));
      bigger.set(buf.subarray(0, len));
      buf = bigger;
    }
    buf.set(value, len);
    len += value.length;
    for (;;) {
      const headEnd = indexOfSeq(buf, len, CRLF2, 0);
      if (headEnd < 0) break;
      const head = new TextDecoder().decode(buf.subarray(0, headEnd));
      const m = /content-length:\s*(\d+)/i.exec(head);
      if (!m) throw new Error("video stream part without Content-Length");
      const n = Number(m[1]);
      const start = headEnd + 4;
      if (len < start + n + 2) break;
      pending = buf.slice(start, start + n);   // newest wins if drawing is slow
      buf.copyWithin(0, start + n + 2, len);
      len -= start + n + 2;
      if (!drawing) drawLatest();
    }
  }
}

// The camera's stamp: a JPEG COM segment "gopigo-camera seq=N captured_at_ms=T".
function readStamp(jpeg) {
  let i = 2;
  while (i + 4 <= jpeg.length && jpeg[i] === 0xff) {
    const marker = jpeg[i + 1];
    const segLen = (jpeg[i + 2] << 8) | jpeg[i + 3];
    if (marker === 0xfe) {
      const text = new TextDecoder().decode(jpeg.subarray(i + 4, i + 2 + segLen));
      const m = /captured_at_ms=(\d+)/.exec(text);
      if (m) return Number(m[1]);
    }
    if (marker === 0xda || marker === 0xd9) break;
    i += 2 + segLen;
  }
  return null;
}

async function drawFrame(jpeg) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([jpeg], { type: "image/jpeg" }));
  } catch {
    return;
  }
  const canvas = $("video");
  if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close && bitmap.close();
  const captured = readStamp(jpeg);
  drawBoxes(ctx, canvas.width, canvas.height, captured);
  const now = Date.now();
  const g = window.__gopigo;
  g.framesDrawn++;
  if (captured) {
    const age = now - captured;
    g.frameAges.push(age);
    if (g.frameAges.length > 5000) g.frameAges.shift();
    $("frame-age").textContent = `age ${age} ms`;
  }
  state.frames.push(now);
  while (state.frames.length && state.frames[0] < now - 1000) state.frames.shift();
  $("fps").textContent = `${state.frames.length} fps`;
  setVideoState("");
}

function onDetections(thing, d) {
  const entry = { at: Date.now(), msg: d };
  state.detections.set(thing, entry);
  let recent = state.recentDetections.get(thing);
  if (!recent) { recent = []; state.recentDetections.set(thing, recent); }
  recent.push(entry);
  if (recent.length > 20) recent.shift();
  if (thing !== state.selected) return;
  const now = Date.now();
  state.detTimes.push(now);
  while (state.detTimes.length && state.detTimes[0] < now - 2000) state.detTimes.shift();
  renderDetState();
}

function renderDetState() {
  const el = $("det-state");
  const d = state.detections.get(state.selected);
  const r = state.robots.get(state.selected);
  if (r && !r.online) {
    el.textContent = "detections: robot offline";
  } else if (d && Date.now() - d.at < 5000) {
    const list = d.msg.detections.map((x) => `${x.class} ${(x.score * 100).toFixed(0)}%`).join(", ");
    el.textContent = `detections ${(state.detTimes.length / 2).toFixed(1)}/s: ${list || "nothing"}`;
  } else if (state.detectionNote) {
    el.textContent = `detection unavailable: ${state.detectionNote}`;
  } else {
    el.textContent = "detections: none received yet";
  }
}

// The detections of the frame being drawn when they are at hand (matched by
// capture time), else the newest ones while they are fresh.
function detectionsFor(capturedMs) {
  const recent = state.recentDetections.get(state.selected) || [];
  const now = Date.now();
  let best = null;
  for (const e of recent) {
    if (now - e.at > DETECTION_TTL_MS) continue;
    const gap = capturedMs == null ? 0 : Math.abs(e.msg.frame_ts_ms - capturedMs);
    if (!best || gap < best.gap || (gap === best.gap && e.at > best.e.at)) best = { e, gap };
  }
  return best && best.e;
}

function drawBoxes(ctx, w, h, capturedMs) {
  const d = detectionsFor(capturedMs);
  if (!d) return;
  const sx = w / (d.msg.width || w), sy = h / (d.msg.height || h);
  ctx.lineWidth = Math.max(2, w / 320);
  ctx.font = `${Math.max(12, Math.round(w / 40))}px system-ui`;
  for (const det of d.msg.detections) {
    const [x, y, bw, bh] = det.box;
    const hue = [...det.class].reduce((a, c) => a + c.charCodeAt(0), 0) * 47 % 360;
    const color = `hsl(${hue} 90% 55%)`;
    ctx.strokeStyle = color;
    ctx.strokeRect(x * sx, y * sy, bw * sx, bh * sy);
    const label = `${det.class} ${(det.score * 100).toFixed(0)}%`;
    const tw = ctx.measureText(label).width + 6;
    const th = parseInt(ctx.font, 10) + 4;
    const ly = y * sy > th ? y * sy - th : y * sy;
    ctx.fillStyle = color;
    ctx.fillRect(x * sx, ly, tw, th);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x * sx + 3, ly + th - 4);
  }
  window.__gopigo.boxesDrawn = (window.__gopigo.boxesDrawn || 0) + d.msg.detections.length;
}

// ---- start -----------------------------------------------------------------------

wireControls();
connect();
setInterval(() => { renderFleet(); if (state.selected) { renderRobot(); } }, 2000);
// Numbers of a stalled stream must not look live.
setInterval(() => {
  const now = Date.now();
  while (state.frames.length && state.frames[0] < now - 1000) state.frames.shift();
  if (!state.frames.length) { $("fps").textContent = "0 fps"; $("frame-age").textContent = "age –"; }
}, 1000);
