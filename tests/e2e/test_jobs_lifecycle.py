"""AWS IoT Jobs over a job's life on the local core, driven by boto3 and a
device on MQTT: a CONTINUOUS job for a thing group reaches things that join
the group (or a child group) later, and the files `gopigo update` stages for
a job are removed once no job needs them."""

import json
import secrets
import time
import urllib.error
import urllib.request

from conftest import Identity
from mqttc import Client
from test_jobs import jobs_policy, wait_for


def group_arn(iot, name):
    return iot.describe_thing_group(thingGroupName=name)["thingGroupArn"]


def executions(iot, job_id):
    return {s["thingArn"].rsplit("/", 1)[1]: s["jobExecutionSummary"]["status"]
            for s in iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]}


def test_continuous_group_job_reaches_things_that_join_later(core, tmp_path):
    iot = core.client()
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing_group(thingGroupName="lab", parentGroupName="fleet")
    iot.create_thing_group(thingGroupName="other")
    for t in ("early", "late", "child", "stranger"):
        iot.create_thing(thingName=t)
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="early")
    doc = {"operation": "test"}
    iot.create_job(jobId="cont", targets=[group_arn(iot, "fleet")], document=json.dumps(doc),
                   targetSelection="CONTINUOUS")
    iot.create_job(jobId="snap", targets=[group_arn(iot, "fleet")], document=json.dumps(doc),
                   targetSelection="SNAPSHOT")
    assert executions(iot, "cont") == {"early": "QUEUED"}

    # A device listening for its jobs hears about the continuous job as soon
    # as it joins the group.
    ident = Identity(core, tmp_path, "late", policy_doc=jobs_policy(), policy_name="robot-jobs")
    dev = Client(core, ident, "late")
    assert dev.sub("$aws/things/late/jobs/notify-next") == [1]
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="late")
    nxt = wait_for(dev, "$aws/things/late/jobs/notify-next")
    assert nxt["execution"]["jobId"] == "cont" and nxt["execution"]["jobDocument"] == doc
    dev.close()
    # A child group of the target counts too (UpdateThingGroupsForThing);
    # another group does not; a SNAPSHOT job keeps the things it started with.
    iot.update_thing_groups_for_thing(thingName="child", thingGroupsToAdd=["lab"])
    iot.add_thing_to_thing_group(thingGroupName="other", thingName="stranger")
    assert executions(iot, "cont") == {"early": "QUEUED", "late": "QUEUED", "child": "QUEUED"}
    assert executions(iot, "snap") == {"early": "QUEUED"}
    # Joining again (after leaving) does not queue a second execution.
    iot.remove_thing_from_thing_group(thingGroupName="fleet", thingName="late")
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="late")
    assert len(iot.list_job_executions_for_thing(thingName="late")["executionSummaries"]) == 1
    # A canceled continuous job reaches nobody new.
    iot.cancel_job(jobId="cont")
    iot.create_thing(thingName="after")
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="after")
    assert "after" not in executions(iot, "cont")


def stage(core):
    """Stages a file as `gopigo update` does; returns (token, path, url)."""
    files = core.data_dir / "files"
    files.mkdir(mode=0o700, exist_ok=True)
    token = secrets.token_hex(32)
    (files / token).write_bytes(b"agent build")
    return token, files / token, f"{core.url}/files/{token}"


def served(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read() == b"agent build"
    except urllib.error.HTTPError as e:
        assert e.code == 404
        return False


def wait_gone(path, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline and path.exists():
        time.sleep(0.25)
    return not path.exists()


def update_doc(url):
    return json.dumps({"operation": "gopigo-agent-update", "url": url, "sha256": "0" * 64,
                       "version": "9.9.9", "size": 11})


def test_staged_files_go_when_their_jobs_end(core, tmp_path):
    iot = core.client()
    iot.create_thing(thingName="r1")
    arn = iot.describe_thing(thingName="r1")["thingArn"]

    # Deleted job: its file goes at once.
    _, path, url = stage(core)
    iot.create_job(jobId="deleted", targets=[arn], document=update_doc(url))
    assert served(url)
    iot.delete_job(jobId="deleted", force=True)
    assert not path.exists() and not served(url)

    # Canceled job: likewise.
    _, path, url = stage(core)
    iot.create_job(jobId="canceled", targets=[arn], document=update_doc(url))
    iot.cancel_job(jobId="canceled")
    assert not path.exists() and not served(url)

    # Two jobs share a file: it stays while one of them still runs.
    _, path, url = stage(core)
    iot.create_job(jobId="a", targets=[arn], document=update_doc(url))
    iot.create_job(jobId="b", targets=[arn], document=update_doc(url))
    iot.cancel_job(jobId="a")
    assert path.exists() and served(url)

    # Completed job: the robot reports SUCCEEDED over MQTT, the job
    # completes, and the core's sweep removes the file.
    ident = Identity(core, tmp_path, "r1", policy_doc=jobs_policy(), policy_name="robot-jobs")
    dev = Client(core, ident, "r1")
    base = "$aws/things/r1/jobs"
    assert dev.sub(f"{base}/#") == [1]
    dev.pub(f"{base}/b/update", json.dumps({"status": "IN_PROGRESS"}))
    wait_for(dev, f"{base}/b/update/accepted")
    dev.pub(f"{base}/b/update", json.dumps({"status": "SUCCEEDED"}))
    wait_for(dev, f"{base}/b/update/accepted")
    dev.close()
    assert iot.describe_job(jobId="b")["job"]["status"] == "COMPLETED"
    assert wait_gone(path), "the completed job's staged file is still there"
    assert not served(url)

    # A file no job names, freshly staged (a job may be on its way), stays.
    _, fresh, fresh_url = stage(core)
    iot.create_job(jobId="other", targets=[arn], document=json.dumps({"operation": "x"}))
    iot.cancel_job(jobId="other")
    assert fresh.exists() and served(fresh_url)
