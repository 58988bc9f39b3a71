// Text the page shows, from plain values: no DOM, no clock of its own
// (callers pass `now`), so every line here is unit-tested under node.

/** "just now", "12 s ago", "3 min ago", or the date; "never" for null. */
export function ago(ms, now = Date.now()) {
  if (ms == null) return "never";
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 2) return "just now";
  if (s < 90) return `${s.toFixed(0)} s ago`;
  if (s < 5400) return `${(s / 60).toFixed(0)} min ago`;
  return new Date(ms).toLocaleString();
}

export function battery(volts) {
  return volts != null ? `${volts.toFixed(2)} V` : "– V";
}

/** The distance sensor reads up to 3 m; beyond that it says so. A failed
 *  reading (telemetry's distance_error) says so too: the robot then refuses
 *  to drive forward until the sensor reads again. */
export function distance(mm, error = null) {
  if (error) return "sensor error";
  if (mm == null) return "–";
  return mm >= 3000 ? "> 3 m" : `${mm} mm`;
}

export function wheels(dps) {
  return `${dps.left.toFixed(0)} / ${dps.right.toFixed(0)} dps`;
}

/** One command as the log shows it. */
export function describeCommand(c) {
  switch (c.action) {
    case "drive":
      return `drive ${c.direction}${c.speed_dps ? " @" + c.speed_dps : ""}${c.duration_ms ? " " + c.duration_ms + " ms" : ""}`;
    case "turn": return `turn ${c.degrees}°`;
    case "drive_cm": return `drive ${c.cm} cm`;
    case "servo": return `servo ${c.angle}°`;
    case "led": return `eyes rgb(${c.color.join(",")})`;
    default: return c.action;
  }
}

/**
 * The log line for a command's result, or null when it is not worth one:
 * heartbeat drives preempt each other, and while a drive is held their
 * plain accepted/done would flood the log.
 */
export function resultLine(r, holding) {
  const why = r.reason || "no reason given";
  if (r.status === "rejected") return { text: `✗ ${r.id} rejected: ${why}`, cls: "rejected" };
  if (r.status === "done" && r.reason && /^preempted by/.test(r.reason)) return null;
  if (r.status === "done" && r.reason) return { text: `■ ${r.id} ended: ${r.reason}`, cls: "done" };
  if (holding && r.status !== "done") return null;
  if (r.status === "done") return { text: `✓ ${r.id} done`, cls: "done" };
  return null;
}

/** `[255, 128, 0]` → `"#ff8000"` (an `<input type=color>` value). */
export function hexColor(rgb) {
  return "#" + rgb.map((v) => v.toString(16).padStart(2, "0")).join("");
}

/** `"#ff8000"` → `[255, 128, 0]`. */
export function rgbOf(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

/** What the robot reported, and which desired settings it has not yet. */
export function shadowSummary(desired, reported) {
  const d = desired || {}, rep = reported || {};
  const parts = [];
  if (rep.servo_angle != null) parts.push(`servo ${rep.servo_angle}°`);
  if (rep.led) parts.push(`eyes rgb(${rep.led.join(",")})`);
  if (rep.speed_dps != null) parts.push(`speed ${rep.speed_dps}`);
  const pending = Object.keys(d).filter((k) => JSON.stringify(d[k]) !== JSON.stringify(rep[k]));
  return (parts.length ? `reported: ${parts.join(", ")}` : "reported: –") +
    (pending.length ? ` · pending: ${pending.join(", ")}` : "");
}

/** The notice over an offline robot. */
export function offlineNotice(r) {
  const since = r.since_ms ? ` since ${new Date(r.since_ms).toLocaleTimeString()}` : "";
  const why = r.offline_reason ? ` (${r.offline_reason})` : "";
  return `${r.thing} is offline${since}${why}. Commands are disabled until it reconnects.`;
}

export function detectionLabel(det) {
  return `${det.class} ${(det.score * 100).toFixed(0)}%`;
}

/** The detections line under the video. */
export function detectionState({ online, latest, perSecond, note }) {
  if (online === false) return "detections: robot offline";
  if (latest) {
    const list = latest.detections.map(detectionLabel).join(", ");
    return `detections ${perSecond.toFixed(1)}/s: ${list || "nothing"}`;
  }
  if (note) return `detection unavailable: ${note}`;
  return "detections: none received yet";
}

/** A stable colour per class name, so a class keeps its colour frame to frame. */
export function classColor(name) {
  const hue = [...name].reduce((a, c) => a + c.charCodeAt(0), 0) * 47 % 360;
  return `hsl(${hue} 90% 55%)`;
}

/** The banner text and the broker pill, from the connection states. */
export function connectionState(wsOpen, broker) {
  if (!wsOpen) {
    return { banner: "The dashboard server is unreachable; reconnecting…", pill: "dashboard offline", ok: false };
  }
  if (!broker || !broker.connected) {
    const why = broker && broker.error ? `: ${broker.error}` : "";
    return {
      banner: `Broker ${broker ? broker.endpoint : ""} unreachable${why}. Robot states may be stale; commands are disabled.`,
      pill: "broker unreachable", ok: false,
    };
  }
  return { banner: broker.error || "", pill: `broker ${broker.endpoint}`, ok: true };
}
