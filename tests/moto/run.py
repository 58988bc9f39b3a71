#!/usr/bin/env python3
"""Runs moto 5.2.1's own IoT test suite, unmodified, against the real `gopigo core`.

    python3 tests/moto/run.py            # run, print counts, compare with expected.txt
    python3 tests/moto/run.py --update   # run, then rewrite expected.txt from the results
    python3 tests/moto/run.py --fetch    # only fetch moto's source package (set-up does this)
    python3 tests/moto/run.py -k shadow  # extra arguments go to pytest

The tests are `tests/test_iot*` of moto's source package from PyPI (pinned by
version and SHA-256 below), extracted into ~/.cache/gopigo. plugin.py makes
`mock_aws` a no-op and points boto3's `iot` and `iot-data` clients at a fresh
core per test. expected.txt holds one line per test: `<test id> -> pass`,
`-> fail: <reason>` or `-> n/a: <reason>`. The run fails when a test that
expected.txt says passes does not pass, or when the set of tests differs;
tests that pass but are listed as failing are reported (run --update).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXPECTED = HERE / "expected.txt"
VERSION = "5.2.1"
SHA256 = "ccb2f3e1dfa82e50e054bda98b0be708d244d2668364dcc1d45e8d3de6091bde"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gopigo" / f"moto-{VERSION}"
SUITES = ("tests/test_iot", "tests/test_iotdata")
# Reasons a person wrote (kept by --update while the verdict stays); others
# are made by the plugin from the failure and remade on every update.
HAND_WRITTEN = ("AWS and moto disagree", "out of scope")
# moto's test package's own support files, needed to import its tests.
SUPPORT = ("tests/__init__.py", "tests/conftest.py", "tests/markers.py")


def fetch():
    """Downloads moto's sdist with pip (once) and extracts its IoT tests."""
    done = CACHE / ".complete"
    if done.exists():
        return CACHE
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(
            [sys.executable, "-m", "pip", "download", f"moto=={VERSION}", "--no-deps",
             "--no-binary", ":all:", "-d", tmp, "-q", "--disable-pip-version-check"],
            capture_output=True, text=True,
        )
        if r.returncode != 0:
            sys.exit(f"cannot download moto {VERSION}'s source package with pip: {r.stderr}")
        sdist = Path(tmp) / f"moto-{VERSION}.tar.gz"
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SHA256:
            sys.exit(f"{sdist.name} has SHA-256 {digest}, expected {SHA256}: refusing to run it")
        if CACHE.exists():
            shutil.rmtree(CACHE)
        CACHE.mkdir(parents=True)
        prefix = f"moto-{VERSION}/"
        with tarfile.open(sdist) as tar:
            members = [
                m for m in tar.getmembers()
                if m.isfile() and m.name.startswith(prefix)
                and (m.name[len(prefix):] in SUPPORT
                     or any(m.name[len(prefix):].startswith(s + "/") for s in SUITES))
            ]
            for m in members:
                m.name = m.name[len(prefix):]
            tar.extractall(CACHE, members=members, filter="data")
    done.write_text(VERSION)
    return CACHE


def read_expected():
    out = {}
    if not EXPECTED.exists():
        return out
    for n, line in enumerate(EXPECTED.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        test, sep, verdict = line.partition(" -> ")
        if not sep:
            sys.exit(f"{EXPECTED}:{n}: expected '<test id> -> pass|fail: reason|n/a: reason'")
        kind, _, reason = verdict.partition(":")
        out[test.strip()] = (kind.strip(), reason.strip())
    return out


def write_expected(results, old):
    lines = [
        "# moto 5.2.1's tests/test_iot* against gopigo core: one line per test,",
        "# '<test id> -> pass | fail: <reason> | n/a: <reason>'.",
        "# Rewrite with `python3 tests/moto/run.py --update`; reasons that start",
        "# with 'AWS and moto disagree' or 'out of scope' are hand-written and kept",
        "# while the verdict stays the same; the others are remade from the failure.",
    ]
    for test in sorted(results):
        kind, reason = results[test]
        okind, oreason = old.get(test, ("", ""))
        if okind == kind and oreason.startswith(HAND_WRITTEN):
            reason = oreason
        lines.append(f"{test} -> {kind}" + (f": {reason}" if kind != "pass" else ""))
    EXPECTED.write_text("\n".join(lines) + "\n")


def run_suite(suite_dir, extra):
    with tempfile.TemporaryDirectory() as tmp:
        results_file = Path(tmp) / "results.json"
        env = dict(os.environ)
        env["GOPIGO_MOTO_RESULTS"] = str(results_file)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        env.setdefault("GOPIGO_BIN", str(ROOT / "target" / "debug" / "gopigo"))
        cmd = [sys.executable, "-m", "pytest", "-p", "plugin", "-p", "no:cacheprovider",
               "-q", "--no-header", "-rN", "--tb=no", "-o", "addopts=", "-p", "no:warnings", *SUITES, *extra]
        subprocess.run(cmd, cwd=suite_dir, env=env)
        if not results_file.exists():
            sys.exit("the moto suite did not run (see pytest's output above)")
        return {k: tuple(v) for k, v in json.loads(results_file.read_text()).items()}


def compare(results, expected, partial):
    """Problems that fail the run, and notes that do not."""
    problems, notes = [], []
    for test, (kind, reason) in sorted(results.items()):
        want = expected.get(test)
        if want is None:
            problems.append(f"new test {test} ({kind}): not in {EXPECTED.name}; run --update")
        elif want[0] == "pass" and kind != "pass":
            problems.append(f"REGRESSION {test}: passed before, now {kind}: {reason}")
        elif want[0] != "pass" and kind == "pass":
            notes.append(f"now passes: {test} (was {want[0]}: {want[1]}); run --update")
    if not partial:
        for test in sorted(set(expected) - set(results)):
            problems.append(f"{test} is in {EXPECTED.name} but did not run")
    return problems, notes


def counts(results):
    c = {"pass": 0, "fail": 0, "n/a": 0}
    for kind, _ in results.values():
        c[kind] = c.get(kind, 0) + 1
    return c


def main(argv):
    update = "--update" in argv
    if "--fetch" in argv:
        print(f"moto {VERSION} tests in {fetch()}")
        return 0
    extra = [a for a in argv if a != "--update"]
    suite_dir = fetch()
    results = run_suite(suite_dir, extra)
    expected = read_expected()
    c = counts(results)
    applicable = c["pass"] + c["fail"]
    print(f"moto {VERSION} IoT suite against gopigo core: {c['pass']} passed, "
          f"{c['fail']} failed, {c['n/a']} not applicable ({c['pass']}/{applicable} applicable pass)")
    if update:
        if extra:
            sys.exit("--update needs the whole suite: run it without pytest arguments")
        write_expected(results, expected)
        print(f"wrote {EXPECTED.relative_to(ROOT)}")
        return 0
    problems, notes = compare(results, expected, partial=bool(extra))
    for n in notes:
        print(n)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
