"""A small synchronous wrapper over paho-mqtt for the tests."""

import queue
import ssl
import threading
import time

import paho.mqtt.client as mqtt


class Client:
    def __init__(self, core, ident, client_id, port=None, clean=True, will=None, keepalive=60,
                 connect=True):
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=clean, protocol=mqtt.MQTTv311)
        self.c.tls_set(ca_certs=str(core.ca_path), certfile=str(ident.cert), keyfile=str(ident.key),
                       cert_reqs=ssl.CERT_REQUIRED)
        if will:
            self.c.will_set(*will)
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subacks = queue.Queue()
        self.connect_rc = None
        self.session_present = None
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *a: self.disconnected.set()
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put((mid, rcs))
        self.port = port or core.mqtt_port
        self.keepalive = keepalive
        if connect:
            self.connect()

    def _on_connect(self, c, u, flags, rc, props):
        self.connect_rc = rc
        self.session_present = flags.session_present
        self.connected.set()

    def connect(self, timeout=10):
        self.c.connect("localhost", self.port, keepalive=self.keepalive)
        self.c.loop_start()
        if not self.connected.wait(timeout):
            raise AssertionError("no CONNACK")
        return self

    def sub(self, topic, qos=1, timeout=5):
        _, mid = self.c.subscribe(topic, qos)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                got_mid, rcs = self.subacks.get(timeout=0.1)
                if got_mid == mid:
                    return rcs
            except queue.Empty:
                if self.disconnected.is_set():
                    return None
        return None

    def pub(self, topic, payload, qos=1, retain=False, timeout=5):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(timeout)
        return info

    def get(self, timeout=3):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self, wait=0.5):
        out = []
        while True:
            m = self.get(wait)
            if m is None:
                return out
            out.append(m)

    def close(self, clean=True):
        if clean:
            self.c.disconnect()
        else:
            # drop the socket without DISCONNECT, so the broker sees a lost client
            sock = self.c.socket()
            if sock is not None:
                sock.close()
        self.c.loop_stop()
