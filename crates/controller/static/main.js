// GoPiGo fleet dashboard: wires the modules together. One WebSocket to the
// dashboard server (ws.js) brings the fleet's state (fleet.js) and takes
// commands (teleop.js, the settings buttons); view.js draws the panels and
// <robot-video> (robot-video.js) plays the selected robot's camera.

import { Socket, socketUrl } from "./ws.js";
import { Fleet } from "./fleet.js";
import { Teleop, HOLD_DRIVE_MS, bindKeys, bindPad } from "./teleop.js";
import { describeCommand, resultLine, rgbOf } from "./format.js";
import { ScreenReport, fullRateNote } from "./onscreen.js";
import * as view from "./view.js";
import "./robot-video.js";

const { $ } = view;
const REFRESH_MS = 2000;

const fleet = new Fleet();
const log = new view.CommandLog();
const video = $("video-player");
const socket = new Socket({ url: socketUrl(location), onMessage: handle, onState: socketState });
// The server follows telemetry and detections only of the robots shown.
const screen = new ScreenReport((msg) => socket.send(msg));
const reportScreen = () => screen.update({ selected: fleet.selected, hidden: document.hidden, open: socket.open });

function send(obj) {
  const sent = socket.send(obj);
  if (!sent) view.toast("Not sent: the dashboard server is unreachable.");
  return sent;
}

const enabled = () => fleet.controlsEnabled(socket.open);

const teleop = new Teleop({
  command: (cmd) => { if (fleet.selected) send({ type: "command", thing: fleet.selected, command: cmd }); },
  enabled,
  speed: () => Number($("speed").value),
  refused: () => {
    const r = fleet.current;
    view.toast(r && !r.online ? `${r.thing} is offline` : "Commands are disabled: the broker is unreachable");
  },
  onHold: (dir) => {
    for (const b of document.querySelectorAll(".dir")) b.classList.toggle("active", b.dataset.dir === dir);
  },
});

function socketState(open) {
  reportScreen();
  view.renderBanner(open, fleet.broker);
  if (!open) teleop.stop(false);
}

function renderAll() {
  view.renderBanner(socket.open, fleet.broker);
  view.renderFleetList(fleet, select);
  view.renderRobot(fleet, enabled());
}

function select(thing) {
  if (fleet.selected === thing) return;
  teleop.stop(true);
  fleet.selected = thing;
  reportScreen();
  log.show(thing);
  renderAll();
  view.renderFullRate(fullRateNote(fleet.onScreen, thing));
  view.syncSettingInputs(fleet.current);
  video.setAttribute("thing", thing);
}

function handle(msg) {
  const changed = fleet.apply(msg);
  if (changed.select) select(changed.select);
  if (changed.banner) view.renderBanner(socket.open, fleet.broker);
  if (changed.list) view.renderFleetList(fleet, select);
  if (changed.robot) view.renderRobot(fleet, enabled());
  if (changed.settings) view.syncSettingInputs(fleet.current);
  if (changed.video) video.restart();
  if (changed.offline) teleop.stop(false);
  if (changed.telemetry) scheduleTelemetryDraw();
  if (changed.detections) view.renderDetections(fleet);
  if (changed.onScreen) view.renderFullRate(fullRateNote(fleet.onScreen, fleet.selected));
  switch (msg.type) {
    case "result": onResult(msg.thing, msg.result); break;
    case "sent": onSent(msg.thing, msg.command); break;
    case "shadow_sent":
      if (msg.thing === fleet.selected) $("shadow-state").textContent = `desired sent: ${JSON.stringify(msg.desired)}`;
      break;
    case "error":
      view.toast(msg.message);
      log.add(msg.thing || "-", `refused: ${msg.message}`, "rejected", msg.id);
      break;
  }
}

function onSent(thing, c) {
  // A held drive's heartbeat re-sends are logged once.
  const h = teleop.hold;
  if (h && c.action === "drive" && c.duration_ms === HOLD_DRIVE_MS && h.logged) return;
  if (h && c.action === "drive") h.logged = true;
  log.add(thing, `→ ${describeCommand(c)} (${c.id})`, "", c.id);
}

function onResult(thing, r) {
  const line = resultLine(r, !!teleop.hold);
  if (!line) return;
  log.add(thing, line.text, line.cls, r.id);
  if (r.status === "rejected" && thing === fleet.selected) {
    view.toast(`${thing} rejected the command: ${r.reason || "no reason given"}`);
  }
}

let telemetryFrame = 0;
function scheduleTelemetryDraw() {
  if (telemetryFrame) return;
  telemetryFrame = requestAnimationFrame(() => {
    telemetryFrame = 0;
    view.renderTelemetry(fleet);
  });
}

function wireSettings() {
  $("speed").addEventListener("input", () => { $("speed-val").textContent = $("speed").value; });
  $("servo").addEventListener("input", () => { $("servo-val").textContent = $("servo").value; });
  $("servo-set").addEventListener("click", () => {
    send({ type: "shadow", thing: fleet.selected, desired: { servo_angle: Number($("servo").value) } });
  });
  $("led-set").addEventListener("click", () => {
    send({ type: "shadow", thing: fleet.selected, desired: { led: rgbOf($("led").value) } });
  });
}

video.unavailable = (thing) => fleet.videoUnavailable(thing);
video.detections = (thing, capturedMs) => fleet.detectionsFor(thing, capturedMs);
bindPad(teleop, document.querySelectorAll(".dir"), $("stop"));
bindKeys(teleop, document, window);
wireSettings();
document.addEventListener("visibilitychange", reportScreen);
socket.connect();
// "seen 3 s ago" and the like age on their own.
setInterval(() => { view.renderFleetList(fleet, select); if (fleet.selected) view.renderRobot(fleet, enabled()); }, REFRESH_MS);
