"""The fleet APIs of the local core (thing types, thing groups, billing
groups, tags, the legacy principal-policy calls, role aliases), driven by the
real aws CLI and boto3; a thing group's policy is checked on the broker with
paho-mqtt."""

import json
import time

import botocore.exceptions
import pytest

from conftest import Core, Identity, open_policy
from mqttc import Client


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def message(exc_info):
    return exc_info.value.response["Error"]["Message"]


def aws_error(r):
    """The error code the aws CLI printed."""
    assert r.returncode != 0, r.stdout
    return r.stderr


# ------------------------------------------------------------------ thing types


def test_thing_type_lifecycle_with_aws_cli(core):
    t = core.aws("iot", "create-thing-type", "--thing-type-name", "gopigo3",
                 "--thing-type-properties",
                 "thingTypeDescription=GoPiGo3 robot,searchableAttributes=model",
                 "--tags", "Key=env,Value=lab")
    assert t["thingTypeName"] == "gopigo3"
    assert t["thingTypeArn"].endswith(":thingtype/gopigo3")
    # the same call again is idempotent; other properties are refused
    assert core.aws("iot", "create-thing-type", "--thing-type-name", "gopigo3",
                    "--thing-type-properties",
                    "thingTypeDescription=GoPiGo3 robot,searchableAttributes=model")["thingTypeId"] == t["thingTypeId"]
    r = core.aws("iot", "create-thing-type", "--thing-type-name", "gopigo3", check=False)
    assert "ResourceAlreadyExistsException" in aws_error(r)

    d = core.aws("iot", "describe-thing-type", "--thing-type-name", "gopigo3")
    assert d["thingTypeProperties"] == {"thingTypeDescription": "GoPiGo3 robot",
                                        "searchableAttributes": ["model"]}
    assert d["thingTypeMetadata"]["deprecated"] is False
    assert d["thingTypeId"] == t["thingTypeId"]
    core.aws("iot", "create-thing-type", "--thing-type-name", "other")
    listed = core.aws("iot", "list-thing-types", "--thing-type-name", "gopi")["thingTypes"]
    assert [x["thingTypeName"] for x in listed] == ["gopigo3"]
    assert len(core.aws("iot", "list-thing-types")["thingTypes"]) == 2
    tags = core.aws("iot", "list-tags-for-resource", "--resource-arn", t["thingTypeArn"])
    assert tags["tags"] == [{"Key": "env", "Value": "lab"}]

    # things of the type, filtered by it
    core.aws("iot", "create-thing", "--thing-name", "robot1", "--thing-type-name", "gopigo3")
    core.aws("iot", "create-thing", "--thing-name", "robot2")
    assert core.aws("iot", "describe-thing", "--thing-name", "robot1")["thingTypeName"] == "gopigo3"
    things = core.aws("iot", "list-things", "--thing-type-name", "gopigo3")["things"]
    assert [x["thingName"] for x in things] == ["robot1"]
    r = core.aws("iot", "create-thing", "--thing-name", "robot3", "--thing-type-name", "nope", check=False)
    assert "ResourceNotFoundException" in aws_error(r)

    # a deprecated type takes no new things
    core.aws("iot", "deprecate-thing-type", "--thing-type-name", "gopigo3")
    d = core.aws("iot", "describe-thing-type", "--thing-type-name", "gopigo3")
    assert d["thingTypeMetadata"]["deprecated"] is True and "deprecationDate" in d["thingTypeMetadata"]
    r = core.aws("iot", "create-thing", "--thing-name", "robot3", "--thing-type-name", "gopigo3", check=False)
    # AWS's text, typo included
    assert "InvalidRequestException" in aws_error(r) and "depreated thing type" in r.stderr
    r = core.aws("iot", "update-thing", "--thing-name", "robot2", "--thing-type-name", "gopigo3", check=False)
    assert "InvalidRequestException" in aws_error(r) and "deprecated thing type" in r.stderr
    # AWS deletes a type only five minutes after its deprecation
    r = core.aws("iot", "delete-thing-type", "--thing-type-name", "gopigo3", check=False)
    assert "InvalidRequestException" in aws_error(r) and "5 minutes" in r.stderr

    core.aws("iot", "deprecate-thing-type", "--thing-type-name", "gopigo3", "--undo-deprecate")
    assert core.aws("iot", "describe-thing-type", "--thing-type-name", "gopigo3")["thingTypeMetadata"]["deprecated"] is False
    core.aws("iot", "update-thing", "--thing-name", "robot2", "--thing-type-name", "gopigo3")
    assert core.aws("iot", "describe-thing", "--thing-name", "robot2")["thingTypeName"] == "gopigo3"
    r = core.aws("iot", "delete-thing-type", "--thing-type-name", "gopigo3", check=False)
    assert "InvalidRequestException" in aws_error(r) and "not deprecated" in r.stderr

    core.aws("iot", "update-thing-type", "--thing-type-name", "gopigo3",
             "--thing-type-properties", "thingTypeDescription=renamed")
    assert core.aws("iot", "describe-thing-type", "--thing-type-name", "gopigo3")[
        "thingTypeProperties"]["thingTypeDescription"] == "renamed"
    r = core.aws("iot", "describe-thing-type", "--thing-type-name", "nope", check=False)
    assert "ResourceNotFoundException" in aws_error(r)


