"""The dashboard within AWS IoT's per-connection limits, end to end: with
several simulated robots online, its one broker connection receives a
robot's telemetry only while a page shows that robot (the page reports its
selection over the WebSocket), a new selection moves the subscription, a
hidden tab or a closed page lets it go, and the fleet list stays whole from
the robots' retained status and presence events alone.

What reaches the dashboard from the broker is observed on the page's own
WebSocket (every telemetry message the dashboard receives is relayed to
every page) and through /api/fleet."""

import time

import pytest

from test_dashboard import Demo, http_json, wait_for
from wsclient import WsClient

ROBOTS = ["fv1", "fv2", "fv3"]
# A message the robot published before the broker took the unsubscribe
# may still be on its way: messages stamped this long after the switch
# must not come.
IN_FLIGHT_MS = 1000


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("demo"), extra=["--robots", ",".join(ROBOTS)])
    yield d
    d.stop()


def open_page(demo):
    ws = WsClient(demo.addr, origin=demo.url.rstrip("/"), token=demo.token)
    hello = ws.recv()
    assert hello["type"] == "hello", hello
    return ws, hello


def show(ws, things):
    """Reports the page's view; returns the server's on_screen answer and
    the dashboard's clock (ms) when it came."""
    ws.send({"type": "view", "things": things})
    while True:
        m = ws.recv()
        assert m is not None, "no answer to the view"
        assert m["type"] != "error", m
        on = m.get("on_screen") if m["type"] == "on_screen" else None
        if on is not None and set(things) <= set(on["full_rate"] + on["waiting"]):
            return on, time.time() * 1000


def telemetry(msgs, since_ms=0):
    """thing -> robot timestamps of the telemetry messages stamped after `since_ms`."""
    out = {}
    for m in msgs:
        if m["type"] == "telemetry" and m["telemetry"]["ts_ms"] > since_ms:
            out.setdefault(m["thing"], []).append(m["telemetry"]["ts_ms"])
    return out


def fleet(demo):
    return http_json(demo.url + "api/fleet", token=demo.token)


def test_the_fleet_list_is_whole_without_any_telemetry(demo):
    ws, hello = open_page(demo)
    try:
        robots = {r["thing"]: r for r in hello["robots"]}
        assert set(ROBOTS) <= set(robots), robots
        for thing in ROBOTS:
            assert robots[thing]["online"] and robots[thing]["status_known"], robots[thing]
        assert hello["on_screen"]["full_rate"] == [], hello["on_screen"]
        # nothing shown: three robots at 5 Hz would bring ~20 messages here
        assert telemetry(ws.messages(2.0)) == {}
    finally:
        ws.close()


def test_only_the_selected_robot_telemetry_reaches_the_dashboard_and_moves_with_the_selection(demo):
    ws, _ = open_page(demo)
    try:
        on, _ = show(ws, ["fv2"])
        assert on["full_rate"] == ["fv2"] and on["waiting"] == [] and on["limit"] == 8, on
        got = telemetry(ws.messages(2.0))
        assert set(got) == {"fv2"}, got
        assert len(got["fv2"]) >= 3, got
        assert fleet(demo)["on_screen"]["full_rate"] == ["fv2"]

        # selecting another robot moves the subscription
        on, switched = show(ws, ["fv3"])
        assert on["full_rate"] == ["fv3"], on
        got = telemetry(ws.messages(2.5), since_ms=switched + IN_FLIGHT_MS)
        assert set(got) == {"fv3"}, f"fv2 still delivered after it was deselected: {got}"

        # a hidden tab shows nothing
        on, hidden = show(ws, [])
        assert on["full_rate"] == [], on
        assert telemetry(ws.messages(2.0), since_ms=hidden + IN_FLIGHT_MS) == {}
    finally:
        ws.close()


def test_a_robot_stays_followed_while_any_page_shows_it_and_is_let_go_with_the_last(demo):
    a, _ = open_page(demo)
    b, _ = open_page(demo)
    try:
        show(a, ["fv1"])
        show(b, ["fv1"])
        on, _ = show(a, [])
        assert on["full_rate"] == ["fv1"], "page b still shows fv1"
        got = telemetry(b.messages(1.5))
        assert set(got) == {"fv1"}, got
        b.close()
        wait_for("the last viewer's robot let go",
                 lambda: fleet(demo)["on_screen"]["full_rate"] == [], timeout=10)
    finally:
        a.close()
        b.close()


def test_a_page_cannot_subscribe_to_a_robot_outside_the_fleet(demo):
    ws, _ = open_page(demo)
    try:
        for bad in ["ghost", "fv1/#", "+"]:
            ws.send({"type": "view", "things": [bad]})
            m = ws.recv()
            while m and m["type"] != "error":
                m = ws.recv()
            assert m and "cannot show" in m["message"], m
        assert fleet(demo)["on_screen"]["full_rate"] == []
    finally:
        ws.close()


def test_a_robot_not_on_screen_still_shows_offline_when_it_stops(demo):
    import os
    import signal

    ws, _ = open_page(demo)
    try:
        show(ws, ["fv1"])
        os.kill(demo.info["robots"]["fv3"]["pid"], signal.SIGKILL)
        wait_for("fv3 offline in the fleet list",
                 lambda: any(r["thing"] == "fv3" and not r["online"] for r in fleet(demo)["robots"]),
                 timeout=60, every=0.5)
    finally:
        ws.close()
