"""Fleet indexing: SearchIndex over the core's things and thing groups with
AWS's query syntax, and Get/UpdateIndexingConfiguration, driven by the aws
CLI and boto3; connectivity comes from a real MQTT connection."""

import json
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


def test_indexing_configuration_decides_what_is_indexed(core):
    """Get/UpdateIndexingConfiguration: the local core starts with registry,
    classic shadow and connectivity indexed; OFF removes the index (as AWS),
    REGISTRY drops the shadow, named shadows need their names in the filter,
    and the configuration outlives a restart."""
    iot, data = core.client(), core.client("iot-data")
    iot.create_thing(thingName="robot1")
    data.update_thing_shadow(thingName="robot1", payload=json.dumps(
        {"state": {"reported": {"battery": 80, "mode": "eco"}, "desired": {"mode": "sport"}}}))
    data.update_thing_shadow(thingName="robot1", shadowName="arm", payload=json.dumps(
        {"state": {"reported": {"grip": "open"}}}))

    cfg = iot.get_indexing_configuration()["thingIndexingConfiguration"]
    assert cfg["thingIndexingMode"] == "REGISTRY_AND_SHADOW"
    assert cfg["thingConnectivityIndexingMode"] == "STATUS"
    assert iot.list_indices()["indexNames"] == ["AWS_Things"]
    index = iot.describe_index(indexName="AWS_Things")
    assert (index["indexStatus"], index["schema"]) == ("ACTIVE", "REGISTRY_AND_SHADOW_AND_CONNECTIVITY_STATUS")
    assert names(iot.search_index(queryString="shadow.reported.battery:[50 TO 100]")) == ["robot1"]
    assert names(iot.search_index(queryString="shadow.hasDelta:true AND shadow.delta.mode:sport")) == ["robot1"]
    doc = iot.search_index(queryString="thingName:robot1")["things"][0]
    shadow = json.loads(doc["shadow"])
    assert shadow["reported"] == {"battery": 80, "mode": "eco"} and shadow["hasDelta"] is True
    assert "name" not in shadow, "a named shadow is indexed only when configured"
    assert names(iot.search_index(queryString="shadow.name.arm.reported.grip:open")) == []

    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW", "namedShadowIndexingMode": "ON",
        "filter": {"namedShadowNames": ["arm"]}})
    assert names(iot.search_index(queryString="shadow.name.arm.reported.grip:open")) == ["robot1"]
    doc = iot.search_index(queryString="thingName:robot1")["things"][0]
    assert json.loads(doc["shadow"])["name"]["arm"]["reported"] == {"grip": "open"}
    assert "connectivity" not in doc, "connectivity is indexed only with STATUS"

    assert iot.describe_index(indexName="AWS_Things")["schema"] == "MULTI_INDEXING_MODE"

    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    assert iot.describe_index(indexName="AWS_Things")["schema"] == "REGISTRY"
    assert names(iot.search_index(queryString="shadow.reported.battery:80")) == []
    assert "shadow" not in iot.search_index(queryString="robot1")["things"][0]

    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"})
    core.restart()
    iot = core.client()
    assert iot.get_indexing_configuration()["thingIndexingConfiguration"]["thingIndexingMode"] == "OFF"
    with pytest.raises(ClientError) as e:
        iot.search_index(queryString="*")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "UpdateIndexingConfiguration" in e.value.response["Error"]["Message"]
    assert iot.list_indices()["indexNames"] == []
    with pytest.raises(ClientError) as e:
        iot.describe_index(indexName="AWS_Things")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    with pytest.raises(ClientError) as e:
        iot.update_indexing_configuration(thingIndexingConfiguration={
            "thingIndexingMode": "OFF", "thingConnectivityIndexingMode": "STATUS"})
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "REGISTRY" in e.value.response["Error"]["Message"]


