#!/usr/bin/env python3
"""The seed's robot program, re-created for the latency bench.

The seed (Python, on the Pi) ran one paho-mqtt client with TLS client
certificates, subscribed at QoS 1 to the command topic, and in `on_message`
printed the message, looked the word up in a table of the vendor's
`easygopigo3.EasyGoPiGo3` moves (`f` forward, `b` backward, `r` right,
`l` left, `s` stop), called it, slept one second and called `stop()`. Its
settings came from the `AWSIOT_*` environment variables. This file does the
same, with two bench-only changes, marked below:

- the drive time comes from `SEED_DRIVE_S` (the bench uses 0.1 s, the same
  100 ms drive it sends to our agent; the seed's 1 s made 500 samples take
  ten minutes). The sleep comes after the first motor message, so it is not
  part of the measured time;
- it prints `subscribed` once its subscription is acknowledged, so the bench
  knows when to start.

The seed ran under Python 2, where `str(msg.payload)` was the word; under
Python 3 it would be "b'f'", so this decodes the payload instead.

Run by `bench/agent_latency.py` with this folder first on `sys.path`: the
vendor's `gopigo3.py` then imports the stand-in `spidev.py` from here.
"""

import os
import sys
import time

import easygopigo3
import paho.mqtt.client as mqtt

PI = easygopigo3.EasyGoPiGo3()

MQTT_HOST = os.environ["AWSIOT_MQTT_HOST"]
MQTT_PORT = int(os.environ["AWSIOT_MQTT_PORT"])
MQTT_TOPIC_COMMAND = os.environ["AWSIOT_MQTT_TOPIC_COMMAND"]
TLS_DIR = os.environ["AWSIOT_TLS_DIR"]
TLS_CA_FILE = os.environ["AWSIOT_CA_FILE"]
TLS_KEY_FILE = os.environ["AWSIOT_KEY_FILE"]
TLS_CERT_FILE = os.environ["AWSIOT_CERT_FILE"]
DRIVE_S = float(os.environ.get("SEED_DRIVE_S", "1"))  # bench-only knob; the seed slept 1 s


def execute(command):
    print("execute: command is [{0}]".format(command))
    moves = {"f": PI.forward, "b": PI.backward, "r": PI.right, "l": PI.left, "s": PI.stop}
    try:
        moves[command]()
        time.sleep(DRIVE_S)
        PI.stop()
    except Exception:
        if command == "exit":
            sys.exit()
        print("Illegal command [" + command + "]")


def on_connect(client, userdata, flags, rc):
    print("on_connect: result code " + str(rc))
    client.subscribe(MQTT_TOPIC_COMMAND, qos=1)


def on_subscribe(client, userdata, mid, granted_qos):
    # bench-only: tell the bench the subscription is in place
    sys.stdout.write("subscribed\n")
    sys.stdout.flush()


def on_disconnect(client, userdata, rc):
    print("on_disconnect: result code [" + str(rc) + "]")


def on_message(client, userdata, msg):
    print(msg.topic + " " + str(msg.payload))
    execute(msg.payload.decode("utf-8", "replace"))


def main():
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id="GoPiGo3", clean_session=True)
    client.tls_set(
        ca_certs=os.path.join(TLS_DIR, TLS_CA_FILE),
        certfile=os.path.join(TLS_DIR, TLS_CERT_FILE),
        keyfile=os.path.join(TLS_DIR, TLS_KEY_FILE),
    )
    client.tls_insecure_set(False)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    client.connect(host=MQTT_HOST, port=MQTT_PORT, keepalive=60)
    client.loop_forever()


if __name__ == "__main__":
    main()
