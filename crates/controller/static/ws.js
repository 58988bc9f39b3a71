// The page's one WebSocket to the dashboard server: JSON messages in and
// out, reopened a second after it closes. Before reopening it asks
// /api/fleet whether the session still holds: a dashboard restarted since
// this page signed in has a new session secret, and the page then goes
// to the sign-in page rather than retrying for ever.

export const RETRY_MS = 1000;

export class Socket {
  /**
   * `onMessage(msg)` gets each parsed message (text that is not JSON is
   * dropped); `onState(open)` each open and close; `signedOut()` runs
   * instead of reopening when the session is gone. `WebSocket` and `fetch`
   * default to the browser's (tests pass their own).
   */
  constructor({ url, onMessage, onState = () => {}, signedOut = () => location.assign("/"),
    WebSocket = globalThis.WebSocket, fetch = (...a) => globalThis.fetch(...a), retryMs = RETRY_MS }) {
    Object.assign(this, { url, onMessage, onState, signedOut, WebSocket, fetch, retryMs });
    this.ws = null;
    this.open = false;
  }

  connect() {
    const ws = new this.WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => { this.open = true; this.onState(true); };
    ws.onclose = () => {
      this.open = false;
      this.onState(false);
      setTimeout(() => this.reconnect(), this.retryMs);
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this.onMessage(msg);
    };
  }

  async reconnect() {
    try {
      const r = await this.fetch("/api/fleet", { cache: "no-store" });
      if (r.status === 401) { this.signedOut(); return; }
    } catch { /* the server is down: keep retrying */ }
    this.connect();
  }

  /** Sends `obj` as JSON; false (nothing sent) while the socket is closed. */
  send(obj) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }
}

/** The WebSocket URL of the page's own origin. */
export function socketUrl(loc) {
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/ws`;
}
