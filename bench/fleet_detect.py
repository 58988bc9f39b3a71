"""Bench: one shared `gopigo detect` for the fleet against one process per robot.

For 2 and 4 simulated robots (`gopigo agent --sim`, 640x480 camera at 10 fps,
against a local `gopigo core`), the bench runs, one after the other:
- per-process: one `gopigo detect URL --thing ROBOT --mqtt-config ...` per
  robot (what `gopigo demo` did before), each with its own ONNX Runtime
  session of --threads T;
- shared setups: one `gopigo detect --thing R1 --url U1 --thing R2 --url U2 ...`
  with the same --threads T budget, the newest frame of each robot in turn:
  `shared-w1` is one worker (one session of T threads, as before workers
  existed), `shared-wK` is K workers (K sessions of T/K threads each, K
  frames of different robots at once), `shared-auto` is the default
  (`--workers auto`). A suffix `-spin` or `-nospin` sets `--spinning on|off`
  (default: `--spinning auto`, which spins with one worker only).
Every detector reads the robots' MJPEG streams (tokens from the retained
status) and publishes detections with a controller identity of its own.

Each process's JSON lines are stamped when they arrive; a frame's age is that
time minus its capture time (`frame_ts_ms`, same clock). After every stream
has produced a line, the bench counts for SECONDS. Printed per setup: total
frames/s processed, the slowest stream's frames/s, the worst stream's mean
frame age, and that age in the stream's own frame intervals (the time between
two processed frames of that stream). Also printed: frames per CPU-second
(the detectors' user+system time in the window, from /proc), which does not
depend on how many threads the setup has to compete with other load on a
busy machine: on an oversubscribed machine N processes simply get N shares
of the CPU, so the total frames/s alone favours the per-process setup there.
Goal (issue 14): shared >= 1.5x the per-process total, and no stream older
than 2 frame intervals on average. Ratios are printed against per-process
and against shared-w1 of the same run.

    python3 bench/fleet_detect.py [SECONDS] [THREADS] [CAMERA_FPS] [SETUPS] [FLEETS]
    # SETUPS: comma-separated, default per-process,shared-w1,shared-auto
    # FLEETS: comma-separated robot counts, default 2,4
    # GOPIGO_BIN, default target/release/gopigo if built, else target/debug/gopigo
    # needs the model (crates/vision/setup.sh)
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
if "GOPIGO_BIN" not in os.environ and (ROOT / "target" / "release" / "gopigo").exists():
    os.environ["GOPIGO_BIN"] = str(ROOT / "target" / "release" / "gopigo")
from conftest import GOPIGO, Core, Identity, open_policy, robot_policy  # noqa: E402
from test_agent import Agent, write_robot_toml  # noqa: E402

FLEETS = (2, 4)
SETUPS = ("per-process", "shared-w1", "shared-auto")


def detector_toml(core, ident, path):
    path.write_text(
        "[mqtt]\n"
        f'host = "localhost"\nport = {core.mqtt_port}\nclient_id = "{ident.thing}"\n'
        f'ca_file = "{core.ca_path}"\ncert_file = "{ident.cert}"\nkey_file = "{ident.key}"\n'
    )
    return path


class Detector:
    """A running `gopigo detect`; its lines as (arrival, thing, frame_ts_ms)."""

    def __init__(self, args, thing=None):
        env = {k: v for k, v in os.environ.items() if k not in ("GOPIGO_CAMERA_TOKEN", "GOPIGO_THING")}
        self.proc = subprocess.Popen([GOPIGO, "detect", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        self.thing = thing
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            now = time.time()
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            self.lines.append((now, doc.get("thing", self.thing), doc["frame_ts_ms"]))

    def cpu_s(self):
        """User + system CPU seconds of the process so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(detectors, things, seconds):
    """Waits for a line of every stream, then counts for `seconds`."""
    deadline = time.time() + 120
    while time.time() < deadline:
        seen = {t for d in detectors for (_, t, _) in d.lines}
        if seen >= set(things):
            break
        time.sleep(0.2)
    else:
        raise SystemExit(f"not every stream produced a line in 120 s: {things}")
    start, cpu0 = time.time(), sum(d.cpu_s() for d in detectors)
    time.sleep(seconds)
    end, cpu = time.time(), sum(d.cpu_s() for d in detectors) - cpu0
    lines = [x for d in detectors for x in d.lines if start <= x[0] < end]
    per = {}
    for t in things:
        mine = sorted(x for x in lines if x[1] == t)
        ages = [a - ts / 1000 for (a, _, ts) in mine]
        gaps = [b[0] - a[0] for a, b in zip(mine, mine[1:])]
        per[t] = {
            "fps": len(mine) / (end - start),
            "age_ms": 1000 * statistics.mean(ages) if ages else float("inf"),
            "interval_ms": 1000 * statistics.mean(gaps) if gaps else float("inf"),
        }
    return {"total_fps": len(lines) / (end - start), "per": per, "per_cpu_s": len(lines) / max(cpu, 1e-9)}


