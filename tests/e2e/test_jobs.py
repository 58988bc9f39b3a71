"""AWS IoT Jobs on the local core: the control plane driven by boto3 (as
botocore's `iot` model defines it) and the device side on MQTT driven by
paho-mqtt, with the robot policy's jobs topics."""

import json
import time

import pytest

from conftest import Identity
from mqttc import Client


def jobs_policy():
    """The shape of the fleet's robot policy (crates/provision/src/policy.rs):
    each robot its own topics, shadow and jobs."""
    t = "${iot:Connection.Thing.ThingName}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"arn:aws:iot:*:*:client/{t}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": [f"arn:aws:iot:*:*:topic/$aws/things/{t}/jobs/*"]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": [f"arn:aws:iot:*:*:topicfilter/$aws/things/{t}/jobs/*"]},
        ],
    }


def thing_arn(iot, name):
    return iot.describe_thing(thingName=name)["thingArn"]


def wait_for(client, topic, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = client.get(0.2)
        if m is not None and m.topic == topic:
            return json.loads(m.payload)
    raise AssertionError(f"nothing on {topic}")


def request(client, topic, body, timeout=10):
    """Publishes a device request; returns (outcome, body) from /accepted or /rejected."""
    client.pub(topic, json.dumps(body))
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = client.get(0.2)
        if m is None:
            continue
        for outcome in ("accepted", "rejected"):
            if m.topic == f"{topic}/{outcome}":
                return outcome, json.loads(m.payload)
    raise AssertionError(f"no answer to {topic}")


def test_job_control_plane_follows_botocore(core):
    iot = core.client()
    for t in ("r1", "r2"):
        iot.create_thing(thingName=t)
    targets = [thing_arn(iot, "r1"), thing_arn(iot, "r2")]
    doc = json.dumps({"operation": "hello", "n": 1})
    out = iot.create_job(jobId="j1", targets=targets, document=doc, description="first")
    assert out["jobId"] == "j1" and out["jobArn"].endswith(":job/j1")
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_job(jobId="j1", targets=targets, document=doc)
    job = iot.describe_job(jobId="j1")["job"]
    assert job["status"] == "IN_PROGRESS" and job["targetSelection"] == "SNAPSHOT"
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 2
    assert iot.get_job_document(jobId="j1")["document"] == doc
    assert [j["jobId"] for j in iot.list_jobs()["jobs"]] == ["j1"]
    assert iot.list_jobs(status="COMPLETED")["jobs"] == []
    execs = iot.list_job_executions_for_job(jobId="j1")["executionSummaries"]
    assert sorted(e["thingArn"] for e in execs) == sorted(targets)
    mine = iot.list_job_executions_for_thing(thingName="r1")["executionSummaries"]
    assert mine[0]["jobId"] == "j1" and mine[0]["jobExecutionSummary"]["status"] == "QUEUED"
    e = iot.describe_job_execution(jobId="j1", thingName="r1")["execution"]
    assert e["status"] == "QUEUED" and e["versionNumber"] == 1

    # A queued execution cancels without force; a finished one cannot be canceled again.
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.cancel_job_execution(jobId="j1", thingName="r1", expectedVersion=7)
    iot.cancel_job_execution(jobId="j1", thingName="r1")
    assert iot.describe_job_execution(jobId="j1", thingName="r1")["execution"]["status"] == "CANCELED"
    with pytest.raises(iot.exceptions.InvalidStateTransitionException):
        iot.cancel_job_execution(jobId="j1", thingName="r1")
    n = e["executionNumber"]
    iot.delete_job_execution(jobId="j1", thingName="r1", executionNumber=n)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job_execution(jobId="j1", thingName="r1")

    # An IN_PROGRESS job is deleted only with force; cancel it first otherwise.
    with pytest.raises(iot.exceptions.InvalidStateTransitionException) as e:
        iot.delete_job(jobId="j1")
    assert "force" in str(e.value)
    iot.cancel_job(jobId="j1", reasonCode="NOT_NEEDED", comment="test")
    job = iot.describe_job(jobId="j1")["job"]
    assert job["status"] == "CANCELED" and job["reasonCode"] == "NOT_NEEDED"
    assert job["jobProcessDetails"]["numberOfCanceledThings"] == 1
    iot.delete_job(jobId="j1")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job(jobId="j1")

    # Bad input is named.
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.create_job(jobId="j2", targets=[targets[0].replace("r1", "nobody")], document=doc)
    assert "nobody" in str(e.value)
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_job(jobId="j2", targets=targets, document="not json")
    assert "JSON" in str(e.value)
    group = targets[0].replace("thing/r1", "thinggroup/g1")
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.create_job(jobId="j2", targets=[group], document=doc)
    assert "g1" in str(e.value)

    # A thing-group target reaches the things of the group's child groups.
    iot.create_thing_group(thingGroupName="g1")
    iot.create_thing_group(thingGroupName="g1-lab", parentGroupName="g1")
    iot.add_thing_to_thing_group(thingGroupName="g1-lab", thingName="r1")
    iot.create_job(jobId="jg", targets=[group], document=doc)
    execs = iot.list_job_executions_for_job(jobId="jg")["executionSummaries"]
    assert [e["thingArn"].rsplit("/", 1)[1] for e in execs] == ["r1"], execs
    iot.cancel_job(jobId="jg", force=True)

    # Templates, and a job made from one.
    t = iot.create_job_template(jobTemplateId="t1", description="tmpl", document=doc)
    assert t["jobTemplateArn"].endswith(":jobtemplate/t1")
    with pytest.raises(iot.exceptions.ConflictException):
        iot.create_job_template(jobTemplateId="t1", description="tmpl", document=doc)
    assert iot.describe_job_template(jobTemplateId="t1")["document"] == doc
    assert [x["jobTemplateId"] for x in iot.list_job_templates()["jobTemplates"]] == ["t1"]
    iot.create_job(jobId="j3", targets=[targets[1]], jobTemplateArn=t["jobTemplateArn"])
    assert iot.get_job_document(jobId="j3")["document"] == doc
    iot.delete_job_template(jobTemplateId="t1")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job_template(jobTemplateId="t1")
    # The aws CLI reads the same shapes.
    assert core.aws("iot", "describe-job", "--job-id", "j3")["job"]["jobId"] == "j3"


def test_device_takes_a_job_through_its_states_over_mqtt(core, tmp_path):
    ident = Identity(core, tmp_path, "r1", policy_doc=jobs_policy(), policy_name="robot-jobs")
    other = Identity(core, tmp_path, "r2", policy_doc=jobs_policy(), policy_name="robot-jobs")
    iot = core.client()
    dev = Client(core, ident, "r1")
    base = "$aws/things/r1/jobs"
    assert dev.sub(f"{base}/#") == [1]
    # Another robot may not listen to r1's jobs.
    spy = Client(core, other, "r2")
    assert spy.sub(f"{base}/notify-next") in ([128], None)
    spy.close()

    doc = {"operation": "test", "v": 2}
    iot.create_job(jobId="job1", targets=[thing_arn(iot, "r1")], document=json.dumps(doc))
    nxt = wait_for(dev, f"{base}/notify-next")
    assert nxt["execution"]["jobId"] == "job1"
    assert nxt["execution"]["status"] == "QUEUED"
    assert nxt["execution"]["jobDocument"] == doc

    outcome, body = request(dev, f"{base}/get", {"clientToken": "c0"})
    assert outcome == "accepted" and body["clientToken"] == "c0"
    assert [j["jobId"] for j in body["queuedJobs"]] == ["job1"] and body["inProgressJobs"] == []

    outcome, body = request(dev, f"{base}/start-next", {"clientToken": "c1", "statusDetails": {"step": "starting"}})
    assert outcome == "accepted", body
    assert body["clientToken"] == "c1"
    ex = body["execution"]
    assert ex["status"] == "IN_PROGRESS" and ex["jobDocument"] == doc
    assert ex["statusDetails"] == {"step": "starting"}
    version = ex["versionNumber"]

    outcome, body = request(dev, f"{base}/job1/update", {"status": "SUCCEEDED", "expectedVersion": version + 5})
    assert outcome == "rejected" and body["code"] == "VersionMismatch"
    outcome, body = request(dev, f"{base}/job1/update", {"status": "CANCELED"})
    assert outcome == "rejected" and body["code"] == "InvalidStateTransition"
    outcome, body = request(dev, f"{base}/job1/update", {"status": "IN_PROGRESS", "statusDetails": {"bad key": "x"}})
    assert outcome == "rejected" and body["code"] == "InvalidRequest"
    outcome, body = request(dev, f"{base}/job1/update", {
        "status": "IN_PROGRESS", "expectedVersion": version, "statusDetails": {"step": "download"},
        "includeJobExecutionState": True})
    assert outcome == "accepted", body
    assert body["executionState"]["statusDetails"] == {"step": "download"}
    assert body["executionState"]["versionNumber"] == version + 1
    cp = iot.describe_job_execution(jobId="job1", thingName="r1")["execution"]
    assert cp["status"] == "IN_PROGRESS" and cp["statusDetails"]["detailsMap"] == {"step": "download"}

    outcome, body = request(dev, f"{base}/job1/update", {"status": "SUCCEEDED", "statusDetails": {"version": "2"}})
    assert outcome == "accepted", body
    # Nothing pending now: notify-next says so, without an execution.
    empty = wait_for(dev, f"{base}/notify-next")
    assert "execution" not in empty
    outcome, body = request(dev, f"{base}/job1/update", {"status": "FAILED"})
    assert outcome == "rejected" and body["code"] == "TerminalStateReached"
    job = iot.describe_job(jobId="job1")["job"]
    assert job["status"] == "COMPLETED" and job["jobProcessDetails"]["numberOfSucceededThings"] == 1
    outcome, body = request(dev, f"{base}/$next/get", {})
    assert outcome == "accepted" and "execution" not in body
    outcome, body = request(dev, f"{base}/nojob/get", {})
    assert outcome == "rejected" and body["code"] == "ResourceNotFound"
    outcome, body = request(dev, f"{base}/start-next", {})
    assert outcome == "accepted" and "execution" not in body

    # A second job: a forced cancel of the running execution reaches the device.
    iot.create_job(jobId="job2", targets=[thing_arn(iot, "r1")], document=json.dumps(doc))
    assert wait_for(dev, f"{base}/notify-next")["execution"]["jobId"] == "job2"
    outcome, _ = request(dev, f"{base}/start-next", {})
    assert outcome == "accepted"
    with pytest.raises(iot.exceptions.InvalidStateTransitionException):
        iot.cancel_job_execution(jobId="job2", thingName="r1")
    iot.cancel_job_execution(jobId="job2", thingName="r1", force=True)
    assert "execution" not in wait_for(dev, f"{base}/notify-next")
    outcome, body = request(dev, f"{base}/job2/update", {"status": "SUCCEEDED"})
    assert outcome == "rejected" and body["code"] == "TerminalStateReached"
    dev.close()


def test_staged_files_are_served_by_token_only(core):
    import secrets
    import urllib.error
    import urllib.request

    files = core.data_dir / "files"
    files.mkdir(mode=0o700, exist_ok=True)
    token = secrets.token_hex(32)
    (files / token).write_bytes(b"binary" * 1000)
    with urllib.request.urlopen(f"{core.url}/files/{token}", timeout=5) as r:
        assert r.read() == b"binary" * 1000
    # Attacks: guessing, another file of the data dir, a path.
    for bad in (secrets.token_hex(32), "core.db", "..%2Fcore.db", token.upper()):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{core.url}/files/{bad}", timeout=5)
        assert e.value.code == 404, bad