def test_deprecated_type_is_deleted_after_the_wait_once_no_thing_uses_it(tmp_path, monkeypatch):
    # the five-minute wait, shortened for the test through the documented variable
    monkeypatch.setenv("GOPIGO_CORE_THING_TYPE_DELETE_WAIT", "1")
    core = Core(tmp_path / "core")
    try:
        iot = core.client()
        iot.create_thing_type(thingTypeName="old")
        iot.create_thing(thingName="r1", thingTypeName="old")
        iot.deprecate_thing_type(thingTypeName="old")
        time.sleep(1.5)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            iot.delete_thing_type(thingTypeName="old")
        assert code(e) == "InvalidRequestException" and "still use it" in message(e)
        iot.update_thing(thingName="r1", removeThingType=True)
        assert "thingTypeName" not in iot.describe_thing(thingName="r1")
        iot.delete_thing_type(thingTypeName="old")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            iot.describe_thing_type(thingTypeName="old")
        assert code(e) == "ResourceNotFoundException"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            iot.delete_thing_type(thingTypeName="old")
        assert code(e) == "ResourceNotFoundException"
    finally:
        core.stop()


def test_thing_types_page_in_creation_order(core):
    iot = core.client()
    for i in range(1, 8):
        iot.create_thing_type(thingTypeName=str(i))
    first = iot.list_thing_types(maxResults=5)
    assert [t["thingTypeName"] for t in first["thingTypes"]] == ["1", "2", "3", "4", "5"]
    rest = iot.list_thing_types(maxResults=5, nextToken=first["nextToken"])
    assert [t["thingTypeName"] for t in rest["thingTypes"]] == ["6", "7"]
    assert "nextToken" not in rest


# ----------------------------------------------------------------- thing groups