def shared_args(kind):
    """`--workers` and `--spinning` of a shared setup's name (shared-w2-nospin)."""
    parts = kind.split("-")[1:]
    if not parts or parts[0] not in ("auto",) and not (parts[0].startswith("w") and parts[0][1:].isdigit()):
        raise SystemExit(f"unknown setup {kind}: per-process, shared-auto or shared-wK[-spin|-nospin]")
    args = ["--workers", "auto" if parts[0] == "auto" else parts[0][1:]]
    spin = {"spin": "on", "nospin": "off"}
    for p in parts[1:]:
        if p not in spin:
            raise SystemExit(f"unknown setup {kind}: the suffix is -spin or -nospin")
        args += ["--spinning", spin[p]]
    return args


def run_setup(kind, n, robots, dets, threads, seconds):
    things = [r["thing"] for r in robots[:n]]
    model = ["--threads", str(threads)]
    if kind == "per-process":
        procs = [Detector([r["camera"], "--thing", r["thing"], "--mqtt-config", str(dets[i]), *model],
                          r["thing"]) for i, r in enumerate(robots[:n])]
    else:
        pairs = [a for r in robots[:n] for a in ("--thing", r["thing"], "--url", r["camera"])]
        procs = [Detector(["--mqtt-config", str(dets[0]), *pairs, *model, *shared_args(kind)])]
    try:
        return measure(procs, things, seconds)
    finally:
        for p in procs:
            p.stop()


def ratio(m, base, key):
    return f"{m[key] / base[key]:.2f}x" if base else "-"


def row(kind, n, m, base=None, one=None):
    per = m["per"].values()
    worst_age = max(p["age_ms"] for p in per)
    worst_ratio = max(p["age_ms"] / p["interval_ms"] for p in per)
    slowest = min(p["fps"] for p in per)
    return (f"| {n} | {kind} | {m['total_fps']:.1f} | {ratio(m, base, 'total_fps')} | "
            f"{ratio(m, one, 'total_fps')} | {m['per_cpu_s']:.2f} | {ratio(m, base, 'per_cpu_s')} | "
            f"{slowest:.1f} | {worst_age:.0f} | {worst_ratio:.2f} | {os.getloadavg()[0]:.2f} |")


def start_robots(core, tmp, fps, count):
    """`count` simulated robots with cameras at `fps`, and a detector identity per robot."""
    agents, robots, dets = [], [], []
    for i in range(count):
        ident = Identity(core, tmp / "ids", f"fleetbot{i + 1}", robot_policy(), policy_name="robot")
        cfg = write_robot_toml(tmp / f"robot{i}.toml", core, ident)
        cfg.write_text(cfg.read_text().replace("fps = 10.0", f"fps = {fps}"))
        agent = Agent(cfg)
        agents.append(agent)
        robots.append({"thing": ident.thing, "camera": agent.camera})
    for i in range(count):
        ident = Identity(core, tmp / "ids", f"detector{i}", open_policy(), policy_name="open",
                         attach_thing=False)
        dets.append(detector_toml(core, ident, tmp / f"detector{i}.toml"))
    return agents, robots, dets


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    fps = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    setups = sys.argv[4].split(",") if len(sys.argv) > 4 else list(SETUPS)
    fleets = [int(n) for n in sys.argv[5].split(",")] if len(sys.argv) > 5 else list(FLEETS)
    for kind in setups:
        if kind != "per-process":
            shared_args(kind)
    print(f"binary: {GOPIGO}; {os.cpu_count()} CPUs; {seconds:.0f} s per setup; "
          f"--threads {threads} per setup; cameras 640x480 at {fps:g} fps")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        core = Core(tmp / "core")
        agents = []
        try:
            agents, robots, dets = start_robots(core, tmp, fps, max(fleets))
            print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
            print("| robots | setup | total frames/s | vs per-process | vs shared-w1 | frames per CPU-s "
                  "| CPU-s vs per-process | slowest stream frames/s | worst stream mean age ms "
                  "| worst age in frame intervals | load avg (1 min) after |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            for n in fleets:
                got = {}
                for kind in setups:
                    got[kind] = run_setup(kind, n, robots, dets, threads, seconds)
                    print(row(kind, n, got[kind], got.get("per-process"), got.get("shared-w1")),
                          flush=True)
        finally:
            for a in agents:
                a.stop()
            core.stop()


if __name__ == "__main__":
    main()
