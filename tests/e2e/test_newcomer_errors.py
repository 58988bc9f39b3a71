"""The errors a newcomer meets first, against the real binary and core: each
names what happened and what to do, once, with full paths, in plain text.

- the board kind is never guessed: a build without `--features hardware`
  refuses a config that does not say `--sim` / `kind = "sim"`;
- a bundle moved as a whole still works (relative file names);
- a missing certificate or a key that does not match: each cause once, with
  the resolved path; no colour codes when stderr is not a terminal;
- `provision` while the core is down says to start `gopigo core`;
- no controller config: the `provision` command with `--thing`, and
  `--config` / `GOPIGO_CONTROLLER_CONFIG`;
- another program taking the same client id: the loser says so (CLI and
  agent);
- a certificate made INACTIVE while the agent runs: the agent says so once
  and points at `gopigo check`, and backs off.
"""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import GOPIGO, Core, free_port, run

ANSI = "\x1b["


def gopigo(*args, env=None, cwd=None, timeout=60):
    return run(GOPIGO, *map(str, args), env=env, cwd=cwd, timeout=timeout)


def provision(core, where, thing, *extra):
    out = Path(where) / thing
    r = gopigo("provision", "--thing", thing, "--data-dir", core.data_dir, "--out", out, *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def hardware_build():
    return "GoPiGo3 on /dev/spidev" in Path(GOPIGO).read_bytes().decode("latin-1")


class Proc:
    """A long-running gopigo with its output in files."""

    def __init__(self, tmp_path, name, *args, env=None):
        self.out = tmp_path / f"{name}.out"
        self.err = tmp_path / f"{name}.err"
        with open(self.out, "w") as o, open(self.err, "w") as e:
            self.proc = subprocess.Popen([GOPIGO, *map(str, args)], stdout=o, stderr=e, env=env)

    def text(self):
        return self.out.read_text() + self.err.read_text()

    def wait_for(self, needle, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {needle!r} within {timeout} s:\n{self.text()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def agent(tmp_path, name, bundle, *extra):
    return Proc(tmp_path, name, "agent", "--config", bundle / "robot.toml", "--sim",
                "--no-camera", *extra)


@pytest.mark.skipif(hardware_build(), reason="a hardware build defaults to the real board")
def test_the_board_kind_is_never_guessed(core, tmp_path):
    b = provision(core, tmp_path, "robot1")
    r = gopigo("agent", "--config", b / "robot.toml", "--no-camera", timeout=30)
    assert r.returncode != 0
    assert "[board] kind is not set" in r.stderr and "--sim" in r.stderr, r.stderr
    assert "--features hardware" in r.stderr, r.stderr
    assert "board " not in r.stdout, "nothing started"
    # a real-board config on this build: refused, saying why
    cfg = b / "real.toml"
    cfg.write_text((b / "robot.toml").read_text() + '\n[board]\nkind = "hardware"\n')
    r = gopigo("agent", "--config", cfg, "--no-camera", timeout=30)
    assert r.returncode != 0
    assert "built without the real-board support" in r.stderr and "--sim" in r.stderr, r.stderr
    # asked for, the simulator says where the choice came from
    cfg.write_text((b / "robot.toml").read_text() + '\n[board]\nkind = "sim"\n')
    a = Proc(tmp_path, "sim-by-file", "agent", "--config", cfg, "--no-camera")
    try:
        a.wait_for("connected")
        assert 'board       simulated GoPiGo3 ([board] kind = "sim")' in a.text()
    finally:
        a.stop()


def test_a_moved_bundle_still_works(core, tmp_path):
    made = provision(core, tmp_path / "first", "robot1")
    text = (made / "robot.toml").read_text()
    assert 'cert_file = "cert.pem"' in text and 'key_file = "key.pem"' in text, text
    moved = tmp_path / "elsewhere" / "robot1"
    moved.parent.mkdir()
    shutil.move(made, moved)
    r = gopigo("check", "--config", moved / "robot.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert str(moved / "cert.pem") in r.stdout, r.stdout
    # the agent too, with the config named relative to the working folder
    p = subprocess.Popen([GOPIGO, "agent", "--config", "robot.toml", "--sim", "--no-camera"],
                         cwd=moved, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        seen = ""
        while time.time() < deadline and "connected   " not in seen:
            line = p.stdout.readline()
            if not line:
                break
            seen += line
        assert "connected   " in seen, seen
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(15)


def test_each_cause_once_with_its_full_path_and_no_colour(core, tmp_path):
    b = provision(core, tmp_path, "robot1")
    (b / "cert.pem").rename(b / "cert.pem.away")
    # the config named without a folder: the message still shows the full path
    r = run(GOPIGO, "agent", "--config", "robot.toml", "--sim", "--no-camera", cwd=b, timeout=30)
    assert r.returncode != 0
    err = r.stderr
    assert ANSI not in err, repr(err)
    assert str(b / "cert.pem") in err, err
    assert err.count("No such file") == 1, err
    assert err.count("cannot read device certificate file") == 1, err
    # a key that does not belong to the certificate: said once
    (b / "cert.pem.away").rename(b / "cert.pem")
    other = provision(core, tmp_path / "other", "robot2")
    shutil.copy(other / "key.pem", b / "key.pem")
    r = run(GOPIGO, "agent", "--config", b / "robot.toml", "--sim", "--no-camera", timeout=30)
    assert r.returncode != 0
    assert r.stderr.count("does the certificate match the private key?") == 1, r.stderr
    assert ANSI not in r.stderr


def test_logs_have_no_colour_codes_off_a_terminal(core, tmp_path):
    b = provision(core, tmp_path, "robot1")
    a = agent(tmp_path, "plain", b)
    try:
        a.wait_for("connected to the broker")       # an INFO log line on stderr
    finally:
        a.stop()
    assert " INFO " in a.err.read_text() and ANSI not in a.err.read_text(), a.err.read_text()


def test_provision_while_the_core_is_down_says_to_start_it(core, tmp_path):
    core.stop()
    r = gopigo("provision", "--thing", "robot1", "--data-dir", core.data_dir,
               "--out", tmp_path / "robot1")
    assert r.returncode != 0
    assert "the local core is not running" in r.stderr and "`gopigo core`" in r.stderr, r.stderr
    assert ANSI not in r.stderr


def test_no_controller_config_names_the_whole_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GOPIGO_CONTROLLER_CONFIG"}
    env["GOPIGO_DEMO_DIR"] = str(tmp_path / "no-demo")
    r = gopigo("drive", "robot1", "stop", env=env)
    assert r.returncode != 0
    err = r.stderr
    tried = tmp_path / "no-demo" / "operator" / "controller.toml"
    for needle in ("gopigo provision --thing NAME --role controller", "--config",
                   "GOPIGO_CONTROLLER_CONFIG", str(tried)):
        assert needle in err, f"{needle!r} missing from {err}"
    assert err.count("No such file") == 1, err


def test_a_cli_that_loses_its_client_id_says_so(core, tmp_path):
    robot = provision(core, tmp_path, "robot1")
    op = provision(core, tmp_path, "operator", "--role", "controller")
    a = agent(tmp_path, "robot1", robot)
    watch = None
    try:
        a.wait_for("connected   ")
        watch = Proc(tmp_path, "watch", "watch", "--config", op / "robot.toml", "robot1")
        watch.wait_for("robot1 status")             # its session is up
        # a second program with the same identity takes the client id over
        r = gopigo("shadow", "get", "--config", op / "robot.toml", "robot1")
        assert r.returncode == 0, r.stderr
        watch.proc.wait(30)
        assert watch.proc.returncode != 0
        err = watch.err.read_text()
        assert "probably another client connected with the same client id (operator)" in err, err
        assert "is the core running" not in err, err
    finally:
        if watch:
            watch.stop()
        a.stop()


def test_two_agents_with_one_identity_say_so_once(tmp_path):
    core = FixedPortsCore(tmp_path / "core")      # its log is read below
    robot = provision(core, tmp_path, "robot1")
    first = agent(tmp_path, "first", robot)
    second = None
    try:
        first.wait_for("connected   ")
        second = agent(tmp_path, "second", robot)
        phrase = "probably another client connected with the same client id (robot1)"
        deadline = time.time() + 45
        while time.time() < deadline and not any(phrase in p.text() for p in (first, second)):
            time.sleep(0.2)
        logs = [p.err.read_text() for p in (first, second)]
        assert any(phrase in t for t in logs), "\n---\n".join(logs)
        # said once per agent, not at each of the reconnects that follow
        time.sleep(3)
        for t in (p.err.read_text() for p in (first, second)):
            assert t.count(phrase) <= 1, t
        # the broker, which knows, logs each takeover
        assert any("another connection took this client id over" in ln and "robot1" in ln
                   for ln in core.lines), "".join(core.lines)
    finally:
        for p in (first, second):
            if p:
                p.stop()
        core.stop()


class FixedPortsCore(Core):
    """A core that comes back on the same ports after a restart."""

    def __init__(self, data_dir):
        self.ports = [free_port() for _ in range(4)]
        super().__init__(data_dir)

    def start(self):
        control, mqtt, https, alpn = self.ports
        self.proc = subprocess.Popen(
            [GOPIGO, "core", "--data-dir", str(self.data_dir), "--port", str(control),
             "--mqtt-port", str(mqtt), "--https-port", str(https), "--alpn-port", str(alpn)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url, self.mqtt_port, self.lines = f"http://127.0.0.1:{control}", mqtt, []
        while True:
            line = self.proc.stdout.readline()
            assert line, "gopigo core did not start:\n" + "".join(self.lines)
            self.lines.append(line)
            if line.startswith("Stop with"):
                break
        import threading
        threading.Thread(target=lambda p=self.proc: [self.lines.append(x) for x in p.stdout],
                         daemon=True).start()


def test_a_certificate_made_inactive_is_said_once_with_the_check_command(tmp_path):
    core = FixedPortsCore(tmp_path / "core")
    a = None
    try:
        robot = provision(core, tmp_path, "robot1")
        # debug for the agent's own crate: shows each pause, not only what it says once
        env = dict(os.environ, RUST_LOG="info,gopigo_agent=debug")
        a = Proc(tmp_path, "robot1", "agent", "--config", robot / "robot.toml", "--sim",
                 "--no-camera", env=env)
        a.wait_for("connected   ")
        iot = core.client()
        cert_id = iot.list_thing_principals(thingName="robot1")["principals"][0].rsplit("/", 1)[1]
        iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
        core.restart()            # the agent reconnects, and is refused from now on
        phrase = "INACTIVE, REVOKED or deleted"
        a.wait_for(phrase, timeout=60)
        # the agent keeps trying with growing pauses, and says it once
        time.sleep(8)
        err = a.err.read_text()
        said = [ln for ln in err.splitlines() if " WARN " in ln and phrase in ln]
        assert len(said) == 1, err        # the repeats are debug lines only
        assert f"gopigo check --config {robot / 'robot.toml'}" in err, err
        assert "client id robot1" in err, err
        # the backoff: the pauses between attempts grow, no tight loop
        delays = [int(d) for d in re.findall(r"delay_ms=(\d+)", err)]
        assert len(delays) >= 3, err
        assert delays[-1] >= 2000 and delays[-1] > delays[0], delays
        assert a.proc.poll() is None, "the agent keeps running and retrying"
    finally:
        if a:
            a.stop()
        core.stop()


def test_provision_keeps_keys_out_of_the_working_folder(core, tmp_path):
    home, work = tmp_path / "home", tmp_path / "repo"
    home.mkdir()
    work.mkdir()
    env = dict(os.environ, HOME=str(home))
    r = run(GOPIGO, "provision", "--thing", "robot1", "--data-dir", str(core.data_dir),
            env=env, cwd=work, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (home / "gopigo-bundles" / "robot1" / "key.pem").is_file(), r.stdout
    assert list(work.iterdir()) == [], "nothing written where the command ran"
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert "/bundles/" in ignored, "an old ./bundles in the repository stays out of git"


def test_the_cli_with_the_core_down_says_to_start_it(core, tmp_path):
    op = provision(core, tmp_path, "operator", "--role", "controller")
    core.stop()
    r = gopigo("drive", "--config", op / "robot.toml", "robot1", "stop")
    assert r.returncode != 0
    assert "nothing accepts connections" in r.stderr and "`gopigo core`" in r.stderr, r.stderr
    assert "same client id" not in r.stderr and "INACTIVE" not in r.stderr, r.stderr