def test_thing_group_hierarchy_and_membership(core):
    iot = core.client()
    fleet = iot.create_thing_group(thingGroupName="fleet", tags=[{"Key": "team", "Value": "robots"}])
    lab = iot.create_thing_group(thingGroupName="lab", parentGroupName="fleet",
                                 thingGroupProperties={"thingGroupDescription": "lab robots",
                                                       "attributePayload": {"attributes": {"room": "101"}}})
    iot.create_thing_group(thingGroupName="bench", parentGroupName="lab")
    iot.create_thing_group(thingGroupName="field")
    d = iot.describe_thing_group(thingGroupName="bench")
    assert d["thingGroupMetadata"]["parentGroupName"] == "lab"
    assert [g["groupName"] for g in d["thingGroupMetadata"]["rootToParentThingGroups"]] == ["fleet", "lab"]
    assert d["thingGroupMetadata"]["rootToParentThingGroups"][0]["groupArn"] == fleet["thingGroupArn"]
    d = iot.describe_thing_group(thingGroupName="lab")
    assert d["thingGroupProperties"]["attributePayload"]["attributes"] == {"room": "101"}
    assert d["version"] == 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_thing_group(thingGroupName="orphan", parentGroupName="missing")
    assert code(e) == "InvalidRequestException"

    names = lambda r: sorted(g["groupName"] for g in r["thingGroups"])  # noqa: E731
    assert names(iot.list_thing_groups()) == ["bench", "field", "fleet", "lab"]
    assert names(iot.list_thing_groups(parentGroup="fleet")) == ["bench", "lab"]
    assert names(iot.list_thing_groups(parentGroup="fleet", recursive=False)) == ["lab"]
    assert names(iot.list_thing_groups(recursive=False)) == ["field", "fleet"]
    assert names(iot.list_thing_groups(namePrefixFilter="f")) == ["field", "fleet"]

    for t in ["r1", "r2", "r3"]:
        iot.create_thing(thingName=t)
    iot.add_thing_to_thing_group(thingGroupName="lab", thingName="r1")
    r2_arn = iot.describe_thing(thingName="r2")["thingArn"]
    iot.add_thing_to_thing_group(thingGroupArn=lab["thingGroupArn"], thingArn=r2_arn)
    iot.add_thing_to_thing_group(thingGroupName="bench", thingName="r3")
    iot.add_thing_to_thing_group(thingGroupName="lab", thingName="r1")  # again: no error
    assert iot.list_things_in_thing_group(thingGroupName="lab")["things"] == ["r1", "r2"]
    assert iot.list_things_in_thing_group(thingGroupName="fleet", recursive=True)["things"] == ["r1", "r2", "r3"]
    assert iot.list_things_in_thing_group(thingGroupName="fleet")["things"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.add_thing_to_thing_group(thingGroupName="nope", thingName="r1")
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.add_thing_to_thing_group(thingGroupName="lab", thingName="ghost")
    assert code(e) == "ResourceNotFoundException"

    # one group per hierarchy, as on AWS: r1 (in lab) cannot join fleet or bench
    for other in ["fleet", "bench"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            iot.add_thing_to_thing_group(thingGroupName=other, thingName="r1")
        assert code(e) == "InvalidRequestException" and "same hierarchy" in message(e)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.update_thing_groups_for_thing(thingName="r1", thingGroupsToAdd=["field", "bench"])
    assert code(e) == "InvalidRequestException"
    assert names(iot.list_thing_groups_for_thing(thingName="r1")) == ["lab"], "a refused update changes nothing"
    iot.update_thing_groups_for_thing(thingName="r1", thingGroupsToAdd=["field"], thingGroupsToRemove=["lab"])
    assert names(iot.list_thing_groups_for_thing(thingName="r1")) == ["field"]
    iot.remove_thing_from_thing_group(thingGroupName="lab", thingName="r2")
    assert iot.list_things_in_thing_group(thingGroupName="lab")["things"] == []

    # updates: merge attributes, versions checked
    v = iot.update_thing_group(thingGroupName="lab", expectedVersion=1, thingGroupProperties={
        "attributePayload": {"attributes": {"shelf": "3"}, "merge": True}})["version"]
    assert v == 2
    assert iot.describe_thing_group(thingGroupName="lab")["thingGroupProperties"]["attributePayload"][
        "attributes"] == {"room": "101", "shelf": "3"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.update_thing_group(thingGroupName="lab", expectedVersion=1,
                               thingGroupProperties={"thingGroupDescription": "x"})
    assert code(e) == "VersionConflictException"

    # a group with children stays; a thing's deletion leaves its groups
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_thing_group(thingGroupName="lab")
    assert code(e) == "InvalidRequestException" and "child groups" in message(e)
    iot.delete_thing(thingName="r3")
    assert iot.list_things_in_thing_group(thingGroupName="bench")["things"] == []
    iot.delete_thing_group(thingGroupName="bench")
    iot.delete_thing_group(thingGroupName="bench")  # gone already: AWS answers success
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.describe_thing_group(thingGroupName="bench")
    assert code(e) == "ResourceNotFoundException"


# A little over the broker's per-connection policy cache (1 s).
POLICY_REFRESH = 1.5


def publish_policy(topic_filter):
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"arn:aws:iot:*:*:topic/{topic_filter}"}]}


def connect_only_policy():
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"}]}


