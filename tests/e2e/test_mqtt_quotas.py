"""AWS IoT Core's per-connection quotas, attacked with real paho-mqtt peers
against the real `gopigo core` (`--limits aws`, the default), and the same
traffic again with `--limits off`. Each attack also checks that a
well-behaved client on another connection is unaffected. The outcomes are
AWS's, as docs/core.md ("Limits") cites them:

- over 100 PUBLISHes/s from one connection, the excess is discarded (a
  discarded QoS 1 one is never acknowledged);
- over 100 deliveries/s to one connection, the excess is discarded;
- over 512 KiB/s in one direction, the connection is slowed, nothing lost;
- a 51st subscription gets SUBACK 0x80, the connection stays;
- a message over 128 KiB, or 9 filters in one SUBSCRIBE, disconnect the
  client (lifecycle event `CLIENT_ERROR`), with either setting.

No assertion bounds how fast anything is; the counts are bounded by what a
bucket of one second's worth, refilled at the quota, can let through in the
time the test measured (an upper bound that a slow machine only loosens)."""

import json
import threading
import time

import pytest

from conftest import Core, Identity, open_policy
from mqttc import Client

RATE = 100
BYTES_PER_S = 512 * 1024
SUBACK_FAILURE = 0x80


@pytest.fixture(params=["aws", "off"])
def limits_core(request, tmp_path):
    extra = [] if request.param == "aws" else ["--limits", "off"]
    c = Core(tmp_path / "core", extra=extra)
    c.mode = request.param
    yield c
    c.stop()


@pytest.fixture
def ident(limits_core, tmp_path):
    return Identity(limits_core, tmp_path, "tester", open_policy(), attach_thing=False)


class Acks:
    """Counts PUBACKs (paho's on_publish) with the time of the last one."""

    def __init__(self, client):
        self.n = 0
        self.last = None
        self.lock = threading.Lock()
        client.c.on_publish = self._on_publish

    def _on_publish(self, c, u, mid, rc, props):
        with self.lock:
            self.n += 1
            self.last = time.monotonic()

    def settle(self, quiet=1.5, limit=60):
        """Waits until no PUBACK came for `quiet` seconds; returns the count."""
        deadline = time.monotonic() + limit
        seen = -1
        while time.monotonic() < deadline:
            with self.lock:
                n = self.n
            if n == seen:
                return n
            seen = n
            time.sleep(quiet)
        return self.n


def flooder(core, ident, client_id):
    c = Client(core, ident, client_id, connect=False)
    # Every message goes out at once: none waits in paho for a PUBACK.
    c.c.max_inflight_messages_set(65535)
    return c.connect()


def received(client, quiet=1.5):
    return client.drain(quiet)


def bystander_round_trip(core, ident, n, topic="calm/x"):
    """`n` QoS 1 messages from a fresh connection reach a fresh subscriber."""
    sub = Client(core, ident, f"calm-sub-{time.monotonic_ns()}")
    pub = Client(core, ident, f"calm-pub-{time.monotonic_ns()}")
    try:
        assert sub.sub(topic, qos=1) == [1]
        for i in range(n):
            assert pub.pub(topic, f"calm {i}", qos=1, timeout=30).is_published()
        got = [m.payload.decode() for m in sub.drain(2)]
        return got
    finally:
        pub.close()
        sub.close()


def at_most_passed(rate, seconds):
    """The most a full bucket of one second's `rate`, refilled at `rate`,
    lets through in `seconds` (plus rounding)."""
    return rate + int(rate * seconds) + 2


def test_a_publish_flood_is_discarded_past_100_per_second(limits_core, ident):
    core = limits_core
    watcher = Client(core, ident, "watcher")
    assert watcher.sub("flood/#", qos=1) == [1]
    flood = flooder(core, ident, "flooder")
    acks = Acks(flood)
    sent = 1000
    started = time.monotonic()
    for i in range(sent):
        flood.c.publish("flood/x", f"m{i}", qos=1)
    calm = bystander_round_trip(core, ident, 20)
    acked = acks.settle()
    window = (acks.last or started) - started
    got = received(watcher)
    assert calm == [f"calm {i}" for i in range(20)], "a client on another connection lost messages"
    print(f"[{core.mode}] flood of {sent}: {acked} acknowledged within {window:.2f} s, "
          f"{len(got)} delivered")
    if core.mode == "off":
        assert acked == sent
        assert len(got) == sent
    else:
        # The excess was discarded: never acknowledged, never delivered.
        assert 0 < acked <= at_most_passed(RATE, window), (acked, window)
        assert acked < sent
        assert len(got) <= acked
        # What passed is what was acknowledged, in order.
        payloads = [m.payload.decode() for m in got]
        assert payloads == sorted(payloads, key=lambda p: int(p[1:]))
    flood.close()
    watcher.close()


def test_deliveries_past_100_per_second_to_one_subscriber_are_discarded(limits_core, ident):
    core = limits_core
    watcher = Client(core, ident, "busy-watcher")
    assert watcher.sub("many/#", qos=1) == [1]
    # Three publishers, each within its own inbound quota (90 at once).
    pubs = [flooder(core, ident, f"pub{i}") for i in range(3)]
    all_acks = [Acks(p) for p in pubs]
    started = time.monotonic()
    for p in pubs:
        for i in range(90):
            p.c.publish("many/x", f"m{i}", qos=1)
    for a in all_acks:
        assert a.settle() == 90, "each publisher stayed within its own quota"
    got = []
    last = started
    while True:
        m = watcher.get(1.5)
        if m is None:
            break
        got.append(m)
        last = time.monotonic()
    calm = bystander_round_trip(core, ident, 20)
    assert calm == [f"calm {i}" for i in range(20)]
    print(f"[{core.mode}] 270 to one subscriber: {len(got)} delivered in {last - started:.2f} s")
    if core.mode == "off":
        assert len(got) == 270
    else:
        assert 0 < len(got) <= at_most_passed(RATE, last - started), (len(got), last - started)
        assert len(got) < 270
    for p in pubs:
        p.close()
    watcher.close()


