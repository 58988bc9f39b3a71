// What the page tells the dashboard server it shows: its selected robot
// while the tab is visible, nothing while it is hidden. The server follows
// a robot's full-rate telemetry and detections only while some page shows
// it (docs/dashboard.md, "What is subscribed when"), so a hidden tab or a
// robot no longer selected costs the broker connection nothing.

export class ScreenReport {
  /** `send(msg)` sends a page → server message; false when it could not. */
  constructor(send) {
    this.send = send;
    this.last = null; // the things last reported on this socket, as "a,b"
  }

  /**
   * Reports what the page shows now. Sends `{type: "view", things}` only
   * when that changed since the last report on this socket; a closed
   * socket forgets it, so the next one is told again. Returns whether it sent.
   */
  update({ selected, hidden, open }) {
    if (!open) { this.last = null; return false; }
    const things = selected && !hidden ? [selected] : [];
    const key = things.join(",");
    if (key === this.last) return false;
    if (!this.send({ type: "view", things })) return false;
    this.last = key;
    return true;
  }
}

/**
 * Why the selected robot's live telemetry does not come, or null when it
 * does: more robots are on the dashboards' screens than the broker
 * connection follows at full rate (`onScreen` is the server's
 * `on_screen`: `{full_rate, waiting, limit}`).
 */
export function fullRateNote(onScreen, selected) {
  if (!onScreen || !selected || !onScreen.waiting.includes(selected)) return null;
  return `Live telemetry and detections for ${selected} wait: ${onScreen.limit} robots are already followed at full rate ` +
    "on the dashboard's one broker connection (AWS IoT's per-connection limits). Close another dashboard tab to free one.";
}