def test_search_pages_ranges_and_groups(core):
    """maxResults and nextToken page through every match once; ranges,
    field groups, phrases and thingGroupNames (thing and billing groups)."""
    iot = core.client()
    iot.create_thing_group(thingGroupName="lab", thingGroupProperties={
        "thingGroupDescription": "the lab robots", "attributePayload": {"attributes": {"floor": "2"}}})
    iot.create_thing_group(thingGroupName="bench", parentGroupName="lab")
    iot.create_billing_group(billingGroupName="team-a")
    for i in range(7):
        iot.create_thing(thingName=f"robot{i}", attributePayload={"attributes": {"speed": str(i * 10),
                                                                                  "owner": "Ada Lovelace"}})
    iot.add_thing_to_thing_group(thingGroupName="bench", thingName="robot1")
    iot.add_thing_to_billing_group(billingGroupName="team-a", thingName="robot1")

    seen, token, pages = [], None, 0
    while True:
        kw = {"nextToken": token} if token else {}
        resp = iot.search_index(queryString="thingName:robot*", maxResults=3, **kw)
        assert len(resp["things"]) <= 3
        seen += [t["thingName"] for t in resp["things"]]
        pages += 1
        token = resp.get("nextToken")
        if not token:
            break
    assert seen == [f"robot{i}" for i in range(7)] and pages == 3

    assert names(iot.search_index(queryString="attributes.speed:[20 TO 40}")) == ["robot2", "robot3"]
    assert names(iot.search_index(queryString="attributes.speed:{50 TO *]")) == ["robot6"]
    assert names(iot.search_index(queryString="thingName:(robot1 OR robot2) -thingName:robot2")) == ["robot1"]
    assert names(iot.search_index(queryString='attributes.owner:"ada lovelace" thingName:robot0')) == ["robot0"]
    doc = iot.search_index(queryString="thingGroupNames:team-a")["things"][0]
    assert doc["thingName"] == "robot1" and doc["thingGroupNames"] == ["bench", "team-a"]

    with pytest.raises(ClientError) as e:
        iot.search_index(queryString="*", nextToken="forged")
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        iot.search_index(queryString="thingName:*a OR thingName:*b")
    assert e.value.response["Error"]["Code"] == "InvalidQueryException"
    assert "wildcard" in e.value.response["Error"]["Message"]

    # Thing groups are searchable once their index is ON.
    with pytest.raises(ClientError) as e:
        iot.search_index(indexName="AWS_ThingGroups", queryString="*")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    iot.update_indexing_configuration(thingGroupIndexingConfiguration={"thingGroupIndexingMode": "ON"})
    assert iot.list_indices()["indexNames"] == ["AWS_Things", "AWS_ThingGroups"]
    resp = iot.search_index(indexName="AWS_ThingGroups", queryString="parentGroupNames:lab")
    assert [g["thingGroupName"] for g in resp["thingGroups"]] == ["bench"] and resp["things"] == []
    resp = iot.search_index(indexName="AWS_ThingGroups", queryString="attributes.floor:2")
    assert [(g["thingGroupName"], g["thingGroupDescription"]) for g in resp["thingGroups"]] \
        == [("lab", "the lab robots")]


def test_search_survives_hostile_queries(core):
    """Attacks on the query parser and matcher over the signed API: a
    request-sized nest of parentheses or negations is refused, not a crash,
    and a megabyte wildcard pattern answers at once; the core still serves."""
    iot = core.client()
    iot.create_thing(thingName="robot1", attributePayload={"attributes": {"color": "red", "long": "a" * 800}})
    for hostile in ["(" * 500_000 + "a" + ")" * 500_000, "NOT " * 200_000 + "a", "-" * 900_000 + "a"]:
        with pytest.raises(ClientError) as e:
            iot.search_index(queryString=hostile)
        assert e.value.response["Error"]["Code"] == "InvalidQueryException"
        assert "deep" in e.value.response["Error"]["Message"]
        assert len(e.value.response["Error"]["Message"]) < 1000, "the error does not echo a megabyte"
    # Backtracking 400,000 stars over 800 characters is hundreds of millions of
    # steps; a pattern needing more characters than the value has fails at once.
    assert names(iot.search_index(queryString="attributes.long:" + "a*" * 400_000 + "b")) == []
    assert names(iot.search_index(queryString="attributes.color:r*")) == ["robot1"]
