// The page's panels, drawn from the fleet state (fleet.js) into the
// elements of index.html: the robot list, the selected robot, the banner,
// telemetry, the command log and the toast.

import * as fmt from "./format.js";
import { drawPlot } from "./plot.js";
import { agentVersion, updateClass, updateLine } from "./jobs.js";

export const $ = (id) => document.getElementById(id);

const TOAST_MS = 5000;
const LOG_KEPT = 500;
const LOG_SHOWN = 100;

export function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, TOAST_MS);
}

export function renderBanner(wsOpen, broker) {
  const s = fmt.connectionState(wsOpen, broker);
  const pill = $("broker");
  pill.textContent = s.pill;
  pill.className = s.ok ? "pill pill-ok" : "pill pill-bad";
  $("banner").textContent = s.banner;
  $("banner").hidden = !s.banner;
}

/** The robot list; items are re-used so that keyboard focus survives updates. */
export function renderFleetList(fleet, onSelect, now = Date.now()) {
  const ul = $("robots");
  const things = [...fleet.robots.keys()].sort();
  $("no-robots").hidden = things.length > 0;
  const existing = new Map([...ul.children].map((li) => [li.dataset.thing, li]));
  for (const thing of things) {
    let li = existing.get(thing);
    if (!li) {
      li = document.createElement("li");
      li.dataset.thing = thing;
      const b = document.createElement("button");
      b.type = "button";
      b.className = "robot-btn";
      b.addEventListener("click", () => onSelect(thing));
      li.appendChild(b);
      ul.appendChild(li);
    }
    existing.delete(thing);
    robotButton(li.firstChild, fleet.robots.get(thing), thing === fleet.selected, now);
  }
  for (const li of existing.values()) li.remove();
}

function robotButton(b, r, selected, now) {
  const state = r.online ? "online" : "offline";
  const battery = fmt.battery(r.battery_v);
  b.setAttribute("aria-current", selected ? "true" : "false");
  b.dataset.online = r.online ? "true" : "false";
  const name = document.createElement("span");
  name.className = "name";
  const dot = document.createElement("span");
  dot.className = r.online ? "dot on" : "dot";
  name.append(dot, document.createTextNode(r.thing));
  const meta = document.createElement("span");
  meta.className = "meta";
  const version = agentVersion(r);
  meta.textContent = `${state} · ${battery} · seen ${fmt.ago(r.last_seen_ms, now)}${version ? " · agent " + version : ""}`;
  const parts = [name, document.createElement("br"), meta];
  const update = updateLine(r);
  if (update) {
    const u = document.createElement("span");
    u.className = `update ${updateClass(r)}`;
    u.textContent = update;
    parts.push(document.createElement("br"), u);
  }
  b.replaceChildren(...parts);
  b.setAttribute("aria-label", `${r.thing}, ${state}, battery ${battery}`);
}

/** The selected robot's head, offline notice, control states and shadow line. */
export function renderRobot(fleet, enabled, now = Date.now()) {
  const r = fleet.current;
  $("robot").hidden = !r;
  if (!r) return;
  $("robot-title").textContent = r.thing;
  const st = $("robot-state");
  st.textContent = r.online ? "online" : "offline";
  st.className = r.online ? "pill pill-ok" : "pill pill-bad";
  const version = agentVersion(r);
  $("robot-seen").textContent = `last seen ${fmt.ago(r.last_seen_ms, now)}${version ? " · agent " + version : ""}`;
  const update = $("robot-update");
  update.textContent = updateLine(r);
  update.className = updateClass(r);
  update.hidden = !update.textContent;
  const off = $("robot-offline");
  off.hidden = r.online;
  if (!r.online) off.textContent = fmt.offlineNotice(r);
  for (const el of document.querySelectorAll(".controls button, .controls input")) el.disabled = !enabled;
  $("shadow-state").textContent = fmt.shadowSummary(r.desired, r.reported);
  renderDetections(fleet, now);
}

/** The note shown while the selected robot waits for a full-rate slot (null: none). */
export function renderFullRate(note) {
  const el = $("full-rate");
  el.hidden = !note;
  el.textContent = note || "";
}

export function renderDetections(fleet, now = Date.now()) {
  $("det-state").textContent = fmt.detectionState(fleet.detectionState(now));
}

/** Shows the robot's own settings in the inputs (reported, else desired). */
export function syncSettingInputs(r) {
  if (!r) return;
  const rep = r.reported || {}, des = r.desired || {};
  const angle = rep.servo_angle ?? des.servo_angle;
  if (angle != null) { $("servo").value = angle; $("servo-val").textContent = $("servo").value; }
  const led = rep.led ?? des.led;
  if (Array.isArray(led)) $("led").value = fmt.hexColor(led);
  const speed = rep.speed_dps ?? des.speed_dps;
  if (speed != null) { $("speed").value = speed; $("speed-val").textContent = $("speed").value; }
}

export function renderTelemetry(fleet) {
  const t = fleet.lastTelemetry.get(fleet.selected);
  const card = $("telemetry");
  if (t) {
    $("t-battery").textContent = fmt.battery(t.battery_v);
    $("t-distance").textContent = fmt.distance(t.distance_mm, t.distance_error);
    $("t-distance").title = t.distance_error ?? "";
    $("t-wheels").textContent = fmt.wheels(t.wheel_dps);
    $("t-motion").textContent = t.motion;
    // The odometer, for scripts and tests: it grows with every wheel turn.
    if (t.encoders_deg) {
      card.dataset.encoderLeftDeg = t.encoders_deg.left;
      card.dataset.encoderRightDeg = t.encoders_deg.right;
    }
  }
  const s = fleet.telemetry.get(fleet.selected) || [];
  drawPlot($("plot-battery"), s, [["battery", "#d29922"]], "V");
  drawPlot($("plot-distance"), s, [["distance", "#3b82f6"]], "mm");
  drawPlot($("plot-wheels"), s, [["left", "#2ea043"], ["right", "#db61a2"]], "dps");
}

/** The command log: every robot's entries kept, the selected robot's shown. */
export class CommandLog {
  constructor() {
    this.entries = []; // {thing, text, cls, id, at}
    this.shownFor = null;
  }

  add(thing, text, cls, id) {
    const e = { thing, text, cls, id, at: new Date() };
    this.entries.push(e);
    if (this.entries.length > LOG_KEPT) this.entries.shift();
    if (thing === this.shownFor || thing === "-") this.append(e);
  }

  show(thing) {
    this.shownFor = thing;
    $("log").replaceChildren();
    for (const e of this.entries.filter((e) => e.thing === thing)) this.append(e);
  }

  append(e) {
    const li = document.createElement("li");
    li.className = e.cls || "";
    if (e.id) li.dataset.id = e.id;
    li.textContent = `${e.at.toLocaleTimeString()} ${e.text}`;
    const log = $("log");
    log.prepend(li);
    while (log.children.length > LOG_SHOWN) log.lastChild.remove();
  }
}
