"""Fleet indexing's SearchIndex over the core's things, with the query
syntax's common subset, driven by the aws CLI and boto3; connectivity comes
from a real MQTT connection."""

import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import Identity, open_policy


def names(resp):
    return sorted(t["thingName"] for t in resp["things"])


def test_search_by_name_attributes_and_connectivity(core, tmp_path):
    iot = core.client()
    for name, color in [("robot1", "red"), ("robot2", "blue"), ("rover3", "red")]:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"color": color}})
    assert names(iot.search_index(queryString="thingName:robot*")) == ["robot1", "robot2"]
    assert names(iot.search_index(queryString="attributes.color:red")) == ["robot1", "rover3"]
    assert names(iot.search_index(queryString="attributes.color:red AND NOT thingName:rover?")) == ["robot1"]
    assert names(iot.search_index(queryString="(thingName:robot2 OR thingName:rover3) -attributes.color:blue")) \
        == ["rover3"]
    # The aws CLI, as a script would call it.
    out = core.aws("iot", "search-index", "--query-string", "thingName:robot1")
    assert [t["thingName"] for t in out["things"]] == ["robot1"]
    assert out["things"][0]["connectivity"]["connected"] is False

    # A device connected as robot2 shows as connected while it is.
    ident = Identity(core, tmp_path, "robot2", policy_doc=open_policy(), attach_thing=False)
    iot.attach_thing_principal(thingName="robot2", principal=ident.arn)
    sub = subprocess.Popen(["mosquitto_sub", "-h", "localhost", "-p", str(core.mqtt_port), *ident.tls_args(),
                            "-i", "robot2", "-t", "fleet/robot2/cmd"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            got = names(iot.search_index(queryString="connectivity.connected:true"))
            if got == ["robot2"]:
                break
            time.sleep(0.2)
        assert got == ["robot2"]
    finally:
        sub.terminate()
        sub.wait(10)


def test_search_refuses_a_broken_query(core):
    iot = core.client()
    iot.create_thing(thingName="robot1")
    for bad in ["thingName:robot1 AND", "(thingName:robot1", "NOT", "()"]:
        with pytest.raises(ClientError) as e:
            iot.search_index(queryString=bad)
        assert e.value.response["Error"]["Code"] == "InvalidQueryException", bad
    with pytest.raises(ClientError) as e:
        iot.search_index(indexName="AWS_ThingGroups", queryString="*")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
