"""Differential test: the same scripted control-plane sequence against our
core and against moto's ThreadedMotoServer (an independent implementation of
the AWS IoT API). Response keys and error types must agree, except for the
moto deviations written down in MOTO_DEVIATIONS, each with its reason."""

import json

import boto3
import botocore.exceptions
import pytest

from conftest import free_port

DOC = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}
)

# step name -> why our answer legitimately differs from moto's.
MOTO_DEVIATIONS = {
    "create_thing_conflict": "moto accepts the same thing name with other attributes; AWS documents "
    "ResourceAlreadyExistsException (CreateThing API reference)",
    "malformed_policy": "moto does not validate policy documents; AWS returns MalformedPolicyException",
    "revoked_to_active": "moto allows any status move; AWS refuses REVOKED -> ACTIVE with CertificateStateException",
    "create_policy_version_0": "moto omits isDefaultVersion, which AWS's CreatePolicyVersion returns",
    "create_policy_version_1": "same as create_policy_version_0",
    "create_policy_version_2": "same as create_policy_version_0",
    "create_policy_version_3": "same as create_policy_version_0",
    "get_policy": "moto omits creationDate, lastModifiedDate and generationId, which AWS's GetPolicy returns",
    "delete_missing_thing": "moto answers 404; AWS's DeleteThing 'returns successfully with no error if "
    "you specify a thing that doesn't exist'",
}

# Steps whose error message must equal moto's word for word (after the
# certificate's ARN and id are replaced by placeholders): moto copies these
# texts from AWS, and scripts match on them.
SAME_MESSAGE = [
    "create_policy_taken",
    "list_principals_missing_thing",
    "delete_attached_policy",
    "delete_active_certificate",
    "sixth_version",
    "delete_thing_still_attached",
    "delete_certificate_things_attached",
    "delete_certificate_policies_attached",
]


def script(iot, csr):
    """The scripted sequence; yields (step, outcome) where outcome is the
    sorted response keys or ('error', code)."""

    messages = {}

    def call(step, fn, **kw):
        try:
            r = fn(**kw)
            r.pop("ResponseMetadata", None)
            return step, sorted(r), r
        except botocore.exceptions.ClientError as e:
            messages[step] = e.response["Error"]["Message"]
            return step, ("error", e.response["Error"]["Code"]), None

    out = []
    out.append(call("create_thing", iot.create_thing, thingName="diff1", attributePayload={"attributes": {"a": "1"}}))
    out.append(call("create_thing_same", iot.create_thing, thingName="diff1", attributePayload={"attributes": {"a": "1"}}))
    out.append(call("create_thing_conflict", iot.create_thing, thingName="diff1", attributePayload={"attributes": {"a": "2"}}))
    out.append(call("describe_thing", iot.describe_thing, thingName="diff1"))
    out.append(call("describe_missing_thing", iot.describe_thing, thingName="nope"))
    out.append(call("list_things", iot.list_things))
    step, keys, cert = call("create_certificate_from_csr", iot.create_certificate_from_csr, certificateSigningRequest=csr, setAsActive=True)
    out.append((step, keys, None))
    cid, arn = cert["certificateId"], cert["certificateArn"]
    out.append(call("describe_certificate", iot.describe_certificate, certificateId=cid))
    out.append(call("list_certificates", iot.list_certificates))
    out.append(call("create_policy", iot.create_policy, policyName="diffp", policyDocument=DOC))
    out.append(call("create_policy_taken", iot.create_policy, policyName="diffp", policyDocument=DOC))
    out.append(call("list_principals_missing_thing", iot.list_thing_principals, thingName="nope"))
    out.append(call("unknown_thing_type", iot.create_thing, thingName="typed", thingTypeName="no-such-type"))
    out.append(call("get_policy", iot.get_policy, policyName="diffp"))
    out.append(call("malformed_policy", iot.create_policy, policyName="bad", policyDocument='{"Statement":[{"Effect":"Allow"}]}'))
    out.append(call("attach_policy", iot.attach_policy, policyName="diffp", target=arn))
    out.append(call("list_attached_policies", iot.list_attached_policies, target=arn))
    out.append(call("attach_thing_principal", iot.attach_thing_principal, thingName="diff1", principal=arn))
    out.append(call("list_thing_principals", iot.list_thing_principals, thingName="diff1"))
    out.append(call("describe_endpoint", iot.describe_endpoint, endpointType="iot:Data-ATS"))
    out.append(call("delete_attached_policy", iot.delete_policy, policyName="diffp"))
    out.append(call("delete_active_certificate", iot.delete_certificate, certificateId=cid))
    out.append(call("delete_thing_still_attached", iot.delete_thing, thingName="diff1"))
    for i in range(4):
        out.append(call(f"create_policy_version_{i}", iot.create_policy_version, policyName="diffp", policyDocument=DOC))
    out.append(call("sixth_version", iot.create_policy_version, policyName="diffp", policyDocument=DOC))
    out.append(call("list_policy_versions", iot.list_policy_versions, policyName="diffp"))
    out.append(call("get_policy_version", iot.get_policy_version, policyName="diffp", policyVersionId="1"))
    out.append(call("update_certificate_revoked", iot.update_certificate, certificateId=cid, newStatus="REVOKED"))
    out.append(call("delete_certificate_things_attached", iot.delete_certificate, certificateId=cid))
    out.append(call("detach_thing_principal", iot.detach_thing_principal, thingName="diff1", principal=arn))
    out.append(call("delete_certificate_policies_attached", iot.delete_certificate, certificateId=cid))
    out.append(call("detach_policy", iot.detach_policy, policyName="diffp", target=arn))
    out.append(call("detach_policy_not_attached", iot.detach_policy, policyName="diffp", target=arn))
    out.append(call("delete_thing", iot.delete_thing, thingName="diff1"))
    out.append(call("delete_missing_thing", iot.delete_thing, thingName="diff1"))
    # last: moto lets the certificate become ACTIVE again here
    out.append(call("revoked_to_active", iot.update_certificate, certificateId=cid, newStatus="ACTIVE"))
    placeholders = {m: msg.replace(arn, "<arn>").replace(cid, "<id>") for m, msg in messages.items()}
    return [(s, k) for s, k, _ in out], placeholders


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def core(tmp_path):
    """A core without the detach delay: moto detaches at once, and the
    script compares error texts, not timing (test_provision.py covers the
    delay)."""
    from conftest import Core

    c = Core(tmp_path / "core", extra=["--detach-delay", "0"])
    yield c
    c.stop()


