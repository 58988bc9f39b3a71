"""`gopigo demo`, `gopigo drive`, `gopigo watch`, `gopigo shadow` and the
dashboard's HTTP side, end to end: the real binary, two simulated robots on
the local core, and the simulated board's debug endpoint as the witness of
what the wheels did."""

import base64
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import GOPIGO, free_port, run

# The sign-in line `gopigo demo` and `gopigo dashboard` print.
SIGN_IN = re.compile(r"(https?://[^\s/]+/)\?token=([A-Za-z0-9._~-]+)")


def http_json(url, timeout=5, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def curl(*args, timeout=15):
    """curl's status line and headers (-i), body included."""
    r = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", *args],
                       capture_output=True, text=True, timeout=timeout)
    return r


def status_of(out):
    return int(out.split(None, 2)[1])


def raw_http(addr, request, timeout=5):
    """Sends raw request bytes; returns the response head."""
    host, port = addr
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


def ws_request(addr, origin=None, cookie=None, token=None):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET /ws HTTP/1.1", f"Host: {addr[0]}:{addr[1]}", "Connection: Upgrade",
             "Upgrade: websocket", "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {key}"]
    if origin:
        lines.append(f"Origin: {origin}")
    if cookie:
        lines.append(f"Cookie: {cookie}")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return "\r\n".join(lines) + "\r\n\r\n"


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class Demo:
    def __init__(self, data_dir, extra=()):
        self.data_dir = Path(data_dir)
        self.proc = subprocess.Popen(
            # detectors off: nothing here reads detections, and on a small
            # machine they would compete with the robots for the CPU
            [GOPIGO, "demo", "--data-dir", str(self.data_dir), "--port", "0", "--no-detect", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines = []
        deadline = time.time() + 180
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if line.startswith("Stop with Ctrl-C."):
                break
        else:
            self.proc.kill()
        if not self.lines or not self.lines[-1].startswith("Stop with"):
            self.proc.kill()
            raise RuntimeError("gopigo demo did not start:\n" + "".join(self.lines))
        threading.Thread(target=self._drain, daemon=True).start()
        self.info = json.loads((self.data_dir / "demo.json").read_text())
        # Sign in from the URL the demo printed, as a user would.
        m = SIGN_IN.search("".join(self.lines))
        assert m, "the demo prints the signed-in URL:\n" + "".join(self.lines)
        self.url, self.token = m.group(1), m.group(2)
        assert self.url == self.info["dashboard_url"]
        assert self.token not in json.dumps(self.info), "the token is not written to demo.json"
        self.addr = ("127.0.0.1", int(self.url.rsplit(":", 1)[1].strip("/")))
        self.env = dict(os.environ, GOPIGO_CONTROLLER_CONFIG=self.info["operator_config"])

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def sim(self, thing):
        return http_json(self.info["robots"][thing]["sim_url"])

    def gopigo(self, *args, env=None, timeout=60):
        return subprocess.run([GOPIGO, *args], env=env or self.env, capture_output=True,
                              text=True, timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("demo"))
    yield d
    d.stop()


def wait_for(what, fn, timeout=10, every=0.1):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def test_demo_lists_both_robots_online_on_the_dashboard(demo):
    hello = http_json(demo.url + "api/fleet", token=demo.token)
    assert hello["broker"]["connected"] is True
    robots = {r["thing"]: r for r in hello["robots"]}
    assert set(robots) >= {"robot1", "robot2"}
    for r in robots.values():
        assert r["online"] and r["has_camera"], r
    req = urllib.request.Request(demo.url, headers={"Authorization": f"Bearer {demo.token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        page = r.read().decode()
    assert "GoPiGo fleet" in page and "/static/main.js" in page


def test_video_is_proxied_with_the_capture_time_in_each_part(demo):
    auth = {"Authorization": f"Bearer {demo.token}"}
    with urllib.request.urlopen(urllib.request.Request(demo.url + "robots/robot1/video", headers=auth),
                                timeout=10) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        head = b""
        while b"\r\n\r\n" not in head:
            head += r.read(1)
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")
                       if ": " in line)
        headers = {k.lower(): v for k, v in headers.items()}
        jpeg = r.read(int(headers["content-length"]))
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    # the simulated camera's own stamps, as headers of the part
    assert int(headers["x-frame-seq"]) > 0, headers
    captured = int(headers["x-captured-at-ms"])
    assert time.time() * 1000 - 60_000 < captured <= time.time() * 1000, headers
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(demo.url + "robots/nosuchrobot/video", headers=auth),
                               timeout=5)
    assert e.value.code == 404
    assert b"video unavailable" in e.value.read()


def test_drive_forward_moves_the_robot_and_prints_the_result(demo):
    x0 = demo.sim("robot1")["pose"]["x_mm"]
    r = demo.gopigo("drive", "robot1", "forward", "--for", "1s")
    assert r.returncode == 0, r.stderr
    assert "accepted" in r.stdout and "done" in r.stdout, r.stdout
    moved = demo.sim("robot1")["pose"]["x_mm"] - x0
    # 1 s at the default 300 dps on 66.5 mm wheels is about 174 mm.
    assert 100 < moved < 260, moved
    r = demo.gopigo("drive", "robot1", "turn", "-90", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["status"] == "done" and out["thing"] == "robot1"
    assert abs(demo.sim("robot1")["pose"]["heading_deg"] % 360 - 90) < 15 or \
        abs(demo.sim("robot1")["pose"]["heading_deg"] % 360 - 270) < 15


def test_drive_exits_non_zero_when_rejected_with_the_reason(demo):
    r = demo.gopigo("drive", "robot1", "forward", "--speed", "5000")
    assert r.returncode != 0 and "speed_dps" in r.stderr, "refused before sending"
    s = demo.sim("robot1")
    x, y, h = s["pose"]["x_mm"], s["pose"]["y_mm"], s["pose"]["heading_deg"]
    # a wall right in front of robot1, whichever way it faces
    import math
    fx, fy = x + 120 * math.cos(math.radians(h)), y + 120 * math.sin(math.radians(h))
    req = urllib.request.Request(
        demo.info["robots"]["robot1"]["sim_url"] + "/obstacle", method="POST",
        headers={"content-type": "application/json"},
        data=json.dumps({"x_mm": fx - 40, "y_mm": fy - 40, "w_mm": 80, "h_mm": 80}).encode())
    urllib.request.urlopen(req, timeout=5).read()
    try:
        r = demo.gopigo("drive", "robot1", "forward", "--for", "1s")
        assert r.returncode != 0
        assert "rejected" in r.stderr and "obstacle" in r.stderr, r.stderr
    finally:
        urllib.request.urlopen(urllib.request.Request(
            demo.info["robots"]["robot1"]["sim_url"] + "/obstacles", method="DELETE"), timeout=5).read()


def test_watch_shows_telemetry_and_results_while_driving(demo, tmp_path):
    # A second controller identity: the fleet policy ties a client id to its
    # thing, so `watch` and `drive` at the same time need one each.
    r = run(GOPIGO, "provision", "--thing", "watcher", "--role", "controller",
            "--out", str(tmp_path / "watcher"), "--data-dir", str(demo.data_dir / "core"),
            "--mqtt-host", "localhost",
            "--mqtt-port", demo.info["core"]["mqtt"].rsplit(":", 1)[1])
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, GOPIGO_CONTROLLER_CONFIG=str(tmp_path / "watcher" / "robot.toml"))
    watch = subprocess.Popen([GOPIGO, "watch", "robot2", "--json", "--count", "40"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    d = demo.gopigo("drive", "robot2", "spin-left", "--for", "800ms", "--json")
    assert d.returncode == 0, d.stderr
    cmd_id = json.loads(d.stdout.strip().splitlines()[-1])["id"]
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    msgs = [json.loads(line) for line in out.splitlines()]
    assert len(msgs) == 40
    kinds = {m["kind"] for m in msgs}
    assert {"status", "telemetry", "result"} <= kinds, kinds
    assert all(m["thing"] == "robot2" for m in msgs)
    results = [m["message"] for m in msgs if m["kind"] == "result"]
    assert any(r["id"] == cmd_id and r["status"] == "done" for r in results), results
    assert any(m["message"].get("motion") not in (None, "stopped") for m in msgs if m["kind"] == "telemetry")
    # human-readable form
    r = subprocess.run([GOPIGO, "watch", "robot2", "--count", "2"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "robot2 status     online" in r.stdout
    assert "robot2 telemetry  battery" in r.stdout
    # every robot: statuses too, though retained messages skip wildcards
    r = subprocess.run([GOPIGO, "watch", "--count", "12"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "robot1 status     online" in r.stdout and "robot2 status     online" in r.stdout, r.stdout


def test_shadow_set_reaches_the_robot(demo):
    r = demo.gopigo("shadow", "set", "robot1", "servo_angle=30", "led=#ff8000")
    assert r.returncode == 0, r.stderr
    def reported():
        g = demo.gopigo("shadow", "get", "robot1")
        assert g.returncode == 0, g.stderr
        rep = json.loads(g.stdout)["state"].get("reported", {})
        return rep.get("servo_angle") == 30 and rep.get("led") == [255, 128, 0] and rep
    wait_for("the robot to report the new settings", reported, timeout=15, every=0.5)
    r = demo.gopigo("shadow", "set", "robot1", "wheels=2")
    assert r.returncode != 0 and "unknown shadow key" in r.stderr


def sign_in_cookie(url, token):
    out = curl(f"{url}?token={token}").stdout
    assert status_of(out) == 303, out
    assert re.search(r"(?im)^location: /\r?$", out), out
    line = next(l for l in out.splitlines() if l.lower().startswith("set-cookie:"))
    for part in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert part in line, line
    return line.split(":", 1)[1].strip().split(";")[0]


def test_dashboard_refuses_requests_without_the_session(demo):
    # no cookie: the page is the sign-in form, the API and video say 401
    out = curl(demo.url).stdout
    assert status_of(out) == 401 and 'name="token"' in out, out
    for path in ("api/fleet", "robots/robot1/video", "static/main.js"):
        out = curl(demo.url + path).stdout
        assert status_of(out) == 401, (path, out)
        assert "robot1" not in out
    # a wrong token neither signs in nor sets a cookie
    out = curl(demo.url + "?token=" + "x" * 64).stdout
    assert status_of(out) == 401 and "set-cookie" not in out.lower(), out
    out = curl("-H", "Authorization: Bearer " + "x" * 64, demo.url + "api/fleet").stdout
    assert status_of(out) == 401
    # the printed URL signs in: the cookie alone then reads the fleet
    cookie = sign_in_cookie(demo.url, demo.token)
    assert demo.token not in cookie, "the cookie is a session secret, not the token"
    out = curl("-H", f"Cookie: {cookie}", demo.url + "api/fleet").stdout
    assert status_of(out) == 200 and '"robot1"' in out, out


def test_websocket_from_a_foreign_origin_is_refused_and_sends_nothing(demo):
    cookie = sign_in_cookie(demo.url, demo.token)
    own = f"http://127.0.0.1:{demo.addr[1]}"
    # with the right cookie and the dashboard's own origin: upgraded
    head = raw_http(demo.addr, ws_request(demo.addr, origin=own, cookie=cookie))
    assert head.startswith("HTTP/1.1 101"), head
    # the same from a page elsewhere (or a script without Origin): 403
    for origin in ("http://evil.example.com", f"http://127.0.0.1:{free_port()}", "null", None):
        head = raw_http(demo.addr, ws_request(demo.addr, origin=origin, cookie=cookie))
        assert head.startswith("HTTP/1.1 403"), (origin, head)
    # and no cookie at all: 401
    head = raw_http(demo.addr, ws_request(demo.addr, origin=own))
    assert head.startswith("HTTP/1.1 401"), head


def test_a_foreign_host_header_is_refused_dns_rebinding(demo):
    port = demo.addr[1]
    for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.2:{port}"):
        out = curl("-H", f"Host: {host}", "-H", f"Authorization: Bearer {demo.token}",
                   demo.url + "api/fleet").stdout
        assert status_of(out) == 421, (host, out)
        assert '"robots"' not in out
    out = curl("-H", f"Host: localhost:{port}", "-H", f"Authorization: Bearer {demo.token}",
               demo.url + "api/fleet").stdout
    assert status_of(out) == 200


def test_every_response_carries_the_security_headers(demo):
    for args in ([demo.url], [demo.url + "api/fleet"],
                 ["-H", f"Authorization: Bearer {demo.token}", demo.url],
                 ["-H", f"Authorization: Bearer {demo.token}", demo.url + "static/main.js"],
                 ["-H", "Host: attacker.example", demo.url]):
        out = curl(*args).stdout
        head = out.split("\r\n\r\n", 1)[0].lower()
        csp = re.search(r"(?m)^content-security-policy: (.*)$", head)
        assert csp, (args, head)
        assert "frame-ancestors 'none'" in csp.group(1) and "unsafe" not in csp.group(1)
        assert "x-content-type-options: nosniff" in head
        assert "x-frame-options: deny" in head
        assert "referrer-policy: no-referrer" in head


def test_drive_refuses_an_offline_robot_and_demo_stops_cleanly(demo):
    pid = demo.info["robots"]["robot2"]["pid"]
    os.kill(pid, signal.SIGTERM)
    wait_for("robot2 offline on the dashboard", lambda: any(
        r["thing"] == "robot2" and not r["online"]
        for r in http_json(demo.url + "api/fleet", token=demo.token)["robots"]))
    r = demo.gopigo("drive", "robot2", "forward")
    assert r.returncode != 0 and "offline" in r.stderr, r.stderr
    pids = [demo.info["core_pid"], demo.info["dashboard_pid"],
            *(r["pid"] for r in demo.info["robots"].values())]
    assert demo.stop() == 0, "".join(demo.lines)
    assert "gopigo demo stopped" in "".join(demo.lines)
    wait_for("no child left", lambda: not any(alive(p) for p in pids), timeout=5)


# ---- a dashboard of its own (broker unreachable: only its HTTP side counts) --

class Dashboard:
    def __init__(self, config, *args):
        self.proc = subprocess.Popen([GOPIGO, "dashboard", "--config", str(config), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if line.startswith("Stop with"):
                break
        text = "".join(self.lines)
        m = SIGN_IN.search(text)
        assert m, text
        self.url, self.token = m.group(1), m.group(2)
        self.addr = ("127.0.0.1", int(self.url.rsplit(":", 1)[1].strip("/")))
        threading.Thread(target=lambda: [self.lines.append(l) for l in self.proc.stdout], daemon=True).start()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def lone_config(demo, tmp_path_factory):
    """The demo's dashboard identity, pointed at a broker port nobody serves."""
    d = tmp_path_factory.mktemp("lone")
    src = Path(demo.info["dashboard_config"])
    text = src.read_text()
    text = re.sub(r"(?m)^port = \d+$", f"port = {free_port()}", text)
    # the bundle names its files relative to itself: point at them from the copy
    text = re.sub(r'(?m)^(\w+_file) = "(?!/)', lambda m: f'{m.group(1)} = "{src.parent}/', text)
    (d / "controller.toml").write_text(text)
    return d / "controller.toml"


def test_an_idle_connection_is_closed_after_the_idle_timeout(lone_config):
    dash = Dashboard(lone_config, "--idle-timeout", "1s")
    try:
        s = socket.create_connection(dash.addr, timeout=10)
        t0 = time.monotonic()
        assert s.recv(1) == b"", "the dashboard closed the silent connection"
        waited = time.monotonic() - t0
        print(f"# idle connection closed after {waited:.2f} s (timeout 1 s)")
        assert waited < 8
        s.close()
    finally:
        dash.stop()


def test_sigterm_exits_within_2s_with_idle_and_websocket_clients(lone_config):
    dash = Dashboard(lone_config)
    try:
        idle = [socket.create_connection(dash.addr, timeout=5) for _ in range(5)]
        slow = socket.create_connection(dash.addr, timeout=5)
        slow.sendall(b"GET /api/fleet HTTP/1.1\r\nHost: 127.0.0.1")   # never finished
        own = f"http://127.0.0.1:{dash.addr[1]}"
        sockets = []
        for _ in range(2):
            ws = socket.create_connection(dash.addr, timeout=5)
            ws.sendall(ws_request(dash.addr, origin=own, token=dash.token).encode())
            assert ws.recv(4096).startswith(b"HTTP/1.1 101")
            sockets.append(ws)
        t0 = time.monotonic()
        dash.proc.send_signal(signal.SIGTERM)
        code = dash.proc.wait(timeout=10)
        took = time.monotonic() - t0
        print(f"# dashboard exited {took:.2f} s after SIGTERM with 5 idle, 1 slow and 2 WebSocket clients")
        assert code == 0, "".join(dash.lines)
        assert took < 2.0, took
        for s in idle + sockets + [slow]:
            s.close()
    finally:
        dash.stop()


def test_plain_http_beyond_loopback_is_refused(lone_config):
    # 192.0.2.1 (TEST-NET-1) is not on this machine: the refusal must come
    # before any attempt to bind, so nothing ever listens beyond loopback.
    r = subprocess.run([GOPIGO, "dashboard", "--config", str(lone_config), "--host", "192.0.2.1",
                        "--port", "0", "--no-tls"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "refusing to serve the dashboard over plain HTTP on 192.0.2.1" in r.stderr, r.stderr
    assert "--tls-cert" in r.stderr


def test_a_made_tls_certificate_works_with_curl_and_its_fingerprint(lone_config, tmp_path):
    tls_dir = tmp_path / "tls"
    dash = Dashboard(lone_config, "--tls", "--tls-dir", str(tls_dir))
    try:
        text = "".join(dash.lines)
        assert dash.url.startswith("https://"), text
        fp = re.search(r"TLS certificate SHA-256 ([0-9A-F:]{95})", text).group(1)
        ca = tls_dir / "ca.pem"
        assert ca.exists() and str(ca) in text
        for f in ("ca.key", "server.key", "server.pem"):
            assert (tls_dir / f).stat().st_mode & 0o777 == 0o600, f
        # curl trusting the made CA
        out = curl("--cacert", str(ca), "-H", f"Authorization: Bearer {dash.token}", dash.url + "api/fleet").stdout
        assert status_of(out) == 200 and '"robots"' in out, out
        # without it curl refuses the certificate
        r = curl(dash.url + "api/fleet")
        assert r.returncode != 0
        # the certificate served is the one whose fingerprint was printed
        pem = ssl.get_server_certificate(dash.addr)
        der = ssl.PEM_cert_to_DER_cert(pem)
        got = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
        assert got == fp
        # over TLS the session cookie is Secure
        out = curl("--cacert", str(ca), f"{dash.url}?token={dash.token}").stdout
        cookie = next(l for l in out.splitlines() if l.lower().startswith("set-cookie:"))
        assert "Secure" in cookie and "HttpOnly" in cookie, cookie
        # and plain HTTP on the TLS port gets nothing useful
        head = raw_http(dash.addr, f"GET /api/fleet HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {dash.token}\r\n\r\n")
        assert "200 OK" not in head
    finally:
        dash.stop()
