"""Over-the-air agent updates through AWS IoT Jobs, end to end: the real
`gopigo` binary as core, as `gopigo update`, and as three simulated robots,
each running its own copy of the binary. Two robots take a new build (a
copy of the binary relabelled with another version, so the version they
report comes from the bytes they run); the third gets a download whose
bytes do not match the job's SHA-256, refuses it, and stays online on the
old version."""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from conftest import GOPIGO

MARK = b"gopigo-agent-version="
MARK_LEN = 96
NEW_VERSION = "0.0.0-e2e.2"


def gopigo(*args, timeout=300):
    return subprocess.run([GOPIGO, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def relabel(src, dst, version):
    """A copy of the binary whose marked version is `version`, without its
    debug sections (a debug build is over the agent's 256 MiB download cap;
    a release build, what robots get, is far under it)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    stripped = str(dst) + ".stripped"
    subprocess.run(["objcopy", "--strip-debug", str(src), stripped], check=True)
    data = bytearray(open(stripped, "rb").read())
    os.unlink(stripped)
    assert data.count(MARK) == 1, "the version mark must be in the binary exactly once"
    at = data.index(MARK) + len(MARK)
    field = version.encode().ljust(MARK_LEN - len(MARK), b"\0")
    data[at:at + len(field)] = field
    with open(dst, "wb") as f:
        f.write(data)
    os.chmod(dst, 0o755)


class Robot:
    """`<its own copy of gopigo> agent --sim` for a provisioned bundle."""

    def __init__(self, tmp_path, bundle, thing, deadline_s=90, config=None):
        self.dir = tmp_path / "robots" / thing
        self.dir.mkdir(parents=True)
        self.exe = self.dir / "gopigo"
        shutil.copy(GOPIGO, self.exe)
        os.chmod(self.exe, 0o755)
        env = dict(os.environ, GOPIGO_UPDATE_DEADLINE_S=str(deadline_s), RUST_LOG="info")
        self.proc = subprocess.Popen(
            [str(self.exe), "agent", "--config", str(config or bundle / "robot.toml"), "--sim", "--no-camera"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines, self.err = [], []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True).start()

    @staticmethod
    def _read(stream, out):
        for line in stream:
            out.append(line)

    def connections(self):
        return sum(1 for line in self.lines if line.startswith("connected"))

    def wait_connected(self, n=1, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.connections() >= n:
                return
            assert self.proc.poll() is None, "".join(self.lines + self.err)
            time.sleep(0.1)
        raise AssertionError("robot did not connect:\n" + "".join(self.lines + self.err))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def shadow_agent(data, thing):
    doc = json.loads(data.get_thing_shadow(thingName=thing)["payload"].read())
    return doc.get("state", {}).get("reported", {}).get("agent", {})


def wait_execution(iot, job, thing, want, timeout=240):
    deadline = time.time() + timeout
    e = None
    while time.time() < deadline:
        e = iot.describe_job_execution(jobId=job, thingName=thing)["execution"]
        if e["status"] in want:
            return e
        time.sleep(0.5)
    raise AssertionError(f"{thing}: execution still {e}")


def update(core, *args):
    r = gopigo("update", "--data-dir", core.data_dir, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    job = re.search(r"^job\s+(\S+)", r.stdout, re.M).group(1)
    url = re.search(r"^url\s+(\S+)", r.stdout, re.M).group(1)
    return job, url


def test_two_robots_update_and_a_corrupt_download_is_refused(core, tmp_path):
    iot, data = core.client(), core.client("iot-data")
    robots = {}
    try:
        for thing in ("r1", "r2", "r3"):
            out = tmp_path / "bundles" / thing
            r = gopigo("provision", "--thing", thing, "--data-dir", core.data_dir, "--out", out)
            assert r.returncode == 0, r.stdout + r.stderr
            robots[thing] = Robot(tmp_path, out, thing)
        for rb in robots.values():
            rb.wait_connected()
        old_version = shadow_agent(data, "r1")["version"]
        assert old_version and old_version != NEW_VERSION
        old_bytes = open(GOPIGO, "rb").read()

        new = tmp_path / "build" / "gopigo"
        new.parent.mkdir()
        relabel(GOPIGO, new, NEW_VERSION)
        job, url = update(core, "--thing", "r1", "--thing", "r2", "--binary", new)
        # r3's job announces the same build, but the file at its URL is a
        # damaged copy (one flipped byte, same size), as storage or a proxy
        # might serve it.
        good = core.data_dir / "files" / url.rsplit("/", 1)[1]
        damaged = bytearray(good.read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        token = "d" * 64
        (core.data_dir / "files" / token).write_bytes(damaged)
        bad_url = url.rsplit("/", 1)[0] + "/" + token
        bad_job, _ = update(core, "--thing", "r3", "--binary", new, "--job-id", "bad", "--url", bad_url)
        doc = json.loads(iot.get_job_document(jobId=job)["document"])
        assert doc["version"] == NEW_VERSION and doc["url"] == url and doc["size"] == new.stat().st_size

        for thing in ("r1", "r2"):
            e = wait_execution(iot, job, thing, {"SUCCEEDED", "FAILED", "REJECTED"})
            assert e["status"] == "SUCCEEDED", (e, "".join(robots[thing].lines + robots[thing].err))
            assert e["statusDetails"]["detailsMap"]["version"] == NEW_VERSION
            rb = robots[thing]
            rb.wait_connected(2)
            assert rb.proc.poll() is None
            assert shadow_agent(data, thing)["version"] == NEW_VERSION
            assert rb.exe.read_bytes() == new.read_bytes()
            assert (rb.dir / "gopigo.previous").read_bytes() == old_bytes
        assert iot.describe_job(jobId=job)["job"]["status"] == "COMPLETED"

        e = wait_execution(iot, bad_job, "r3", {"SUCCEEDED", "FAILED", "REJECTED"})
        assert e["status"] == "FAILED", e
        assert "checksum mismatch" in e["statusDetails"]["detailsMap"]["reason"]
        r3 = robots["r3"]
        assert r3.proc.poll() is None and r3.connections() == 1, "".join(r3.lines + r3.err)
        assert r3.exe.read_bytes() == old_bytes
        assert not (r3.dir / "gopigo.new").exists() and not (r3.dir / "gopigo.previous").exists()
        agent = shadow_agent(data, "r3")
        assert agent["version"] == old_version and agent["update"]["status"] == "FAILED"
    finally:
        for rb in robots.values():
            rb.stop()


def test_a_new_build_that_cannot_connect_is_rolled_back_and_reported_failed(core, tmp_path):
    """The core is frozen (SIGSTOP) from the moment the robot installs the
    new build until well past the new build's connection deadline: the new
    binary cannot connect, puts the previous one back and restarts into it,
    and the old version reports FAILED once the core answers again."""
    iot, data = core.client(), core.client("iot-data")
    out = tmp_path / "bundles" / "r4"
    r = gopigo("provision", "--thing", "r4", "--data-dir", core.data_dir, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    old_bytes = open(GOPIGO, "rb").read()
    new = tmp_path / "build" / "gopigo"
    new.parent.mkdir()
    relabel(GOPIGO, new, NEW_VERSION)
    rb = Robot(tmp_path, out, "r4", deadline_s=5)
    try:
        rb.wait_connected()
        old_version = shadow_agent(data, "r4")["version"]
        job, _ = update(core, "--thing", "r4", "--binary", new)
        deadline = time.time() + 120
        while time.time() < deadline and not any("installed" in line for line in rb.lines):
            assert rb.proc.poll() is None, "".join(rb.lines + rb.err)
            time.sleep(0.01)
        core.proc.send_signal(signal.SIGSTOP)
        try:
            # Past the deadline: the rollback is on disk.
            deadline = time.time() + 60
            while time.time() < deadline and rb.exe.read_bytes() != old_bytes:
                time.sleep(0.2)
            assert rb.exe.read_bytes() == old_bytes, "".join(rb.lines + rb.err)
        finally:
            core.proc.send_signal(signal.SIGCONT)
        e = wait_execution(iot, job, "r4", {"SUCCEEDED", "FAILED", "REJECTED"}, timeout=90)
        assert e["status"] == "FAILED", e
        details = e["statusDetails"]["detailsMap"]
        assert "did not connect by its deadline" in details["detail"], details
        assert details["version"] == old_version
        assert rb.proc.poll() is None
        assert shadow_agent(data, "r4")["version"] == old_version
    finally:
        rb.stop()


def test_a_robot_whose_policy_predates_jobs_reconnects_once_without_jobs(core, tmp_path):
    """A robot provisioned before updates existed may not use its jobs
    topics; the broker (as AWS) closes a client that subscribes or publishes
    where it may not. The agent takes that as "no jobs" for the rest of its
    run: one reconnect, not a reconnect loop."""
    from conftest import Identity, robot_policy
    from test_agent import write_robot_toml

    ident = Identity(core, tmp_path, "r5", policy_doc=robot_policy(jobs=False), policy_name="old-robot")
    cfg = write_robot_toml(tmp_path / "r5.toml", core, ident)
    rb = Robot(tmp_path, None, "r5", config=cfg)
    try:
        # The broker closes the first session at the jobs SUBSCRIBE; the
        # agent says why, reconnects once, and leaves its jobs topics alone.
        rb.wait_connected(2)
        assert any("predates over-the-air updates" in line for line in rb.err), "".join(rb.err)
        time.sleep(5)
        assert rb.proc.poll() is None and rb.connections() == 2, "".join(rb.lines + rb.err)
    finally:
        rb.stop()
