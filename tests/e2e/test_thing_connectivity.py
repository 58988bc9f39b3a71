"""Thing connectivity as AWS IoT reports it: is robot X online, since when,
and why did it drop? A real device (paho-mqtt with the thing's certificate,
client id = thing name) connects, disconnects cleanly and loses its socket;
GetThingConnectivityData (boto3 and the aws CLI) and SearchIndex say so, with
the timestamps of the broker's own lifecycle events."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import Identity, open_policy, robot_policy
from mqttc import Client


def names(resp):
    return sorted(t["thingName"] for t in resp["things"])


def ms(ts):
    """boto3's datetime (GetThingConnectivityData's Timestamp) in Unix ms."""
    return round(ts.timestamp() * 1000)


def lifecycle_event(watcher, kind):
    """The next `connected` or `disconnected` event of robot1 the watcher gets."""
    m = watcher.get(timeout=10)
    assert m is not None, f"no {kind} event"
    assert m.topic == f"$aws/events/presence/{kind}/robot1"
    return json.loads(m.payload)


def data_when(iot, want, thing="robot1"):
    """GetThingConnectivityData once `want` holds (the broker records a
    disconnect right before it publishes the event; allow for slow machines)."""
    deadline = time.time() + 20
    while True:
        d = iot.get_thing_connectivity_data(thingName=thing)
        if want(d) or time.time() > deadline:
            return d
        time.sleep(0.1)


def connectivity_doc(iot, thing="robot1"):
    return iot.search_index(queryString=f"thingName:{thing}")["things"][0]["connectivity"]


def test_connectivity_says_online_since_when_and_why_it_dropped(core, tmp_path):
    iot = core.client()
    robot = Identity(core, tmp_path, "robot1", policy_doc=robot_policy())
    iot.create_thing(thingName="robot2")  # never connects
    watch_id = Identity(core, tmp_path, "watcher", policy_doc=open_policy(), attach_thing=False)
    watcher = Client(core, watch_id, "watcher")
    assert watcher.sub("$aws/events/presence/+/robot1") == [1]

    # Never connected: connected false, no timestamp, no reason.
    d = iot.get_thing_connectivity_data(thingName="robot1")
    assert (d["thingName"], d["connected"]) == ("robot1", False)
    assert "timestamp" not in d and "disconnectReason" not in d
    assert connectivity_doc(iot) == {"connected": False}

    # Online: since the `connected` event's timestamp.
    device = Client(core, robot, "robot1")
    connected = lifecycle_event(watcher, "connected")
    d = data_when(iot, lambda d: d["connected"])
    assert d["connected"] is True and "disconnectReason" not in d
    assert ms(d["timestamp"]) == connected["timestamp"]
    assert connectivity_doc(iot) == {"connected": True, "timestamp": connected["timestamp"]}
    assert names(iot.search_index(queryString="connectivity.connected:true")) == ["robot1"]
    since = connected["timestamp"]
    assert names(iot.search_index(queryString=f"connectivity.timestamp:[{since} TO *]")) == ["robot1"]
    assert names(iot.search_index(queryString=f"connectivity.timestamp:{{{since} TO *]")) == []

    # A clean DISCONNECT.
    device.close(clean=True)
    gone = lifecycle_event(watcher, "disconnected")
    assert gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    d = data_when(iot, lambda d: not d["connected"])
    assert (d["connected"], d.get("disconnectReason")) == (False, "CLIENT_INITIATED_DISCONNECT")
    assert ms(d["timestamp"]) == gone["timestamp"] >= since
    assert connectivity_doc(iot) == {"connected": False, "timestamp": gone["timestamp"],
                                     "disconnectReason": "CLIENT_INITIATED_DISCONNECT"}
    assert names(iot.search_index(
        queryString="connectivity.disconnectReason:CLIENT_INITIATED_DISCONNECT")) == ["robot1"]

    # The socket dropped without DISCONNECT.
    device = Client(core, robot, "robot1")
    lifecycle_event(watcher, "connected")
    data_when(iot, lambda d: d["connected"])
    device.close(clean=False)
    lost = lifecycle_event(watcher, "disconnected")
    assert lost["disconnectReason"] == "CONNECTION_LOST"
    d = data_when(iot, lambda d: not d["connected"])
    assert (d["connected"], d.get("disconnectReason")) == (False, "CONNECTION_LOST")
    assert ms(d["timestamp"]) == lost["timestamp"] > gone["timestamp"]
    assert names(iot.search_index(
        queryString="connectivity.connected:false AND connectivity.disconnectReason:CONNECTION_LOST")) \
        == ["robot1"]
    assert names(iot.search_index(queryString="connectivity.timestamp:*")) == ["robot1"]

    # The aws CLI, as a fleet script would ask.
    out = core.aws("iot", "get-thing-connectivity-data", "--thing-name", "robot1")
    assert (out["thingName"], out["connected"], out["disconnectReason"]) == \
        ("robot1", False, "CONNECTION_LOST")
    stamp = out["timestamp"]
    assert isinstance(stamp, (int, float)), stamp
    assert round(stamp * 1000) == lost["timestamp"]

    # The thing that never connected is still unknown.
    assert iot.get_thing_connectivity_data(thingName="robot2")["connected"] is False
    assert connectivity_doc(iot, "robot2") == {"connected": False}
    watcher.close()


def test_connectivity_data_of_a_missing_thing_or_without_connectivity_indexing(core):
    iot = core.client()
    with pytest.raises(ClientError) as e:
        iot.get_thing_connectivity_data(thingName="ghost")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "ghost" in e.value.response["Error"]["Message"]
    r = core.aws("iot", "get-thing-connectivity-data", "--thing-name", "ghost", check=False)
    assert r.returncode != 0 and "ResourceNotFoundException" in r.stderr

    iot.create_thing(thingName="robot1")
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    with pytest.raises(ClientError) as e:
        iot.get_thing_connectivity_data(thingName="robot1")
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "thingConnectivityIndexingMode" in e.value.response["Error"]["Message"]
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY", "thingConnectivityIndexingMode": "STATUS"})
    assert iot.get_thing_connectivity_data(thingName="robot1")["connected"] is False


def test_connectivity_survives_a_restart(core, tmp_path):
    """A clean disconnect is remembered as it was; a connection still open
    when the core died ends with the restart, as AWS reports a connection
    that ended on its side."""
    import signal

    iot = core.client()
    robot1 = Identity(core, tmp_path, "robot1", policy_doc=robot_policy())
    robot2 = Identity(core, tmp_path, "robot2", policy_doc=robot_policy())
    c1 = Client(core, robot1, "robot1")
    c1.c.disconnect()
    c1.c.loop_stop()
    gone = data_when(iot, lambda d: d["connected"] is False)
    assert gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    c2 = Client(core, robot2, "robot2")
    assert data_when(iot, lambda d: d["connected"], thing="robot2")["connected"] is True
    time.sleep(1)  # let the recorder write robot2's connect (it is off the MQTT path)

    core.stop(signal.SIGKILL)
    c2.c.loop_stop()
    before_start = time.time() * 1000
    core.start()
    after_start = time.time() * 1000
    iot = core.client()
    d1 = iot.get_thing_connectivity_data(thingName="robot1")
    assert (d1["connected"], d1["disconnectReason"]) == (False, "CLIENT_INITIATED_DISCONNECT")
    assert ms(d1["timestamp"]) == ms(gone["timestamp"])
    d2 = iot.get_thing_connectivity_data(thingName="robot2")
    assert (d2["connected"], d2["disconnectReason"]) == (False, "SERVER_INITIATED_DISCONNECT")
    assert before_start - 1000 <= ms(d2["timestamp"]) <= after_start + 1000
    doc = connectivity_doc(iot, "robot2")
    assert doc["connected"] is False and doc["disconnectReason"] == "SERVER_INITIATED_DISCONNECT"
    # Connecting again is live again.
    c2 = Client(core, robot2, "robot2")
    assert data_when(iot, lambda d: d["connected"], thing="robot2")["connected"] is True
    c2.c.disconnect()
    c2.c.loop_stop()
