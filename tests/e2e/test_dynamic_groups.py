"""Dynamic thing groups of the local core, driven by the real aws CLI and
boto3: membership follows the fleet indexing query as things change their
attributes, shadow and connection (a real MQTT client), the refusals AWS
documents, continuous jobs for things that join, and a restart."""

import json
import time

import botocore.exceptions
import pytest

from conftest import Identity, robot_policy
from mqttc import Client


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def message(exc_info):
    return exc_info.value.response["Error"]["Message"]


def members(iot, group):
    return sorted(iot.list_things_in_thing_group(thingGroupName=group)["things"])


def wait_members(iot, group, want, timeout=15):
    """Membership is evaluated in the background, as AWS's is: poll."""
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = members(iot, group)
        if got == want:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{group} holds {got}, not {want}")


def test_dynamic_group_lifecycle_with_aws_cli(core):
    iot = core.client()
    iot.create_thing(thingName="robot1", attributePayload={"attributes": {"site": "lab"}})
    iot.create_thing(thingName="robot2", attributePayload={"attributes": {"site": "field"}})
    g = core.aws("iot", "create-dynamic-thing-group", "--thing-group-name", "lab",
                 "--query-string", "attributes.site:lab",
                 "--thing-group-properties", "thingGroupDescription=robots in the lab",
                 "--tags", "Key=env,Value=test")
    assert g["thingGroupName"] == "lab" and g["thingGroupArn"].endswith(":thinggroup/lab")
    assert (g["indexName"], g["queryString"], g["queryVersion"]) == \
        ("AWS_Things", "attributes.site:lab", "2017-09-30")
    d = core.aws("iot", "describe-thing-group", "--thing-group-name", "lab")
    assert (d["queryString"], d["status"], d["indexName"]) == ("attributes.site:lab", "ACTIVE", "AWS_Things")
    assert d["thingGroupProperties"]["thingGroupDescription"] == "robots in the lab"
    assert "parentGroupName" not in d["thingGroupMetadata"]
    assert "lab" in [x["groupName"] for x in core.aws("iot", "list-thing-groups")["thingGroups"]]
    tags = core.aws("iot", "list-tags-for-resource", "--resource-arn", g["thingGroupArn"])["tags"]
    assert tags == [{"Key": "env", "Value": "test"}]

    wait_members(iot, "lab", ["robot1"])
    groups = core.aws("iot", "list-thing-groups-for-thing", "--thing-name", "robot1")["thingGroups"]
    assert [x["groupName"] for x in groups] == ["lab"]
    # SearchIndex sees the membership too.
    found = iot.search_index(queryString="thingGroupNames:lab")["things"]
    assert [t["thingName"] for t in found] == ["robot1"]

    # Things move in and out as their attributes change.
    core.aws("iot", "update-thing", "--thing-name", "robot2",
             "--attribute-payload", '{"attributes": {"site": "lab"}}')
    wait_members(iot, "lab", ["robot1", "robot2"])
    core.aws("iot", "update-thing", "--thing-name", "robot1",
             "--attribute-payload", '{"attributes": {"site": "field"}}')
    wait_members(iot, "lab", ["robot2"])
    iot.create_thing(thingName="robot3", attributePayload={"attributes": {"site": "lab"}})
    wait_members(iot, "lab", ["robot2", "robot3"])

    # A new query re-evaluates every thing; a stale version is refused.
    v = core.aws("iot", "update-dynamic-thing-group", "--thing-group-name", "lab",
                 "--thing-group-properties", "thingGroupDescription=field robots",
                 "--query-string", "attributes.site:field")
    assert v["version"] == 2
    wait_members(iot, "lab", ["robot1"])
    d = iot.describe_thing_group(thingGroupName="lab")
    assert (d["queryString"], d["version"]) == ("attributes.site:field", 2)
    assert d["thingGroupProperties"]["thingGroupDescription"] == "field robots"
    r = core.aws("iot", "update-dynamic-thing-group", "--thing-group-name", "lab",
                 "--thing-group-properties", "thingGroupDescription=x", "--expected-version", "1", check=False)
    assert r.returncode != 0 and "VersionConflictException" in r.stderr

    core.aws("iot", "delete-dynamic-thing-group", "--thing-group-name", "lab")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.describe_thing_group(thingGroupName="lab")
    assert code(e) == "ResourceNotFoundException"
    assert iot.list_thing_groups_for_thing(thingName="robot1")["thingGroups"] == []
    # Deleting one that does not exist succeeds, as DeleteThingGroup does.
    core.aws("iot", "delete-dynamic-thing-group", "--thing-group-name", "lab")


