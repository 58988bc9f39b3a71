// ws.js: the page's WebSocket, reopened after it closes, on node's mock clock.
import { describe, it, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { Socket, socketUrl, RETRY_MS } from "../../../crates/controller/static/ws.js";

/** A WebSocket stand-in that records what is sent and lets a test open or close it. */
function fakeSockets() {
  const made = [];
  class FakeWebSocket {
    constructor(url) { this.url = url; this.sent = []; made.push(this); }
    send(text) { this.sent.push(text); }
  }
  return { made, FakeWebSocket };
}

const flush = () => new Promise((r) => setImmediate(r));

function rig(fleetStatus = 200) {
  const { made, FakeWebSocket } = fakeSockets();
  const got = [], states = [], fetched = [];
  let signedOut = 0;
  const socket = new Socket({
    url: "ws://127.0.0.1:8080/ws",
    onMessage: (m) => got.push(m),
    onState: (open) => states.push(open),
    signedOut: () => { signedOut++; },
    WebSocket: FakeWebSocket,
    fetch: async (url) => {
      fetched.push(url);
      if (rig.down) throw new TypeError("fetch failed");
      return { status: rig.status };
    },
  });
  rig.status = fleetStatus;
  rig.down = false;
  return { socket, made, got, states, fetched, signedOut: () => signedOut };
}

describe("ws", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  it("opens on the page's own origin", () => {
    assert.equal(socketUrl({ protocol: "http:", host: "127.0.0.1:8080" }), "ws://127.0.0.1:8080/ws");
    assert.equal(socketUrl({ protocol: "https:", host: "robots.lan" }), "wss://robots.lan/ws");
  });

  it("passes JSON messages on and drops anything else", () => {
    const r = rig();
    r.socket.connect();
    r.made[0].onmessage({ data: '{"type":"broker","broker":{"connected":true}}' });
    r.made[0].onmessage({ data: "not json" });
    assert.deepEqual(r.got, [{ type: "broker", broker: { connected: true } }]);
  });

  it("sends only while open, and says so", () => {
    const r = rig();
    r.socket.connect();
    assert.equal(r.socket.send({ type: "command" }), false, "not open yet");
    r.made[0].onopen();
    assert.equal(r.socket.send({ type: "command", thing: "r1" }), true);
    assert.deepEqual(r.made[0].sent, ['{"type":"command","thing":"r1"}']);
    r.made[0].onclose();
    assert.equal(r.socket.send({ type: "command" }), false);
    assert.deepEqual(r.states, [true, false]);
  });

  it("reopens a second after a close while the session holds", async () => {
    const r = rig(200);
    r.socket.connect();
    r.made[0].onopen();
    r.made[0].onclose();
    mock.timers.tick(RETRY_MS - 1);
    await flush();
    assert.equal(r.made.length, 1, "not before the retry delay");
    mock.timers.tick(1);
    await flush();
    assert.deepEqual(r.fetched, ["/api/fleet"]);
    assert.equal(r.made.length, 2, "a new socket");
    assert.equal(r.made[1].url, "ws://127.0.0.1:8080/ws");
  });

  it("keeps retrying while the server is down", async () => {
    const r = rig();
    rig.down = true;
    r.socket.connect();
    for (let i = 1; i <= 3; i++) {
      r.made.at(-1).onclose();
      mock.timers.tick(RETRY_MS);
      await flush();
      assert.equal(r.made.length, i + 1);
    }
  });

  it("goes to sign-in instead of retrying when the session is gone", async () => {
    const r = rig(401);
    r.socket.connect();
    r.made[0].onclose();
    mock.timers.tick(RETRY_MS);
    await flush();
    assert.equal(r.signedOut(), 1);
    assert.equal(r.made.length, 1, "no new socket");
    mock.timers.tick(10 * RETRY_MS);
    await flush();
    assert.equal(r.made.length, 1);
  });
});
