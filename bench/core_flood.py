"""The flood of issue 10 against the real `gopigo core` process: one MQTT
subscriber that never reads, N different 128 KiB QoS 0 messages from one
publisher; prints the core's RSS before, its peak (VmHWM) and after the
clients leave. (`cargo run --release -p gopigo-broker --example bench --
--flood` does the same to the broker alone, beside Mosquitto.)

    GOPIGO_BIN=target/release/gopigo python3 bench/core_flood.py [N]
"""

import socket
import ssl
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from conftest import Core, Identity, open_policy  # noqa: E402

SIZE = 128 * 1024


def varint(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(text):
    b = text.encode()
    return struct.pack(">H", len(b)) + b


def packet(kind, body):
    return bytes([kind]) + varint(len(body)) + body


def connect(core, ident, client_id):
    ctx = ssl.create_default_context(cafile=str(core.ca_path))
    ctx.load_cert_chain(str(ident.cert), str(ident.key))
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", core.mqtt_port)),
                           server_hostname="localhost")
    sock.sendall(packet(0x10, s("MQTT") + bytes([4, 2]) + struct.pack(">H", 60) + s(client_id)))
    assert sock.recv(4)[0] == 0x20, "no CONNACK"
    return sock


def kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12_000
    with tempfile.TemporaryDirectory() as tmp:
        # The flood is far past AWS's per-connection quotas on purpose (it
        # measures the broker's memory bounds): `--limits off`.
        core = Core(Path(tmp) / "core", extra=["--limits", "off"])
        try:
            ident = Identity(core, tmp, "flooder", open_policy(), attach_thing=False)
            pid = core.proc.pid
            before = kib(pid, "VmRSS:")
            sink = connect(core, ident, "sink")
            sink.sendall(packet(0x82, struct.pack(">H", 1) + s("flood/x") + b"\x00"))
            assert sink.recv(5)[0] == 0x90, "no SUBACK"
            # From here the sink reads nothing.
            pub = connect(core, ident, "publisher")
            payload = bytearray((i * 31) % 251 for i in range(SIZE))
            t0 = time.time()
            for i in range(n):
                payload[:8] = struct.pack(">Q", i)
                pub.sendall(packet(0x30, s("flood/x") + payload))
            pub.sendall(packet(0x32, s("flood/marker") + struct.pack(">H", 9) + b"done"))
            while pub.recv(4)[:1] != b"\x40":
                pass
            took = time.time() - t0
            peak = kib(pid, "VmHWM:")
            sink.close()
            pub.close()
            after = min((time.sleep(0.5), kib(pid, "VmRSS:"))[1] for _ in range(10))
            print(f"gopigo core, {n} x 128 KiB QoS 0 to a subscriber that never reads: "
                  f"RSS before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
                  f"after the clients left {after / 1024:.1f} MiB; publisher {took:.1f} s")
        finally:
            core.stop()


if __name__ == "__main__":
    main()