def test_dynamic_group_refusals(core):
    iot = core.client()
    iot.create_thing(thingName="robot1", attributePayload={"attributes": {"site": "lab"}})
    iot.create_thing_group(thingGroupName="fleet")
    dyn = iot.create_dynamic_thing_group(thingGroupName="lab", queryString="attributes.site:lab")

    def refused(call, want, **kw):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(**kw)
        assert code(e) == want, (call, kw, message(e))
        return message(e)

    # The query must parse; one index and one query version exist.
    refused(iot.create_dynamic_thing_group, "InvalidQueryException", thingGroupName="x",
            queryString="attributes.site:(lab")
    refused(iot.update_dynamic_thing_group, "InvalidQueryException", thingGroupName="lab",
            thingGroupProperties={}, queryString="AND")
    m = refused(iot.create_dynamic_thing_group, "InvalidRequestException", thingGroupName="x",
                queryString="thingName:r*", indexName="AWS_ThingGroups")
    assert "AWS_Things" in m
    refused(iot.create_dynamic_thing_group, "InvalidRequestException", thingGroupName="x",
            queryString="thingName:r*", queryVersion="2020-01-01")
    # Names are taken across static and dynamic groups.
    refused(iot.create_dynamic_thing_group, "ResourceAlreadyExistsException", thingGroupName="fleet",
            queryString="thingName:r*")
    refused(iot.create_thing_group, "ResourceAlreadyExistsException", thingGroupName="lab")
    assert iot.create_dynamic_thing_group(thingGroupName="lab", queryString="attributes.site:lab")[
        "thingGroupId"] == dyn["thingGroupId"], "the same call again is idempotent"

    # Membership comes from the query alone.
    m = refused(iot.add_thing_to_thing_group, "InvalidRequestException", thingGroupName="lab",
                thingName="robot1")
    assert "dynamic thing group" in m
    refused(iot.remove_thing_from_thing_group, "InvalidRequestException", thingGroupName="lab",
            thingName="robot1")
    refused(iot.update_thing_groups_for_thing, "InvalidRequestException", thingName="robot1",
            thingGroupsToAdd=["lab"])
    # No hierarchy, no policies, its own create/update/delete calls.
    m = refused(iot.create_thing_group, "InvalidRequestException", thingGroupName="child",
                parentGroupName="lab")
    assert "hierarchy" in m
    iot.create_policy(policyName="p", policyDocument=json.dumps(robot_policy()))
    m = refused(iot.attach_policy, "InvalidRequestException", policyName="p", target=dyn["thingGroupArn"])
    assert "can't have policies" in m
    assert iot.list_targets_for_policy(policyName="p")["targets"] == []
    refused(iot.update_thing_group, "InvalidRequestException", thingGroupName="lab",
            thingGroupProperties={"thingGroupDescription": "x"})
    refused(iot.delete_thing_group, "InvalidRequestException", thingGroupName="lab")
    refused(iot.update_dynamic_thing_group, "InvalidRequestException", thingGroupName="fleet",
            thingGroupProperties={})
    refused(iot.delete_dynamic_thing_group, "InvalidRequestException", thingGroupName="fleet")
    refused(iot.update_dynamic_thing_group, "ResourceNotFoundException", thingGroupName="nope",
            thingGroupProperties={})

    # Dynamic groups need the things index.
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"})
    m = refused(iot.create_dynamic_thing_group, "ResourceNotFoundException", thingGroupName="x",
                queryString="thingName:r*")
    assert "AWS_Things" in m
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})

    # At most 100 dynamic groups an account.
    for i in range(99):
        iot.create_dynamic_thing_group(thingGroupName=f"d{i}", queryString=f"thingName:r{i}")
    m = refused(iot.create_dynamic_thing_group, "LimitExceededException", thingGroupName="d100",
                queryString="thingName:x")
    assert "100" in m


