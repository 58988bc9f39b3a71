"""The dashboard's MQTT video route against `gopigo demo`: frames of the
robot's camera come through the broker (never from the robot's camera
port), in the same multipart format as the direct proxy, with each frame's
sequence number and capture time as part headers."""

import time
import urllib.error
import urllib.request

import pytest

from test_dashboard import Demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("demo"))
    yield d
    d.stop()


def read_part(r):
    head = b""
    while b"\r\n\r\n" not in head:
        head += r.read(1)
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in
               head.decode().split("\r\n") if ": " in line)}
    jpeg = r.read(int(headers["content-length"]))
    return headers, jpeg


def test_video_through_the_broker_reaches_the_dashboard(demo):
    auth = {"Authorization": f"Bearer {demo.token}"}
    req = urllib.request.Request(demo.url + "robots/robot1/video/mqtt", headers=auth)
    with urllib.request.urlopen(req, timeout=20) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        parts = [read_part(r) for _ in range(3)]
    seqs = []
    for headers, jpeg in parts:
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
        assert len(jpeg) <= 128 * 1024
        captured = int(headers["x-captured-at-ms"])
        assert time.time() * 1000 - 60_000 < captured <= time.time() * 1000, headers
        seqs.append(int(headers["x-frame-seq"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 3, seqs


def test_unknown_robot_and_missing_session_are_refused(demo):
    auth = {"Authorization": f"Bearer {demo.token}"}
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(
            demo.url + "robots/nosuchrobot/video/mqtt", headers=auth), timeout=5)
    assert e.value.code == 404 and b"video unavailable" in e.value.read()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(demo.url + "robots/robot1/video/mqtt", timeout=5)
    assert e.value.code in (401, 403)