def test_policy_on_a_parent_thing_group_applies_to_its_things_on_the_broker(core, tmp_path):
    iot = core.client()
    robot = Identity(core, tmp_path, "robot1", connect_only_policy(), policy_name="connect")
    ctl = Identity(core, tmp_path, "controller", open_policy(), attach_thing=False)
    watcher = Client(core, ctl, "watcher")
    assert watcher.sub("fleet/#") is not None

    # no group yet: the publish is denied and AWS closes the connection
    c = Client(core, robot, "robot1")
    c.pub("fleet/robot1/hello", b"before", timeout=3)
    assert c.disconnected.wait(5), "a publish the policies do not allow must close the connection"
    assert watcher.get(1) is None
    c.close(clean=False)

    # the policy sits on the parent group; the thing is in the child group
    fleet = iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing_group(thingGroupName="lab", parentGroupName="fleet")
    iot.create_policy(policyName="fleet-publish", policyDocument=json.dumps(publish_policy("fleet/*")))
    iot.attach_policy(policyName="fleet-publish", target=fleet["thingGroupArn"])
    assert iot.list_targets_for_policy(policyName="fleet-publish")["targets"] == [fleet["thingGroupArn"]]
    assert [p["policyName"] for p in iot.list_attached_policies(target=fleet["thingGroupArn"])["policies"]] == ["fleet-publish"]
    iot.add_thing_to_thing_group(thingGroupName="lab", thingName="robot1")

    c = Client(core, robot, "robot1")
    c.pub("fleet/robot1/hello", b"in group")
    m = watcher.get(5)
    assert m is not None and m.payload == b"in group"
    assert not c.disconnected.is_set()

    # out of the group: the live connection loses the permission once its
    # cached authorization expires (the broker re-reads a connection's
    # policies every second, BrokerConfig::policy_refresh)
    iot.remove_thing_from_thing_group(thingGroupName="lab", thingName="robot1")
    time.sleep(POLICY_REFRESH)
    c.pub("fleet/robot1/hello", b"after", timeout=3)
    assert c.disconnected.wait(5), "removed from the group, the thing must lose the group's policy"
    assert watcher.get(1) is None
    c.close(clean=False)

    # attaching to a group that does not exist is refused
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.attach_policy(policyName="fleet-publish", target=fleet["thingGroupArn"].replace("fleet", "nope"))
    assert code(e) == "ResourceNotFoundException"


def test_deleting_a_group_drops_its_policy_from_its_things(core, tmp_path):
    iot = core.client()
    robot = Identity(core, tmp_path, "robot1", connect_only_policy(), policy_name="connect")
    ctl = Identity(core, tmp_path, "controller", open_policy(), attach_thing=False)
    watcher = Client(core, ctl, "watcher")
    assert watcher.sub("fleet/#") is not None
    g = iot.create_thing_group(thingGroupName="lab")
    iot.create_policy(policyName="pub", policyDocument=json.dumps(publish_policy("fleet/*")))
    iot.attach_policy(policyName="pub", target=g["thingGroupArn"])
    iot.add_thing_to_thing_group(thingGroupName="lab", thingName="robot1")
    c = Client(core, robot, "robot1")
    c.pub("fleet/robot1/x", b"1")
    assert watcher.get(5).payload == b"1"
    iot.delete_thing_group(thingGroupName="lab")
    assert iot.list_targets_for_policy(policyName="pub")["targets"] == []
    # a new group of the same name does not inherit the old attachment
    iot.create_thing_group(thingGroupName="lab")
    iot.add_thing_to_thing_group(thingGroupName="lab", thingName="robot1")
    time.sleep(POLICY_REFRESH)
    c.pub("fleet/robot1/x", b"2", timeout=3)
    assert c.disconnected.wait(5)
    assert watcher.get(1) is None


# --------------------------------------------------------------- billing groups


