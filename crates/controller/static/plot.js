// The telemetry plots: `scale` maps a series onto a canvas (pure, tested
// under node); `drawPlot` strokes it.

import { PLOT_WINDOW_MS } from "./fleet.js";

/**
 * The axes for `series` (points `{t, [key]: value}`) drawn `w`×`h` at
 * `now`: time runs from `now - windowMs` (x = 0) to `now` (x = w); values
 * from `lo` (y = h) to `hi` (y = 0), 10 % beyond the data's range (±1
 * around a flat line). Null values are gaps; null when nothing is left.
 */
export function scale(series, keys, now, w, h, windowMs = PLOT_WINDOW_MS) {
  let lo = Infinity, hi = -Infinity;
  for (const p of series) {
    for (const k of keys) {
      const v = p[k];
      if (v == null) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!isFinite(lo)) return null;
  if (hi - lo < 1e-6) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.1;
  hi += pad;
  lo -= pad;
  return {
    lo, hi,
    x: (t) => w - ((now - t) / windowMs) * w,
    y: (v) => h - ((v - lo) / (hi - lo)) * h,
  };
}

/** An axis label: volts with two decimals, other units whole. */
export function label(v, unit) {
  return v.toFixed(unit === "V" ? 2 : 0);
}

/**
 * Draws `lines` (`[[key, colour], …]`) of `series` on `canvas` at its
 * displayed size in device pixels, so text stays sharp.
 */
export function drawPlot(canvas, series, lines, unit, now = Date.now()) {
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
  ctx.fillStyle = "#8b98a8";
  ctx.font = "10px system-ui";
  const s = scale(series, lines.map(([k]) => k), now, w, h);
  if (!s) { ctx.fillText(`no data (${unit})`, 4, 12); return; }
  for (const [k, color] of lines) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    for (const p of series) {
      if (p[k] == null) continue;
      if (started) ctx.lineTo(s.x(p.t), s.y(p[k]));
      else { ctx.moveTo(s.x(p.t), s.y(p[k])); started = true; }
    }
    ctx.stroke();
  }
  ctx.fillText(`${label(s.hi, unit)} ${unit}`, 4, 11);
  ctx.fillText(label(s.lo, unit), 4, h - 3);
}
