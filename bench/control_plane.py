"""Bench: control-plane latency of the local core beside moto's server (the
reference peer), same client (boto3), same CSR, same run. Prints a table.

    python3 bench/control_plane.py [N]      # needs target/release/gopigo or GOPIGO_BIN
"""

import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
import boto3  # noqa: E402
from conftest import Core, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, int(len(out) * 0.99))]


def workload(iot, csr, n):
    rows = {}
    rows["create-certificate-from-csr"] = timed(
        lambda: iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=True), n)
    counter = iter(range(10**9))
    rows["create-thing"] = timed(lambda: iot.create_thing(thingName=f"b{next(counter)}"), n)
    rows["describe-thing"] = timed(lambda: iot.describe_thing(thingName="b0"), n)
    rows["list-things (first page)"] = timed(lambda: iot.list_things(maxResults=50), n)
    return rows


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    os.environ.setdefault("GOPIGO_BIN", str(ROOT / "target" / "release" / "gopigo"))
    import conftest

    conftest.GOPIGO = os.environ["GOPIGO_BIN"]
    tmp = Path(tempfile.mkdtemp())
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(tmp / "k"), "-out", str(tmp / "c.csr"), "-subj", "/CN=bench"],
                   check=True, capture_output=True)
    csr = (tmp / "c.csr").read_text()
    core = Core(tmp / "core")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        ours = workload(core.client(), csr, n)
        ref = workload(boto3.client("iot", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                    aws_access_key_id="t", aws_secret_access_key="t"), csr, n)
    finally:
        core.stop()
        moto.stop()
    print(f"control plane, boto3 client, {n} calls each, ms (lower is better)")
    print(f"{'operation':30} {'ours p50':>9} {'ours p99':>9} {'moto p50':>9} {'moto p99':>9} {'speed-up p50':>13}")
    for op in ours:
        (a50, a99), (b50, b99) = ours[op], ref[op]
        print(f"{op:30} {a50:9.2f} {a99:9.2f} {b50:9.2f} {b99:9.2f} {b50 / a50:12.2f}x")


if __name__ == "__main__":
    main()