def test_billing_groups(core):
    iot = core.client()
    bg = iot.create_billing_group(billingGroupName="lab-bill",
                                  billingGroupProperties={"billingGroupDescription": "lab"},
                                  tags=[{"Key": "cost", "Value": "42"}])
    assert bg["billingGroupArn"].endswith(":billinggroup/lab-bill")
    # same configuration: success; another: refused
    assert iot.create_billing_group(billingGroupName="lab-bill", billingGroupProperties={
        "billingGroupDescription": "lab"})["billingGroupId"] == bg["billingGroupId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_billing_group(billingGroupName="lab-bill")
    assert code(e) == "ResourceAlreadyExistsException"
    iot.create_billing_group(billingGroupName="field-bill")
    d = iot.describe_billing_group(billingGroupName="lab-bill")
    assert d["billingGroupProperties"] == {"billingGroupDescription": "lab"} and d["version"] == 1
    assert sorted(g["groupName"] for g in iot.list_billing_groups()["billingGroups"]) == ["field-bill", "lab-bill"]
    assert [g["groupName"] for g in iot.list_billing_groups(namePrefixFilter="lab")["billingGroups"]] == ["lab-bill"]

    iot.create_thing(thingName="r1")
    iot.create_thing(thingName="r2", billingGroupName="field-bill")
    assert iot.describe_thing(thingName="r2")["billingGroupName"] == "field-bill"
    iot.add_thing_to_billing_group(billingGroupName="lab-bill", thingName="r1")
    iot.add_thing_to_billing_group(billingGroupArn=bg["billingGroupArn"], thingName="r2")
    assert iot.describe_thing(thingName="r2")["billingGroupName"] == "lab-bill"
    assert iot.list_things_in_billing_group(billingGroupName="lab-bill")["things"] == ["r1", "r2"]
    assert iot.list_things_in_billing_group(billingGroupName="field-bill")["things"] == []
    iot.remove_thing_from_billing_group(billingGroupName="lab-bill", thingName="r1")
    assert "billingGroupName" not in iot.describe_thing(thingName="r1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_thing(thingName="r3", billingGroupName="nope")
    assert code(e) == "ResourceNotFoundException"

    v = iot.update_billing_group(billingGroupName="lab-bill",
                                 billingGroupProperties={"billingGroupDescription": "moved"})["version"]
    assert v == 2
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.update_billing_group(billingGroupName="lab-bill", expectedVersion=1,
                                 billingGroupProperties={"billingGroupDescription": "x"})
    assert code(e) == "VersionConflictException"
    iot.delete_billing_group(billingGroupName="lab-bill")
    assert "billingGroupName" not in iot.describe_thing(thingName="r2")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.describe_billing_group(billingGroupName="lab-bill")
    assert code(e) == "ResourceNotFoundException"


# ------------------------------------------------------------------------- tags


def test_tags_on_every_taggable_resource(core):
    iot = core.client()
    arns = [
        iot.create_thing_type(thingTypeName="t")["thingTypeArn"],
        iot.create_thing_group(thingGroupName="g")["thingGroupArn"],
        iot.create_billing_group(billingGroupName="b")["billingGroupArn"],
        iot.create_policy(policyName="p", policyDocument=json.dumps(open_policy()))["policyArn"],
        iot.create_role_alias(roleAlias="ra", roleArn="arn:aws:iam::123456789012:role/robot")["roleAliasArn"],
    ]
    for arn in arns:
        assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "lab"}, {"Key": "owner", "Value": "me"}])
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "prod"}])
        assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [
            {"Key": "env", "Value": "prod"}, {"Key": "owner", "Value": "me"}], arn
        iot.untag_resource(resourceArn=arn, tagKeys=["owner", "never-set"])
        assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "env", "Value": "prod"}]

    # things carry attributes, not tags
    thing_arn = iot.create_thing(thingName="r1")["thingArn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.tag_resource(resourceArn=thing_arn, tags=[{"Key": "k", "Value": "v"}])
    assert code(e) == "InvalidRequestException" and "attributes" in message(e)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.list_tags_for_resource(resourceArn=arns[1].replace(":thinggroup/g", ":thinggroup/none"))
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.tag_resource(resourceArn=arns[1], tags=[{"Key": "aws:x", "Value": "v"}])
    assert code(e) == "InvalidRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.tag_resource(resourceArn=arns[1], tags=[{"Key": f"k{i}", "Value": ""} for i in range(50)])
    assert code(e) == "LimitExceededException"

    # a resource's tags go with it: a new one of the same name starts bare
    iot.delete_thing_group(thingGroupName="g")
    iot.create_thing_group(thingGroupName="g")
    assert iot.list_tags_for_resource(resourceArn=arns[1])["tags"] == []
    iot.delete_policy(policyName="p")
    iot.create_policy(policyName="p", policyDocument=json.dumps(open_policy()))
    assert iot.list_tags_for_resource(resourceArn=arns[3])["tags"] == []


# ------------------------------------------------- legacy principal-policy calls


def test_legacy_principal_policy_calls_share_the_attachments(core, tmp_path):
    iot = core.client()
    ident = Identity(core, tmp_path, "robot1")
    iot.create_policy(policyName="a", policyDocument=json.dumps(open_policy()))
    iot.create_policy(policyName="b", policyDocument=json.dumps(open_policy()))
    iot.attach_principal_policy(policyName="a", principal=ident.arn)
    iot.attach_policy(policyName="b", target=ident.arn)
    got = iot.list_principal_policies(principal=ident.arn)["policies"]
    assert [p["policyName"] for p in got] == ["a", "b"]
    assert got[0]["policyArn"].endswith(":policy/a")
    assert [p["policyName"] for p in iot.list_attached_policies(target=ident.arn)["policies"]] == ["a", "b"]
    desc = iot.list_principal_policies(principal=ident.arn, ascendingOrder=False, pageSize=1)
    assert [p["policyName"] for p in desc["policies"]] == ["b"] and "nextMarker" in desc
    assert iot.list_policy_principals(policyName="a")["principals"] == [ident.arn]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.list_policy_principals(policyName="missing")
    assert code(e) == "ResourceNotFoundException"

    iot.detach_principal_policy(policyName="a", principal=ident.arn)
    assert iot.list_targets_for_policy(policyName="a")["targets"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.detach_principal_policy(policyName="a", principal=ident.arn)
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.attach_principal_policy(policyName="a", principal=ident.arn.replace(ident.cert_id, "0" * 64))
    assert code(e) == "ResourceNotFoundException"

    v2 = iot.list_thing_principals_v2(thingName="robot1")["thingPrincipalObjects"]
    assert v2 == [{"principal": ident.arn, "thingPrincipalType": "NON_EXCLUSIVE_THING"}]
    assert iot.list_thing_principals_v2(thingName="robot1", thingPrincipalType="EXCLUSIVE_THING")[
        "thingPrincipalObjects"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.list_thing_principals_v2(thingName="ghost")
    assert code(e) == "ResourceNotFoundException"


def test_legacy_calls_with_aws_cli(core, tmp_path):
    ident = Identity(core, tmp_path, "robot1")
    core.aws("iot", "create-policy", "--policy-name", "a", "--policy-document", json.dumps(open_policy()))
    core.aws("iot", "attach-principal-policy", "--policy-name", "a", "--principal", ident.arn)
    got = core.aws("iot", "list-principal-policies", "--principal", ident.arn)
    assert [p["policyName"] for p in got["policies"]] == ["a"]
    core.aws("iot", "detach-principal-policy", "--policy-name", "a", "--principal", ident.arn)
    assert core.aws("iot", "list-policy-principals", "--policy-name", "a")["principals"] == []


# ----------------------------------------------------------------- role aliases


def test_list_things_refuses_a_type_and_an_attribute_together(core):
    iot = core.client()
    iot.create_thing_type(thingTypeName="robot")
    iot.create_thing(thingName="r1", thingTypeName="robot", attributePayload={"attributes": {"lab": "a"}})
    assert [t["thingName"] for t in iot.list_things(thingTypeName="robot")["things"]] == ["r1"]
    assert [t["thingName"] for t in iot.list_things(attributeName="lab", attributeValue="a")["things"]] == ["r1"]
    # AWS's own answer (quoted in aws/aws-sdk-js issue 4237)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.list_things(thingTypeName="robot", attributeName="lab", attributeValue="a")
    assert code(e) == "InvalidRequestException"
    assert e.value.response["Error"]["Message"] == (
        "Listing things by the combination of attribute and thing type is not supported")


def test_role_aliases(core):
    iot = core.client()
    role = "arn:aws:iam::123456789012:role/robot"
    r = iot.create_role_alias(roleAlias="robot-creds", roleArn=role, credentialDurationSeconds=900)
    assert r["roleAliasArn"].endswith(":rolealias/robot-creds")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_role_alias(roleAlias="robot-creds", roleArn=role)
    assert code(e) == "ResourceAlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_role_alias(roleAlias="bad", roleArn="not-an-arn-but-long-enough")
    assert code(e) == "InvalidRequestException"
    d = iot.describe_role_alias(roleAlias="robot-creds")["roleAliasDescription"]
    assert d["roleArn"] == role and d["credentialDurationSeconds"] == 900
    iot.update_role_alias(roleAlias="robot-creds", credentialDurationSeconds=7200)
    assert iot.describe_role_alias(roleAlias="robot-creds")["roleAliasDescription"]["credentialDurationSeconds"] == 7200
    iot.create_role_alias(roleAlias="another", roleArn=role)
    # ascendingOrder asks for ascending alphabetical order; without it (or
    # false) the order is descending
    assert iot.list_role_aliases()["roleAliases"] == ["robot-creds", "another"]
    assert iot.list_role_aliases(ascendingOrder=False)["roleAliases"] == ["robot-creds", "another"]
    assert iot.list_role_aliases(ascendingOrder=True)["roleAliases"] == ["another", "robot-creds"]
    iot.delete_role_alias(roleAlias="robot-creds")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.describe_role_alias(roleAlias="robot-creds")
    assert code(e) == "ResourceNotFoundException"


# -------------------------------------------------------- domain configurations


def test_domain_configurations_are_stored(core):
    iot = core.client()
    c = iot.create_domain_configuration(
        domainConfigurationName="robots", domainName="iot.example.com",
        serverCertificateArns=["arn:aws:acm:us-east-1:123456789012:certificate/abc"],
        authorizerConfig={"defaultAuthorizerName": "auth", "allowAuthorizerOverride": True},
        serviceType="DATA", tags=[{"Key": "env", "Value": "lab"}])
    assert ":domainconfiguration/robots/" in c["domainConfigurationArn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_domain_configuration(domainConfigurationName="robots")
    assert code(e) == "ResourceAlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_domain_configuration(domainConfigurationName="x", serviceType="NOPE")
    assert code(e) == "InvalidRequestException" and "NOPE" in message(e)
    d = iot.describe_domain_configuration(domainConfigurationName="robots")
    assert d["domainConfigurationArn"] == c["domainConfigurationArn"]
    assert d["domainType"] == "CUSTOMER_MANAGED" and d["domainConfigurationStatus"] == "ENABLED"
    assert d["serverCertificates"][0]["serverCertificateStatus"] == "VALID"
    assert d["authorizerConfig"]["defaultAuthorizerName"] == "auth"
    assert iot.list_tags_for_resource(resourceArn=c["domainConfigurationArn"])["tags"] == [
        {"Key": "env", "Value": "lab"}]
    iot.update_domain_configuration(domainConfigurationName="robots",
                                    domainConfigurationStatus="DISABLED", removeAuthorizerConfig=True)
    d = iot.describe_domain_configuration(domainConfigurationName="robots")
    assert d["domainConfigurationStatus"] == "DISABLED" and "authorizerConfig" not in d
    iot.create_domain_configuration(domainConfigurationName="jobs", serviceType="JOBS")
    listed = iot.list_domain_configurations()["domainConfigurations"]
    assert [x["domainConfigurationName"] for x in listed] == ["robots", "jobs"]
    assert [x["domainConfigurationName"] for x in iot.list_domain_configurations(serviceType="JOBS")[
        "domainConfigurations"]] == ["jobs"]
    iot.delete_domain_configuration(domainConfigurationName="robots")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.describe_domain_configuration(domainConfigurationName="robots")
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_domain_configuration(domainConfigurationName="robots")
    assert code(e) == "ResourceNotFoundException"


# ------------------------------------------------------------------ durability


def test_fleet_registry_survives_a_restart(core):
    iot = core.client()
    iot.create_thing_type(thingTypeName="gopigo3", tags=[{"Key": "k", "Value": "v"}])
    iot.create_thing(thingName="r1", thingTypeName="gopigo3")
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing_group(thingGroupName="lab", parentGroupName="fleet")
    iot.add_thing_to_thing_group(thingGroupName="lab", thingName="r1")
    iot.create_billing_group(billingGroupName="bill")
    iot.add_thing_to_billing_group(billingGroupName="bill", thingName="r1")
    iot.create_role_alias(roleAlias="ra", roleArn="arn:aws:iam::123456789012:role/robot")
    iot.deprecate_thing_type(thingTypeName="gopigo3")
    iot.create_domain_configuration(domainConfigurationName="dc")
    core.restart()
    iot = core.client()
    d = iot.describe_thing_type(thingTypeName="gopigo3")
    assert d["thingTypeMetadata"]["deprecated"] is True
    assert iot.list_tags_for_resource(resourceArn=d["thingTypeArn"])["tags"] == [{"Key": "k", "Value": "v"}]
    assert iot.describe_thing(thingName="r1")["billingGroupName"] == "bill"
    assert iot.list_things_in_thing_group(thingGroupName="fleet", recursive=True)["things"] == ["r1"]
    assert iot.describe_thing_group(thingGroupName="lab")["thingGroupMetadata"]["parentGroupName"] == "fleet"
    assert iot.list_role_aliases()["roleAliases"] == ["ra"]
    assert iot.describe_domain_configuration(domainConfigurationName="dc")["serviceType"] == "DATA"