def test_membership_follows_connectivity_and_shadow(core, tmp_path):
    iot = core.client()
    robot = Identity(core, tmp_path, "robot1", policy_doc=robot_policy())
    iot.create_dynamic_thing_group(thingGroupName="online", queryString="connectivity.connected:true")
    iot.create_dynamic_thing_group(thingGroupName="auto", queryString="shadow.reported.mode:auto")
    wait_members(iot, "online", [])
    c = Client(core, robot, "robot1")
    try:
        wait_members(iot, "online", ["robot1"])
        c.pub("$aws/things/robot1/shadow/update", json.dumps({"state": {"reported": {"mode": "auto"}}}))
        wait_members(iot, "auto", ["robot1"])
        c.pub("$aws/things/robot1/shadow/update", json.dumps({"state": {"reported": {"mode": "manual"}}}))
        wait_members(iot, "auto", [])
    finally:
        c.c.disconnect()
        c.c.loop_stop()
    wait_members(iot, "online", [])


def test_continuous_job_reaches_things_that_join(core):
    iot = core.client()
    iot.create_thing(thingName="robot1", attributePayload={"attributes": {"fw": "1"}})
    iot.create_thing(thingName="robot2", attributePayload={"attributes": {"fw": "2"}})
    g = iot.create_dynamic_thing_group(thingGroupName="old-fw", queryString="attributes.fw:1")
    wait_members(iot, "old-fw", ["robot1"])
    doc = json.dumps({"operation": "update"})
    iot.create_job(jobId="upgrade", targets=[g["thingGroupArn"]], document=doc, targetSelection="CONTINUOUS")
    iot.create_job(jobId="once", targets=[g["thingGroupArn"]], document=doc, targetSelection="SNAPSHOT")

    def executions(job):
        out = iot.list_job_executions_for_job(jobId=job)["executionSummaries"]
        return sorted(e["thingArn"].rsplit("/", 1)[1] for e in out)

    assert executions("upgrade") == ["robot1"] and executions("once") == ["robot1"]
    iot.update_thing(thingName="robot2", attributePayload={"attributes": {"fw": "1"}})
    wait_members(iot, "old-fw", ["robot1", "robot2"])
    assert executions("upgrade") == ["robot1", "robot2"]
    assert executions("once") == ["robot1"], "a snapshot job keeps the things it started with"


def test_dynamic_groups_survive_a_restart(core):
    iot = core.client()
    iot.create_thing(thingName="robot1", attributePayload={"attributes": {"site": "lab"}})
    g = iot.create_dynamic_thing_group(thingGroupName="lab", queryString="attributes.site:lab")
    wait_members(iot, "lab", ["robot1"])
    core.restart()
    iot = core.client()
    d = iot.describe_thing_group(thingGroupName="lab")
    assert (d["queryString"], d["thingGroupId"], d["status"]) == ("attributes.site:lab", g["thingGroupId"], "ACTIVE")
    assert members(iot, "lab") == ["robot1"]
    # and it still follows its things
    iot.create_thing(thingName="robot2", attributePayload={"attributes": {"site": "lab"}})
    wait_members(iot, "lab", ["robot1", "robot2"])


def test_static_groups_override_dynamic_ones_at_ten(core):
    iot = core.client()
    iot.create_thing(thingName="robot1", attributePayload={"attributes": {"site": "lab"}})
    iot.create_dynamic_thing_group(thingGroupName="lab", queryString="attributes.site:lab")
    wait_members(iot, "lab", ["robot1"])
    for i in range(10):
        iot.create_thing_group(thingGroupName=f"s{i}")
    for i in range(9):
        iot.add_thing_to_thing_group(thingGroupName=f"s{i}", thingName="robot1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.add_thing_to_thing_group(thingGroupName="s9", thingName="robot1")
    assert code(e) == "InvalidRequestException" and "10 thing groups" in message(e)
    iot.add_thing_to_thing_group(thingGroupName="s9", thingName="robot1", overrideDynamicGroups=True)
    groups = sorted(g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="robot1")["thingGroups"])
    assert groups == [f"s{i}" for i in range(10)]
    # It matches still, but has no room: a new evaluation (seen through
    # robot2 joining the new group) leaves it out of both.
    iot.update_thing(thingName="robot1", attributePayload={"attributes": {"site": "lab", "x": "1"}})
    iot.create_thing(thingName="robot2", attributePayload={"attributes": {"x": "1"}})
    iot.create_dynamic_thing_group(thingGroupName="probe", queryString="attributes.x:1")
    wait_members(iot, "probe", ["robot2"])
    assert members(iot, "lab") == []
    # Out of a static group, it is back in the dynamic one.
    iot.remove_thing_from_thing_group(thingGroupName="s0", thingName="robot1")
    wait_members(iot, "lab", ["robot1"])