def test_a_stream_over_512_kib_per_second_is_slowed_not_dropped(limits_core, ident):
    core = limits_core
    watcher = Client(core, ident, "stream-watcher")
    assert watcher.sub("stream/#", qos=1) == [1]
    stream = flooder(core, ident, "streamer")
    acks = Acks(stream)
    n, size = 30, 120 * 1024
    started = time.monotonic()
    for i in range(n):
        stream.c.publish("stream/x", bytes([i]) * size, qos=1)
    # Meanwhile another connection goes about its business.
    calm = bystander_round_trip(core, ident, 10)
    assert acks.settle(quiet=3) == n, "throughput past the quota is delayed, never dropped"
    got = received(watcher, quiet=3)
    assert [m.payload[0] for m in got] == list(range(n))
    assert all(len(m.payload) == size for m in got)
    assert calm == [f"calm {i}" for i in range(10)]
    print(f"[{core.mode}] {n} x {size // 1024} KiB: all acknowledged after "
          f"{acks.last - started:.2f} s")
    if core.mode == "aws":
        # A lower bound, which a slow machine cannot break: past the first
        # second's worth, the bytes came in at most 512 KiB a second.
        took = acks.last - started
        least = (n * size - BYTES_PER_S) / BYTES_PER_S
        assert took >= least * 0.9, (took, least)
    stream.close()
    watcher.close()


def filters(n, prefix="s"):
    return [f"{prefix}/{i}" for i in range(n)]


def subscribe_many(client, topics):
    """Subscribes in SUBSCRIBEs of at most 8 filters; returns every code."""
    codes = []
    for i in range(0, len(topics), 8):
        chunk = topics[i:i + 8]
        _, mid = client.c.subscribe([(t, 1) for t in chunk])
        deadline = time.time() + 5
        while time.time() < deadline:
            got_mid, rcs = client.subacks.get(timeout=5)
            if got_mid == mid:
                codes.extend(int(r.value) for r in rcs)
                break
    return codes


def test_the_51st_subscription_is_refused_with_0x80(limits_core, ident):
    core = limits_core
    c = Client(core, ident, "many-subs")
    assert subscribe_many(c, filters(50)) == [1] * 50
    # Re-subscribing a held filter replaces it: no new subscription.
    assert subscribe_many(c, ["s/0"]) == [1]
    codes = subscribe_many(c, ["s/50", "s/51"])
    if core.mode == "off":
        assert codes == [1, 1]
    else:
        assert codes == [SUBACK_FAILURE, SUBACK_FAILURE]
    # The connection stays, and its 50 subscriptions work.
    other = Client(core, ident, "sub-publisher")
    other.pub("s/49", "still here", qos=1)
    other.pub("s/50", "refused?", qos=1)
    got = [(m.topic, m.payload.decode()) for m in c.drain(1.5)]
    assert ("s/49", "still here") in got
    assert (("s/50", "refused?") in got) == (core.mode == "off")
    assert not c.disconnected.is_set()
    if core.mode == "aws":
        # Unsubscribing one makes room for one.
        c.c.unsubscribe("s/0")
        time.sleep(0.5)
        assert subscribe_many(c, ["s/50", "s/51"]) == [1, SUBACK_FAILURE]
    # Another connection has its own 50.
    fresh = Client(core, ident, "few-subs")
    assert subscribe_many(fresh, filters(8, "t")) == [1] * 8
    for x in (c, other, fresh):
        x.close()


def presence_watcher(core, ident):
    w = Client(core, ident, "presence-watcher")
    assert w.sub("$aws/events/presence/disconnected/+", qos=1) == [1]
    return w


def disconnect_reason(watcher, client_id, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = watcher.get(1)
        if m is not None and m.topic.endswith("/" + client_id):
            return json.loads(m.payload)["disconnectReason"]
    return None


def test_a_129_kib_message_disconnects_with_client_error(limits_core, ident):
    core = limits_core
    presence = presence_watcher(core, ident)
    watcher = Client(core, ident, "big-watcher")
    assert watcher.sub("big/#", qos=1) == [1]
    big = Client(core, ident, "big-sender")
    # 128 KiB passes ...
    assert big.pub("big/x", b"a" * (128 * 1024), qos=1, timeout=10).is_published()
    # ... 129 KiB is refused and the client disconnected, as AWS does.
    big.c.publish("big/x", b"b" * (129 * 1024), qos=1)
    assert big.disconnected.wait(10), "a message over 128 KiB must disconnect its sender"
    assert disconnect_reason(presence, "big-sender") == "CLIENT_ERROR"
    got = [len(m.payload) for m in watcher.drain(1)]
    assert got == [128 * 1024]
    assert bystander_round_trip(core, ident, 5) == [f"calm {i}" for i in range(5)]
    for x in (big, watcher, presence):
        x.close()


def test_nine_filters_in_one_subscribe_disconnect_with_client_error(limits_core, ident):
    core = limits_core
    presence = presence_watcher(core, ident)
    c = Client(core, ident, "nine-filters")
    assert subscribe_many(c, filters(8, "n")) == [1] * 8
    c.c.subscribe([(t, 1) for t in filters(9, "m")])
    assert c.disconnected.wait(10), "9 filters in one SUBSCRIBE must disconnect"
    assert disconnect_reason(presence, "nine-filters") == "CLIENT_ERROR"
    assert bystander_round_trip(core, ident, 5) == [f"calm {i}" for i in range(5)]
    c.close()
    presence.close()
