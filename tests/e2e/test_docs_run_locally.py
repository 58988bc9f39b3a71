"""docs/run-locally.md, run as written.

The test reads the page's ```sh blocks from the Markdown itself and runs
them, in order, in one bash session, so the page cannot drift from the
program. What it changes, and why:

- `gopigo` on PATH is the binary under test (GOPIGO_BIN), not
  `cargo install` (the block marked `<!-- test: skip -->`);
- HOME is a temporary folder (the bundles and the core's data dir land
  there), AWS_* and GOPIGO_* variables of the caller are dropped;
- ports: the core's come from GOPIGO_CORE_*=0 (picked by the kernel), the
  dashboard's from GOPIGO_DASHBOARD_PORT, and the page's two fixed camera
  ports (8081, 8082) are rewritten to free ones, so the test runs beside
  others;
- a background command the page annotates with `# prints "TEXT"` gets its
  output in a log, and the session waits (bounded) until TEXT appears, as a
  reader waits for the line;
- without the YOLO model (crates/vision/setup.sh) the detector block is
  replaced by `DETECTOR=` and the rest still runs.

At the end every process the session started is gone: the page's own
step 8 stops them, and the test kills the session's process group anyway.
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import GOPIGO, ROOT, free_port

PAGE = ROOT / "docs" / "run-locally.md"
BACKGROUND = re.compile(r'^(?P<cmd>.*\S)\s*&\s*#\s*prints "(?P<ready>[^"]+)"')

WAIT_FOR = r'''
__wait_for() {  # log, text, pid: until the log holds the text (at most 120 s)
    for _ in $(seq 1 600); do
        grep -qF -- "$2" "$1" && return 0
        if ! kill -0 "$3" 2>/dev/null; then
            echo "__test: exited before printing '$2':"; cat "$1"; return 1
        fi
        sleep 0.2
    done
    echo "__test: no '$2' within 120 s:"; cat "$1"; return 1
}
'''


def page_blocks(text):
    """The page's ```sh blocks in order, except those marked to skip."""
    blocks, skip, lines, i = [], False, text.splitlines(), 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("<!-- test: skip"):
            skip = True
        elif line == "```sh":
            end = lines.index("```", i + 1)
            if not skip:
                blocks.append(lines[i + 1:end])
            skip, i = False, end
        i += 1
    return blocks


def logical_lines(block):
    """Joins backslash continuations."""
    out, cur = [], ""
    for line in block:
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
        else:
            out.append(cur + line)
            cur = ""
    return out


def script_for(blocks, logs, cams, detector):
    lines = ["set -euo pipefail", WAIT_FOR]
    for block in blocks:
        text = "\n".join(block)
        if "gopigo detect " in text and not detector:
            lines.append("DETECTOR=   # __test: no YOLO model here")
            continue
        for line in logical_lines(block):
            for fixed, port in cams.items():
                line = re.sub(rf"\b{fixed}\b", str(port), line)
            m = BACKGROUND.match(line)
            if m:
                log = logs / f"job{len(list(logs.iterdir()))}.log"
                log.touch()
                lines.append(f"{m['cmd']} > {log} 2>&1 &")
                lines.append(f"__wait_for {log} '{m['ready']}' $!")
            else:
                lines.append(f"echo '__test$ '{quote(line)}")
                lines.append(line)
    return "\n".join(lines) + "\n"


def quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def environment(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gopigo").symlink_to(Path(GOPIGO).resolve())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GOPIGO_", "AWSIOT_"))}
    real_cache = Path(os.environ.get("GOPIGO_CACHE", Path.home() / ".cache" / "gopigo"))
    env.update(
        HOME=str(tmp_path / "home"),
        PATH=f"{bindir}:{os.environ['PATH']}",
        GOPIGO_CACHE=str(real_cache),
        GOPIGO_CORE_PORT="0",
        GOPIGO_CORE_MQTT_PORT="0",
        GOPIGO_CORE_HTTPS_PORT="0",
        GOPIGO_CORE_ALPN_PORT="0",
        GOPIGO_DASHBOARD_PORT=str(free_port()),
        NO_COLOR="1",
    )
    (tmp_path / "home").mkdir()
    vision = real_cache / "vision"
    detector = (vision / "lib" / "libonnxruntime.so").exists() and any(
        (vision / "model" / f).exists() for f in ("yolov3-tiny.onnx", "yolov3-tiny.weights"))
    return env, detector


def test_run_locally_page_runs_as_written(tmp_path):
    blocks = page_blocks(PAGE.read_text())
    assert len(blocks) >= 8, "the page's command blocks were not found"
    logs = tmp_path / "logs"
    logs.mkdir()
    env, detector = environment(tmp_path)
    cams = {8081: free_port(), 8082: free_port()}
    script = tmp_path / "run-locally.sh"
    script.write_text(script_for(blocks, logs, cams, detector))
    proc = subprocess.Popen(["bash", str(script)], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=420)
        # the page stopped what it started: nothing of the session is left
        time.sleep(0.5)
        left = subprocess.run(["pgrep", "-a", "-g", str(proc.pid)],
                              capture_output=True, text=True).stdout.strip()
    finally:
        # Whatever happened, nothing the page started outlives the test.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    jobs = "".join(f"\n--- {p.name}\n{p.read_text()}" for p in sorted(logs.iterdir()))
    assert proc.returncode == 0, out + jobs

    # What the page promises, seen in the output.
    assert "changed: created thing robot1" in out or "created thing robot1" in out, out
    assert re.search(r"PASS\s+round trip", out), out
    assert "done" in out and "accepted" in out, out                       # drive
    assert out.count('"things": []') >= 1, out                             # all deprovisioned
    if detector:   # the detector's boxes reach `gopigo watch --detections`
        assert re.search(r"robot1 detections \d+: ", out), out
    job_text = [p.read_text() for p in sorted(logs.iterdir())]
    agents = [t for t in job_text if re.search(r"(?m)^board ", t)]
    assert len(agents) == 2, jobs
    for a in agents:
        assert "board       simulated GoPiGo3 (--sim)" in a, a
        assert re.search(r"camera\s+http://127\.0\.0\.1:\d+/stream\.mjpg", a), a
        assert "sim final" in a, a           # stopped cleanly by the page's kill
    assert not (tmp_path / "bundles").exists(), "no keys in the working folder"
    assert not (tmp_path / "home" / "gopigo-bundles").exists(), "step 8 removes the bundles"
    assert left == "", f"still running after the page's step 8:\n{left}"