def test_same_sequence_as_moto(core, moto_server, tmp_path):
    from conftest import run

    r = run("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k"),
            "-out", str(tmp_path / "c.csr"), "-subj", "/CN=diff")
    assert r.returncode == 0
    csr = (tmp_path / "c.csr").read_text()
    ours, our_messages = script(core.client(), csr)
    moto, moto_messages = script(
        boto3.client("iot", endpoint_url=moto_server, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing"),
        csr,
    )
    assert [s for s, _ in ours] == [s for s, _ in moto]
    mismatches = []
    for (step, a), (_, b) in zip(ours, moto):
        if a == b:
            continue
        if step in MOTO_DEVIATIONS:
            continue
        mismatches.append(f"{step}: ours={a} moto={b}")
    assert not mismatches, "\n".join(mismatches)
    # the list stays honest: a deviation moto has fixed must be taken off it
    agreed = [s for (s, a), (_, b) in zip(ours, moto) if a == b and s in MOTO_DEVIATIONS]
    assert not agreed, f"moto now agrees on {agreed}: remove them from MOTO_DEVIATIONS"
    # where a deviation is listed, our answer is the AWS one: check it outright
    ours_d = dict(ours)
    assert ours_d["malformed_policy"] == ("error", "MalformedPolicyException")
    assert ours_d["revoked_to_active"] == ("error", "CertificateStateException")
    assert ours_d["delete_attached_policy"] == ("error", "DeleteConflictException")
    assert ours_d["delete_active_certificate"] == ("error", "CertificateStateException")
    assert ours_d["sixth_version"] == ("error", "VersionsLimitExceededException")
    assert ours_d["create_thing_conflict"] == ("error", "ResourceAlreadyExistsException")
    assert ours_d["delete_missing_thing"] == []
    assert "isDefaultVersion" in ours_d["create_policy_version_0"]
    assert ours_d["delete_thing_still_attached"] == ("error", "InvalidRequestException")
    assert ours_d["detach_policy_not_attached"] == ("error", "ResourceNotFoundException")
    assert ours_d["unknown_thing_type"] == ("error", "ResourceNotFoundException")
    # AWS's message texts, as moto copies them
    differ = [
        f"{step}: ours={our_messages.get(step)!r} moto={moto_messages.get(step)!r}"
        for step in SAME_MESSAGE
        if our_messages.get(step) != moto_messages.get(step)
    ]
    assert not differ, "\n".join(differ)
    assert our_messages["delete_thing_still_attached"] == (
        "Cannot delete. Thing diff1 is still attached to one or more principals"
    )
