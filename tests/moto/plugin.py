"""pytest plugin that runs moto's own IoT tests against the real `gopigo core`.

Loaded with `-p plugin` (tests/moto/run.py does it) before moto's test
modules are imported:

- `moto.mock_aws` becomes a no-op (decorator with or without arguments, on a
  function or a class, and context manager), so nothing is mocked;
- moto's settings say "server mode" (`TEST_SERVER_MODE`): tests then skip the
  parts that reach into moto's in-process backends, as they do when moto runs
  as a separate server, which is what the core is here;
- boto3's `iot` and `iot-data` clients are pointed at a fresh `gopigo core`
  per test and region (the real binary on loopback ports picked at run time,
  started by tests/e2e/conftest.py's `Core`, with moto's account id so the
  tests' ARNs match); any other service (CloudFormation, Cognito, ...) makes
  the test not applicable: the core does not serve it. Nothing can reach AWS:
  every other endpoint is a closed loopback port.

Each test's outcome is written to the JSON file named by
`GOPIGO_MOTO_RESULTS`: pass, fail (with a reason: the operations the core
answered UnknownOperationException to, else the error's first line) or n/a
(with the skip reason).
"""

import inspect
import json
import os
import tempfile
from pathlib import Path

os.environ["TEST_SERVER_MODE"] = "true"
os.environ["MOTO_TEST_ALLOW_AWS_REQUEST"] = "false"
os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
for _k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_k, None)
os.environ["AWS_ACCESS_KEY_ID"] = "not-used"
os.environ["AWS_SECRET_ACCESS_KEY"] = "not-used"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import pytest  # noqa: E402

import moto  # noqa: E402
import moto.core.decorator  # noqa: E402
from moto import settings  # noqa: E402

def _load_e2e_helpers():
    """tests/e2e/conftest.py, under a name of its own (moto has a conftest too)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "e2e" / "conftest.py"
    spec = importlib.util.spec_from_file_location("gopigo_e2e_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


Core = _load_e2e_helpers().Core

ACCOUNT_ID = "123456789012"  # moto's DEFAULT_ACCOUNT_ID, in the tests' ARNs
CORE_SERVICES = ("iot", "iot-data")
NOT_APPLICABLE_PREFIX = "n/a: "


class _NoMock:
    """What `mock_aws(...)` returns: does nothing, however it is used."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def start(self, *args, **kwargs):
        pass

    def stop(self, *args, **kwargs):
        pass

    def __call__(self, func=None, *args, **kwargs):
        return func


def mock_aws(func=None, config=None):
    if func is not None:
        return func
    return _NoMock()


moto.mock_aws = mock_aws
moto.core.decorator.mock_aws = mock_aws
settings.TEST_SERVER_MODE = True
settings.TEST_DECORATOR_MODE = False


class Cores:
    """The cores of the running test, one per region, started on first use."""

    def __init__(self):
        self.by_region = {}
        self.tmp = None
        self.unknown_operations = []

    def get(self, region):
        if region not in self.by_region:
            if self.tmp is None:
                self.tmp = tempfile.TemporaryDirectory(prefix="gopigo-moto-")
            self.by_region[region] = Core(
                Path(self.tmp.name) / region,
                extra=["--region", region, "--account-id", ACCOUNT_ID],
            )
        return self.by_region[region]

    def stop_all(self):
        for c in self.by_region.values():
            c.stop()
        self.by_region.clear()
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None
        self.unknown_operations = []


CORES = Cores()
_client_sig = inspect.signature(boto3.session.Session.client)
_original_client = boto3.session.Session.client


class _Sts:
    """moto's `account_id` fixture asks STS who the caller is: the core's account."""

    def get_caller_identity(self):
        return {"Account": ACCOUNT_ID, "Arn": f"arn:aws:iam::{ACCOUNT_ID}:user/gopigo-local",
                "UserId": "gopigo-local"}


def _record_unknown_operation(parsed=None, model=None, **_):
    err = (parsed or {}).get("Error", {})
    if err.get("Code") == "UnknownOperationException" and model is not None:
        CORES.unknown_operations.append(model.name)


def _client(self, *args, **kwargs):
    bound = _client_sig.bind(self, *args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    service = a["service_name"]
    if service == "sts":
        return _Sts()
    if service not in CORE_SERVICES:
        pytest.skip(f"{NOT_APPLICABLE_PREFIX}uses {service}, which the local core does not serve")
    region = a["region_name"] or self.region_name or "us-east-1"
    core = CORES.get(region)
    key, secret = core.credentials()
    a.update(
        region_name=region,
        endpoint_url=core.url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=None,
        config=botocore.config.Config(connect_timeout=10, read_timeout=60),
    )
    client = _original_client(*bound.args, **bound.kwargs)
    client.meta.events.register("after-call", _record_unknown_operation)
    return client


boto3.session.Session.client = _client
boto3.DEFAULT_SESSION = None

RESULTS = {}


@pytest.fixture(autouse=True)
def _fresh_cores():
    yield
    CORES.stop_all()


def _not_applicable_by_file(item):
    name = item.path.name
    if name == "test_server.py":
        return "tests moto's own Flask server, not an AWS API"
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        why = _not_applicable_by_file(item)
        if why:
            item.add_marker(pytest.mark.skip(reason=NOT_APPLICABLE_PREFIX + why))


def _first_line(text):
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    nodeid = item.nodeid
    if rep.skipped:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        reason = reason.removeprefix("Skipped: ").removeprefix(NOT_APPLICABLE_PREFIX)
        RESULTS.setdefault(nodeid, ("n/a", _first_line(reason)))
    elif rep.failed:
        if RESULTS.get(nodeid, ("",))[0] == "fail":
            return
        ops = sorted(set(CORES.unknown_operations))
        if ops:
            reason = "not implemented: " + ", ".join(ops)
        else:
            exc = call.excinfo.value if call.excinfo else None
            reason = f"{type(exc).__name__}: {_first_line(exc)}" if exc else _first_line(rep.longreprtext)
        RESULTS[nodeid] = ("fail", reason)
    elif rep.when == "call" and rep.passed:
        RESULTS.setdefault(nodeid, ("pass", ""))


def pytest_sessionfinish(session, exitstatus):
    CORES.stop_all()
    path = os.environ.get("GOPIGO_MOTO_RESULTS")
    if path:
        Path(path).write_text(json.dumps(RESULTS, indent=1, sort_keys=True))
