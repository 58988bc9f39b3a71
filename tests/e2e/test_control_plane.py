"""The seed's provisioning flow and AWS's error behaviour, driven by the real
aws CLI, boto3 and openssl against a core started by the test."""

import json
import os
import stat
import time
import urllib.error
import urllib.request

import botocore.exceptions
import pytest

from conftest import GOPIGO, run

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}",
            },
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": "arn:aws:iot:*:*:topic/gopigo/${iot:Connection.Thing.ThingName}/*",
            },
        ],
    }
)


def pubkey(kind, path):
    r = run("openssl", kind, "-in", str(path), "-pubkey", "-noout")
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("newkey", [["rsa:2048"], ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]])
def test_seed_flow_with_aws_cli(core, tmp_path, newkey):
    key, csr = tmp_path / "iot.key", tmp_path / "iot.csr"
    r = run(
        "openssl", "req", "-new", "-newkey", *newkey, "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=gopigo3",
    )
    assert r.returncode == 0, r.stderr

    cert = core.aws(
        "iot", "create-certificate-from-csr", "--set-as-active",
        f"--certificate-signing-request=file://{csr}",
    )
    cert_id, arn = cert["certificateId"], cert["certificateArn"]
    assert arn.endswith("cert/" + cert_id)
    thing = core.aws("iot", "create-thing", "--thing-name", "gopigo3")
    assert thing["thingName"] == "gopigo3"
    policy = core.aws(
        "iot", "create-policy", "--policy-name", "gopigo3-policy", "--policy-document", POLICY
    )
    assert policy["policyVersionId"] == "1"
    core.aws("iot", "attach-policy", "--policy-name", "gopigo3-policy", "--target", arn)
    core.aws("iot", "attach-thing-principal", "--thing-name", "gopigo3", "--principal", arn)
    ep = core.aws("iot", "describe-endpoint", "--endpoint-type", "iot:Data-ATS")
    assert ep["endpointAddress"]
    assert core.aws("iot", "describe-endpoint", "--endpoint-type", "iot:Data-ATS") == ep

    desc = core.aws("iot", "describe-certificate", "--certificate-id", cert_id)[
        "certificateDescription"
    ]
    assert desc["status"] == "ACTIVE"
    pem = tmp_path / "cert.pem"
    pem.write_text(desc["certificatePem"])
    assert pubkey("x509", pem) == pubkey("req", csr), "certificate must carry the CSR's own key"
    r = run("openssl", "verify", "-CAfile", str(core.ca_path), str(pem))
    assert r.returncode == 0 and ": OK" in r.stdout, r.stdout + r.stderr
    # certificateId is the SHA-256 of the DER, as AWS computes it
    der = run("openssl", "x509", "-in", str(pem), "-outform", "der", text=False).stdout
    import hashlib

    assert hashlib.sha256(der).hexdigest() == cert_id
    # the attachments are visible both ways
    assert core.aws("iot", "list-thing-principals", "--thing-name", "gopigo3")["principals"] == [arn]
    attached = core.aws("iot", "list-attached-policies", "--target", arn)["policies"]
    assert [p["policyName"] for p in attached] == ["gopigo3-policy"]
    assert core.aws("iot", "list-targets-for-policy", "--policy-name", "gopigo3-policy")[
        "targets"
    ] == [arn]


def test_gopigo_pki_csr_is_accepted_by_openssl_and_the_core(core, tmp_path):
    out = tmp_path / "bundle"
    r = run(GOPIGO, "pki", "csr", "--cn", "robot7", "--out-dir", str(out))
    assert r.returncode == 0, r.stderr
    key, csr = out / "robot7.key", out / "robot7.csr"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    r = run("openssl", "req", "-in", str(csr), "-verify", "-noout")
    assert r.returncode == 0, r.stderr
    cert = core.aws(
        "iot", "create-certificate-from-csr", f"--certificate-signing-request=file://{csr}"
    )
    desc = core.aws("iot", "describe-certificate", "--certificate-id", cert["certificateId"])
    # without --set-as-active the certificate starts INACTIVE, as on AWS
    assert desc["certificateDescription"]["status"] == "INACTIVE"
    # a second run refuses to overwrite the private key
    r = run(GOPIGO, "pki", "csr", "--cn", "robot7", "--out-dir", str(out))
    assert r.returncode != 0 and "robot7.key" in r.stderr


def test_boto3_flow_and_pagination_over_260_things(core, tmp_path):
    iot = core.client()
    names = [f"robot-{i:03d}" for i in range(260)]
    for n in names:
        iot.create_thing(thingName=n, attributePayload={"attributes": {"fleet": "a"}})
    seen = []
    pages = 0
    for page in iot.get_paginator("list_things").paginate(PaginationConfig={"PageSize": 100}):
        pages += 1
        seen += [t["thingName"] for t in page["things"]]
    assert seen == names and pages == 3
    # the default page is smaller than 260, so the CLI must follow nextToken too
    cli = core.aws("iot", "list-things")
    assert len(cli["things"]) == 260

    # certificates and policies page with pageSize/marker
    for i in range(7):
        iot.create_keys_and_certificate(setAsActive=(i % 2 == 0))
        iot.create_policy(policyName=f"p{i}", policyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}
        ))
    certs = [c for p in iot.get_paginator("list_certificates").paginate(pageSize=3) for c in p["certificates"]]
    assert len(certs) == 7 and len({c["certificateId"] for c in certs}) == 7
    assert sorted(c["status"] for c in certs) == ["ACTIVE"] * 4 + ["INACTIVE"] * 3
    pols = [p["policyName"] for pg in iot.get_paginator("list_policies").paginate(pageSize=2) for p in pg["policies"]]
    assert pols == [f"p{i}" for i in range(7)]

    # describe/delete; deleting a missing thing succeeds, as on AWS
    d = iot.describe_thing(thingName="robot-001")
    assert d["attributes"] == {"fleet": "a"} and d["version"] == 1
    iot.update_thing(thingName="robot-001", attributePayload={"attributes": {"fleet": "b"}})
    assert iot.describe_thing(thingName="robot-001")["version"] == 2
    iot.delete_thing(thingName="robot-001")
    iot.delete_thing(thingName="robot-001")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.describe_thing(thingName="robot-001")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def err(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def test_errors_have_aws_status_and_type(core, tmp_path):
    iot = core.client()
    iot.create_thing(thingName="r1", attributePayload={"attributes": {"a": "1"}})
    # same name and same config: fine; other attributes: 409
    iot.create_thing(thingName="r1", attributePayload={"attributes": {"a": "1"}})
    st, code, _ = err(iot.create_thing, thingName="r1", attributePayload={"attributes": {"a": "2"}})
    assert (st, code) == (409, "ResourceAlreadyExistsException")

    st, code, msg = err(iot.create_policy, policyName="bad", policyDocument='{"Statement": [{"Effect": "Allow"}]}')
    assert (st, code) == (400, "MalformedPolicyException") and "Action" in msg
    st, code, _ = err(iot.create_policy, policyName="bad", policyDocument="not json")
    assert (st, code) == (400, "MalformedPolicyException")

    cert = iot.create_keys_and_certificate(setAsActive=True)
    cid, arn = cert["certificateId"], cert["certificateArn"]
    st, code, _ = err(iot.delete_certificate, certificateId=cid)
    assert (st, code) == (406, "CertificateStateException")

    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})
    iot.create_policy(policyName="p", policyDocument=doc)
    iot.attach_policy(policyName="p", target=arn)
    st, code, _ = err(iot.delete_policy, policyName="p")
    assert (st, code) == (409, "DeleteConflictException")

    for _ in range(4):
        iot.create_policy_version(policyName="p", policyDocument=doc)
    st, code, _ = err(iot.create_policy_version, policyName="p", policyDocument=doc)
    assert (st, code) == (409, "VersionsLimitExceededException")
    st, code, _ = err(iot.delete_policy_version, policyName="p", policyVersionId="1")
    assert (st, code) == (409, "DeleteConflictException")  # the default version

    iot.update_certificate(certificateId=cid, newStatus="REVOKED")
    st, code, _ = err(iot.update_certificate, certificateId=cid, newStatus="ACTIVE")
    assert (st, code) == (406, "CertificateStateException")
    assert iot.describe_certificate(certificateId=cid)["certificateDescription"]["status"] == "REVOKED"

    # deleting: attached things and policies block it, as AWS documents
    iot.attach_thing_principal(thingName="r1", principal=arn)
    st, code, _ = err(iot.delete_certificate, certificateId=cid)
    assert (st, code) == (409, "DeleteConflictException")
    iot.detach_thing_principal(thingName="r1", principal=arn)
    st, code, _ = err(iot.delete_certificate, certificateId=cid)
    assert (st, code) == (409, "DeleteConflictException")
    iot.detach_policy(policyName="p", target=arn)
    # detaching is eventual, as on AWS (--detach-delay): the thing still
    # lists the certificate for a while, and the delete is refused till then
    st, code, _ = err(iot.delete_certificate, certificateId=cid)
    assert (st, code) == (409, "DeleteConflictException")
    deadline = time.monotonic() + 30
    while iot.list_thing_principals(thingName="r1")["principals"] and time.monotonic() < deadline:
        time.sleep(0.2)
    iot.delete_certificate(certificateId=cid)
    st, code, _ = err(iot.describe_certificate, certificateId=cid)
    assert (st, code) == (404, "ResourceNotFoundException")

    # a CSR that is not a CSR
    st, code, msg = err(iot.create_certificate_from_csr, certificateSigningRequest="hello")
    assert (st, code) == (400, "InvalidRequestException") and "CSR" in msg


def test_unsigned_and_badly_signed_requests_are_refused(core):
    req = urllib.request.Request(core.url + "/things")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"

    key, _ = core.credentials()
    st, code, _ = err(core.client(secret="wrong-secret").list_things)
    assert (st, code) == (403, "InvalidSignatureException")
    st, code, _ = err(core.client(key="AKIAUNKNOWNKEY000000").list_things)
    assert (st, code) == (403, "UnrecognizedClientException")
    # the aws CLI with the wrong secret says so too
    env = core.env()
    env["AWS_SECRET_ACCESS_KEY"] = "nope"
    env["AWS_ACCESS_KEY_ID"] = key
    del env["AWS_PROFILE"]
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    from conftest import run as _run

    r = _run("aws", "iot", "list-things", "--endpoint-url", core.url, env=env)
    assert r.returncode != 0 and "InvalidSignatureException" in r.stderr


def test_insecure_flag_accepts_unsigned_requests(tmp_path):
    from conftest import Core

    c = Core(tmp_path / "insecure", extra=["--insecure-accept-any-signature"])
    try:
        with urllib.request.urlopen(c.url + "/things") as r:
            assert json.loads(r.read()) == {"things": []}
    finally:
        c.stop()


def test_shadow_over_iot_data_http(core):
    data = core.client("iot-data")
    st, code, msg = err(data.get_thing_shadow, thingName="r1")
    assert (st, code) == (404, "ResourceNotFoundException") and "r1" in msg
    r = data.update_thing_shadow(
        thingName="r1", payload=json.dumps({"state": {"desired": {"speed": 200}}})
    )
    accepted = json.loads(r["payload"].read())
    assert accepted["state"] == {"desired": {"speed": 200}} and accepted["version"] == 1
    doc = json.loads(data.get_thing_shadow(thingName="r1")["payload"].read())
    assert doc["state"]["delta"] == {"speed": 200}
    data.update_thing_shadow(thingName="r1", payload=json.dumps({"state": {"reported": {"speed": 200}}}))
    doc = json.loads(data.get_thing_shadow(thingName="r1")["payload"].read())
    assert "delta" not in doc["state"] and doc["version"] == 2
    st, code, _ = err(
        data.update_thing_shadow, thingName="r1",
        payload=json.dumps({"state": {"reported": {"x": 1}}, "version": 1}),
    )
    assert (st, code) == (409, "ConflictException")
    st, code, _ = err(data.update_thing_shadow, thingName="r1", payload=b"{not json")
    assert (st, code) == (400, "InvalidRequestException")
    # named shadows are separate documents
    data.update_thing_shadow(thingName="r1", shadowName="cam", payload=json.dumps({"state": {"reported": {"on": True}}}))
    cam = json.loads(data.get_thing_shadow(thingName="r1", shadowName="cam")["payload"].read())
    assert cam["state"]["reported"] == {"on": True} and cam["version"] == 1
    deleted = json.loads(data.delete_thing_shadow(thingName="r1")["payload"].read())
    assert deleted["version"] == 2
    st, code, _ = err(data.get_thing_shadow, thingName="r1")
    assert st == 404
    # the aws CLI reaches iot-data through the profile as well
    out = core.aws("iot-data", "get-thing-shadow", "--thing-name", "r1", "--shadow-name", "cam", "/dev/stdout", check=False)
    assert out.returncode == 0 and '"on": true' in out.stdout.replace('"on":true', '"on": true')


def test_delete_thing_with_a_principal_attached_is_refused_as_on_aws(core):
    """DeleteThing refuses while a certificate is attached and detaches
    nothing (AWS's InvalidRequestException, seen in real accounts' logs)."""
    iot = core.client()
    iot.create_thing(thingName="r9")
    arn = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_thing_principal(thingName="r9", principal=arn)
    st, code, msg = err(iot.delete_thing, thingName="r9")
    assert (st, code, msg) == (
        400, "InvalidRequestException", "Cannot delete. Thing r9 is still attached to one or more principals",
    )
    assert iot.list_thing_principals(thingName="r9")["principals"] == [arn]
    # the aws CLI shows the same error text to a user
    out = core.aws("iot", "delete-thing", "--thing-name", "r9", check=False)
    assert out.returncode != 0 and "still attached to one or more principals" in out.stderr
    iot.detach_thing_principal(thingName="r9", principal=arn)
    # detaching is eventual (--detach-delay, 2 s by default), as on AWS
    st, code, msg = err(iot.delete_thing, thingName="r9")
    assert (st, code) == (400, "InvalidRequestException") and "still attached" in msg
    deadline = time.monotonic() + 30
    while iot.list_thing_principals(thingName="r9")["principals"] and time.monotonic() < deadline:
        time.sleep(0.2)
    iot.delete_thing(thingName="r9")
    st, code, _ = err(iot.describe_thing, thingName="r9")
    assert st == 404


def test_update_thing_empty_attribute_value_removes_it(core):
    """AttributePayload: 'To remove an attribute, call UpdateThing with an
    empty attribute value'; merge keeps the others, no merge replaces all."""
    iot = core.client()
    iot.create_thing(thingName="r2", attributePayload={"attributes": {"a": "1", "b": "2", "c": "3"}})
    iot.update_thing(thingName="r2", attributePayload={"attributes": {"a": "", "d": "4"}, "merge": True})
    assert iot.describe_thing(thingName="r2")["attributes"] == {"b": "2", "c": "3", "d": "4"}
    iot.update_thing(thingName="r2", attributePayload={"attributes": {"b": "", "e": "5"}})
    assert iot.describe_thing(thingName="r2")["attributes"] == {"e": "5"}
    # the CLI's shorthand with an empty value
    core.aws("iot", "update-thing", "--thing-name", "r2", "--attribute-payload",
             '{"attributes": {"e": ""}, "merge": true}')
    assert iot.describe_thing(thingName="r2")["attributes"] == {}


def test_a_thing_type_that_does_not_exist_is_not_found(core):
    iot = core.client()
    st, code, msg = err(iot.create_thing, thingName="r3", thingTypeName="camera-bot")
    assert (st, code) == (404, "ResourceNotFoundException")
    assert "camera-bot" in msg
    st, code, _ = err(iot.describe_thing, thingName="r3")
    assert st == 404, "nothing was created"
    iot.create_thing(thingName="r3")
    st, code, _ = err(iot.update_thing, thingName="r3", thingTypeName="camera-bot")
    assert (st, code) == (404, "ResourceNotFoundException")


def test_keys_and_certificate_key_is_pkcs1_like_aws(core, tmp_path):
    """AWS returns `-----BEGIN RSA PRIVATE KEY-----`; openssl reads it and it
    matches the certificate."""
    iot = core.client()
    r = iot.create_keys_and_certificate(setAsActive=True)
    key = r["keyPair"]["PrivateKey"]
    assert key.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert key.rstrip().endswith("-----END RSA PRIVATE KEY-----")
    (tmp_path / "k.pem").write_text(key)
    (tmp_path / "c.pem").write_text(r["certificatePem"])
    check = run("openssl", "rsa", "-in", str(tmp_path / "k.pem"), "-check", "-noout")
    assert check.returncode == 0 and "RSA key ok" in check.stdout
    pub = run("openssl", "rsa", "-in", str(tmp_path / "k.pem"), "-pubout")
    assert pub.returncode == 0 and pub.stdout == pubkey("x509", tmp_path / "c.pem")
    assert r["keyPair"]["PublicKey"].startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize(
    "initial,updated",
    [
        # moto's test_update_desired, marked verified against AWS
        ({"a": 1, "b": {"c": 3}}, {"a": 1, "b": {"c": 3}, "d": {}}),
        ({"a": 1, "b": {"c": 3}, "d": {}}, {"a": 1, "b": {"c": {}}, "d": {}}),
        ({"a": 1, "b": {"c": 3}}, {"a": 1, "b": {"c": {"d": 3}}}),
    ],
)
def test_shadow_stores_empty_objects_as_given(core, initial, updated):
    data = core.client("iot-data")
    data.update_thing_shadow(thingName="r1", payload=json.dumps({"state": {"desired": initial}}))
    data.update_thing_shadow(thingName="r1", payload=json.dumps({"state": {"desired": updated}}))
    doc = json.loads(data.get_thing_shadow(thingName="r1")["payload"].read())
    assert doc["state"]["desired"] == updated
    assert doc["state"]["delta"] == updated
    # null still deletes
    data.update_thing_shadow(thingName="r1", payload=json.dumps({"state": {"desired": {"b": None, "d": None}}}))
    doc = json.loads(data.get_thing_shadow(thingName="r1")["payload"].read())
    assert doc["state"]["desired"] == {"a": 1}
