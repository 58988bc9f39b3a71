"""`gopigo swarm`: many simulated robots in one process, each provisioned
against the local core and running the agent's own code. Observed from the
broker with mosquitto clients holding a controller identity."""

import json
import signal
import subprocess
import time

from conftest import GOPIGO, run


def controller(core, tmp_path, name="observer"):
    r = run(GOPIGO, "provision", "--thing", name, "--role", "controller", "--out",
            str(tmp_path / name), "--data-dir", str(core.data_dir), "--mqtt-host", "localhost")
    assert r.returncode == 0, r.stderr
    d = tmp_path / name
    return ["-h", "localhost", "-p", str(core.mqtt_port), "-i", name, "--cafile", str(d / "ca.pem"),
            "--cert", str(d / "cert.pem"), "--key", str(d / "key.pem")]


def start_swarm(core, tmp_path, count):
    p = subprocess.Popen([GOPIGO, "swarm", "--count", str(count), "--prefix", "sw", "--bundles",
                          str(tmp_path / "bundles"), "--data-dir", str(core.data_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.time() + 120
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "simulated robots running" in line:
            return p, lines
    p.kill()
    raise AssertionError("gopigo swarm did not start:\n" + "".join(lines))


def test_a_swarm_runs_each_robot_as_an_agent_and_stops_them_cleanly(core, tmp_path):
    mqtt = controller(core, tmp_path)
    swarm, lines = start_swarm(core, tmp_path, 3)
    try:
        assert any("3 robots provisioned" in l for l in lines), lines
        # each robot's retained status says online, as a lone agent's does
        topics = sum((["-t", f"gopigo/sw-{i}/status"] for i in (1, 2, 3)), [])
        r = subprocess.run(["mosquitto_sub", *mqtt, *topics, "-v", "-C", "3", "-W", "60"],
                           capture_output=True, text=True, timeout=90)
        seen = {}
        for line in r.stdout.splitlines():
            topic, payload = line.split(" ", 1)
            seen[topic] = json.loads(payload)
        assert set(seen) == {f"gopigo/sw-{i}/status" for i in (1, 2, 3)}, r.stdout + r.stderr
        assert all(s["online"] for s in seen.values()), seen
        # ... and each publishes telemetry from its simulated board
        r = subprocess.run(["mosquitto_sub", *mqtt, "-t", "gopigo/+/telemetry", "-v", "-C", "30", "-W", "60"],
                           capture_output=True, text=True, timeout=90)
        things = {line.split("/")[1] for line in r.stdout.splitlines()}
        assert things == {"sw-1", "sw-2", "sw-3"}, r.stdout + r.stderr
    finally:
        swarm.send_signal(signal.SIGTERM)
        out, _ = swarm.communicate(timeout=30)
    assert swarm.returncode == 0, "".join(lines) + out
    assert "3 robots stopped" in out, out
    # they said goodbye: the retained status is offline now
    r = subprocess.run(["mosquitto_sub", *mqtt, "-t", "gopigo/sw-2/status", "-C", "1", "-W", "30"],
                       capture_output=True, text=True, timeout=60)
    assert json.loads(r.stdout)["online"] is False, r.stdout + r.stderr


def test_a_swarm_refuses_a_count_out_of_range(core, tmp_path):
    for count in ("0", "501"):
        r = run(GOPIGO, "swarm", "--count", count, "--bundles", str(tmp_path / "b"),
                "--data-dir", str(core.data_dir))
        assert r.returncode != 0
        assert "--count" in r.stderr and "1 to 500" in r.stderr, r.stderr
