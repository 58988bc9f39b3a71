// Driving from keys and buttons. A held drive is a heartbeat: the page sends
// a HOLD_DRIVE_MS `drive` at once and again every HEARTBEAT_MS, so a robot
// whose page goes quiet stops by itself within HOLD_DRIVE_MS. Releasing the
// key or button sends `stop`; so do losing focus (blur) and the tab being
// hidden. A press shorter than CLICK_MS is a nudge: the drive already sent
// runs out by itself. No command follows a stop.

export const HEARTBEAT_MS = 150;  // re-send while a drive is held
export const HOLD_DRIVE_MS = 400; // each re-sent drive lasts this long
export const NUDGE_MS = 400;      // Enter on a focused button drives this long
export const CLICK_MS = 250;      // a pointer press shorter than this is a nudge

/** Keys that drive, by `KeyboardEvent.key`. */
export const KEYS = {
  ArrowUp: "forward", w: "forward", W: "forward",
  ArrowDown: "backward", s: "backward", S: "backward",
  ArrowLeft: "left", a: "left", A: "left",
  ArrowRight: "right", d: "right", D: "right",
  q: "spin_left", Q: "spin_left", e: "spin_right", E: "spin_right",
};

export class Teleop {
  /**
   * `command(cmd)` sends one command to the selected robot; `enabled()`
   * says whether commands may be sent now; `refused()` tells the user why
   * not; `speed()` is the drive speed in dps; `onHold(dir | null)` shows
   * which direction is held. `now()` is a monotonic clock in ms.
   */
  constructor({ command, enabled, speed, refused = () => {}, onHold = () => {}, now = () => performance.now() }) {
    Object.assign(this, { command, enabled, speed, refused, onHold, now });
    this.hold = null; // {dir, source, started, timer, logged}
  }

  drive(dir, ms) {
    this.command({ action: "drive", direction: dir, speed_dps: this.speed(), duration_ms: ms });
  }

  /** Starts holding `dir` (from `source`: "pointer" or "key:w"). */
  start(dir, source) {
    if (!this.enabled()) {
      this.refused();
      return;
    }
    if (this.hold && this.hold.dir === dir) return;
    this.stop(false);
    this.drive(dir, HOLD_DRIVE_MS);
    this.hold = {
      dir, source, started: this.now(), logged: false,
      timer: setInterval(() => this.drive(dir, HOLD_DRIVE_MS), HEARTBEAT_MS),
    };
    this.onHold(dir);
  }

  /**
   * Ends a hold: the heartbeat stops at once; with `sendStop` a `stop`
   * follows, unless `allowNudge` and the press was short.
   */
  stop(sendStop, allowNudge = false) {
    const h = this.hold;
    if (!h) return;
    clearInterval(h.timer);
    this.hold = null;
    this.onHold(null);
    const click = allowNudge && this.now() - h.started < CLICK_MS;
    if (sendStop && !click) this.command({ action: "stop" });
  }

  /** The stop button and Space: end any hold and stop the robot. */
  halt() {
    this.stop(false);
    this.command({ action: "stop" });
  }

  /** One short drive (Enter on a focused direction button). */
  nudge(dir) {
    if (this.enabled()) this.drive(dir, NUDGE_MS);
  }

  /** Ends a hold started by `source` (a release of what started it). */
  release(source, allowNudge = false) {
    if (this.hold && this.hold.source === source) this.stop(true, allowNudge);
  }
}

const typing = (el) => !!el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);

/**
 * Keys drive while held (not while typing in a field, not with a
 * modifier); Space stops, except on a button of its own; losing focus or
 * hiding the tab stops.
 */
export function bindKeys(teleop, doc, win) {
  doc.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (e.key === " " || e.key === "Spacebar") {
      const t = e.target;
      if (t && t.tagName === "BUTTON" && !t.classList.contains("dir") && t.id !== "stop") return;
      e.preventDefault();
      teleop.halt();
      return;
    }
    const dir = KEYS[e.key];
    if (!dir) return;
    e.preventDefault();
    if (!e.repeat) teleop.start(dir, "key:" + e.key.toLowerCase());
  });
  doc.addEventListener("keyup", (e) => {
    if (KEYS[e.key]) teleop.release("key:" + e.key.toLowerCase());
  });
  win.addEventListener("blur", () => teleop.stop(true));
  doc.addEventListener("visibilitychange", () => { if (doc.hidden) teleop.stop(true); });
}

/** Direction buttons drive while pressed; `stopButton` stops. */
export function bindPad(teleop, buttons, stopButton) {
  for (const b of buttons) {
    const dir = b.dataset.dir;
    b.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      if (b.setPointerCapture) b.setPointerCapture(e.pointerId);
      teleop.start(dir, "pointer");
    });
    const release = () => teleop.release("pointer", true);
    b.addEventListener("pointerup", release);
    b.addEventListener("pointercancel", release);
    b.addEventListener("lostpointercapture", release);
    // Enter on a focused button is a click without a pointer (detail 0).
    b.addEventListener("click", (e) => { if (e.detail === 0) teleop.nudge(dir); });
  }
  stopButton.addEventListener("click", () => teleop.halt());
}
