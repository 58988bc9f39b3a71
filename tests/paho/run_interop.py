#!/usr/bin/env python3
"""Runs Eclipse Paho's MQTT 3.1.1 interoperability suite (client_test.py,
vendored unmodified from eclipse/paho.mqtt.testing, see README.md) against
a broker over TLS with a client certificate, and prints each test's verdict
as JSON: {"testBasic": "pass", "test_keepalive": "fail", ...}.

    python3 tests/paho/run_interop.py --port 8883 --cafile ca.pem \\
        --cert device.pem --key device.key [--map-qos2]

The suite's V311 client speaks plain TCP. This harness gives it TLS by
replacing the `socket` its main module creates with one from an
`ssl.SSLContext`, and makes the changes TLS needs (README.md):
`send()` is serialised with a lock, because acknowledgements go out from
the receiver thread while the test thread publishes (an SSL connection is
not safe for concurrent writes), and the old socket is `shutdown()` before
it is closed on reconnect, so the receiver thread blocked in `recv()` on it
wakes up and stops; and a connect waits for the previous connection's
receiver thread to end (`wait_for_old_receiver`). `--map-qos2` sends QoS 1 wherever the suite asks for
QoS 2 (publish, subscribe, will), since AWS IoT refuses QoS 2.
"""

import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# The suite's `mqtt/__init__.py` imports its brokers too; only the clients
# and formats are vendored, so the package is declared here without it.
_pkg = types.ModuleType("mqtt")
_pkg.__path__ = [os.path.join(HERE, "mqtt")]
sys.modules["mqtt"] = _pkg

import client_test  # noqa: E402  (the vendored suite)
import mqtt.clients.V311 as mqtt_client  # noqa: E402
import mqtt.clients.V311.main as v311_main  # noqa: E402

SEND_LOCK = threading.RLock()


class SerialisedTlsSocket(ssl.SSLSocket):
    """An SSL socket safe for the suite's two writer threads."""

    def send(self, data, flags=0):
        # TLS change 1: one writer at a time.
        with SEND_LOCK:
            return super().send(data, flags)

    def close(self):
        # TLS change 2: wake the receiver thread blocked on the old socket.
        try:
            self.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        super().close()


def tls_socket_module(ctx, host):
    """A stand-in for the `socket` module in the client's main module."""

    def make(family=socket.AF_INET, kind=socket.SOCK_STREAM):
        return ctx.wrap_socket(socket.socket(family, kind), server_hostname=host)

    return types.SimpleNamespace(
        socket=make, AF_INET=socket.AF_INET, SOCK_STREAM=socket.SOCK_STREAM,
        SHUT_RDWR=socket.SHUT_RDWR, timeout=socket.timeout,
    )


def wait_for_old_receiver(limit_s=5.0):
    """Change 3: a connect first ends the receiver thread of the client's
    previous connection.

    The suite's client starts a receiver thread per connection and, on the
    next connect, closes the old socket without waiting for that thread; a
    thread still alive then reads from whatever socket reuses the old
    descriptor (seen: `BAD_RECORD_TYPE` in the old thread and
    `WRONG_VERSION_NUMBER` in the new handshake), or, for a clean-session-
    false connect that reuses the receiver object, a second thread reads the
    new socket alongside it. This only happens when the previous connection
    is still open when the next test starts: against AWS's broker rules the
    one `test_keepalive` leaves behind is, because AWS raises a 5 s keepalive
    to 30 s and so does not drop the silent client before
    `test_offline_message_queueing` reconnects it (a broker that drops it
    after 7.5 s ends the thread first)."""
    Client = mqtt_client.Client
    connect = Client.connect

    def con(self, *args, **kwargs):
        receiver = getattr(self, "_Client__receiver", None)
        sock = getattr(self, "sock", None)
        if receiver is not None and sock is not None and kwargs.get("newsocket", True):
            receiver.stopping = True
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            deadline = time.monotonic() + limit_s
            while getattr(receiver, "running", False) and time.monotonic() < deadline:
                time.sleep(0.05)
            receiver.stopping = False
        return connect(self, *args, **kwargs)

    Client.connect = con


def map_qos2_to_1():
    Client = mqtt_client.Client
    publish, subscribe, connect = Client.publish, Client.subscribe, Client.connect

    def pub(self, topic, payload, qos=0, retained=False):
        return publish(self, topic, payload, min(qos, 1), retained)

    def sub(self, topics, qoss):
        return subscribe(self, topics, [min(q, 1) for q in qoss])

    def con(self, *args, **kwargs):
        kwargs["willQoS"] = min(kwargs.get("willQoS", 2), 1)
        return connect(self, *args, **kwargs)

    Client.publish, Client.subscribe, Client.connect = pub, sub, con


class Verdicts(unittest.TextTestResult):
    verdicts = {}

    def addSuccess(self, test):
        super().addSuccess(test)
        self.verdicts[test._testMethodName] = "pass"

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.verdicts[test._testMethodName] = "fail"

    def addError(self, test, err):
        super().addError(test, err)
        self.verdicts[test._testMethodName] = "fail"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--map-qos2", action="store_true")
    a = p.parse_args()

    ctx = ssl.create_default_context(cafile=a.cafile)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.sslsocket_class = SerialisedTlsSocket
    v311_main.socket = tls_socket_module(ctx, a.host)
    wait_for_old_receiver()
    if a.map_qos2:
        map_qos2_to_1()
    # What client_test.py's __main__ sets up.
    client_test.host, client_test.port = a.host, a.port
    client_test.topics = ("TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA")
    client_test.wildtopics = ("TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#")
    client_test.nosubscribe_topics = ("test/nosubscribe",)

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(client_test.Test)
    runner = unittest.TextTestRunner(stream=sys.stderr, resultclass=Verdicts, verbosity=2)
    runner.run(suite)
    print(json.dumps(Verdicts.verdicts, sort_keys=True))


if __name__ == "__main__":
    main()
