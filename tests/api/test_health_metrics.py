"""/health and /metrics on a live server: unsigned liveness, token-guarded metrics."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from secretsd import __version__
from tests.support.metrics import METRICS_TOKEN, http, scrape
from tests.support.server import REGION, start_server

# Every label the server's metrics may carry: none of them can name a secret.
ALLOWED_LABELS = {"operation", "outcome", "function", "step", "version", "le"}


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("metrics")
    token_file = directory / "metrics-token"
    token_file.write_text(METRICS_TOKEN + "\n")
    server = start_server(directory / "data", "--metrics", "--metrics-token-file", str(token_file))
    yield server
    server.stop()


def signed(server, target: str, body: dict) -> int:
    """Send one signed request with any X-Amz-Target; the status."""
    credentials = server.session().get_credentials()
    request = AWSRequest(
        method="POST",
        url=server.endpoint_url + "/",
        data=json.dumps(body),
        headers={
            "X-Amz-Target": target,
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(credentials, "secretsmanager", REGION).add_auth(request)
    answer = http(server.endpoint_url, "/", "POST", dict(request.headers.items()), request.body)
    return answer.status


def test_health_answers_unsigned_with_the_version(server) -> None:
    answer = http(server.endpoint_url, "/health")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"status": "ok", "version": __version__}
    head = http(server.endpoint_url, "/health", "HEAD")
    assert (head.status, head.body) == (200, b"")
    post = http(server.endpoint_url, "/health", "POST")
    assert post.status == 405 and post.headers["allow"] == "GET, HEAD"


def test_metrics_are_off_unless_enabled(server) -> None:
    answer = http(server.endpoint_url, "/metrics", headers={"Authorization": "Bearer x"})
    assert answer.status == 404
    assert b"--metrics" in answer.body


def test_metrics_need_their_own_bearer_token(metrics_server) -> None:
    url = metrics_server.endpoint_url
    secret_key = metrics_server.session().get_credentials().secret_key
    for headers in (
        {},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
        {"Authorization": f"Bearer {secret_key}"},
        {"Authorization": METRICS_TOKEN},
    ):
        answer = http(url, "/metrics", headers=headers)
        assert answer.status == 401, headers
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert b"secretsd_" not in answer.body
    assert scrape(url).value("secretsd_build_info", version=__version__) == 1


def test_requests_are_counted_by_operation_and_outcome(metrics_server) -> None:
    sm = metrics_server.client()
    before = scrape(metrics_server.endpoint_url)

    def count(scraped, operation: str, outcome: str) -> float:
        found = scraped.value("secretsd_api_requests_total", operation=operation, outcome=outcome)
        return found or 0.0

    name = f"metrics/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="value")
    for _ in range(3):
        sm.get_secret_value(SecretId=name)
    for _ in range(2):
        with pytest.raises(ClientError):
            sm.get_secret_value(SecretId=name + "-absent")
    # A target the server does not know counts as "other", whatever it is called.
    assert signed(metrics_server, f"secretsmanager.Made{uuid.uuid4().hex}", {}) == 400
    # IAM's operations come through the same door, and count by name too.
    metrics_server.client("iam").list_users()
    after = scrape(metrics_server.endpoint_url)
    ok = ("GetSecretValue", "ok")
    missing = ("GetSecretValue", "ResourceNotFoundException")
    assert count(after, *ok) - count(before, *ok) == 3
    assert count(after, *missing) - count(before, *missing) == 2
    assert count(after, "CreateSecret", "ok") - count(before, "CreateSecret", "ok") == 1
    unknown = ("other", "UnknownOperationException")
    assert count(after, *unknown) - count(before, *unknown) == 1
    assert count(after, "ListUsers", "ok") - count(before, "ListUsers", "ok") == 1
    # The latency histogram counts the same requests, all outcomes together.
    duration = "secretsd_api_request_duration_seconds"
    gets = after.value(f"{duration}_count", operation="GetSecretValue")
    assert gets == count(after, *ok) + count(after, *missing)
    assert after.value(f"{duration}_bucket", operation="GetSecretValue", le="+Inf") == gets
    assert 0 < after.value(f"{duration}_sum", operation="GetSecretValue") < gets
    # The store's latency too (point reads on SQLite are left out: see timed_storage).
    assert after.value("secretsd_store_operation_duration_seconds_count", operation="commit")
    assert after.value("secretsd_store_up") == 1


def test_no_secret_name_or_value_reaches_a_label(metrics_server) -> None:
    sm = metrics_server.client()
    name = f"leak-check/{uuid.uuid4().hex}"
    value = f"value-{uuid.uuid4().hex}"
    sm.create_secret(Name=name, SecretString=value)
    sm.get_secret_value(SecretId=name)
    with pytest.raises(ClientError):
        sm.get_secret_value(SecretId=f"{name}-absent")
    scraped = scrape(metrics_server.endpoint_url)
    assert name.split("/")[1] not in scraped.text
    assert value not in scraped.text
    assert scraped.label_names() <= ALLOWED_LABELS


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, "--metrics needs a bearer token"),
        ({"SECRETSD_METRICS_TOKEN": "short"}, "shorter than 16 characters"),
    ],
)
def test_metrics_without_a_usable_token_refuse_to_start(tmp_path, environment, message) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETSD_METRICS")}
    done = subprocess.run(
        [sys.executable, "-m", "secretsd.cli", "server", "--port", "0", "--metrics"]
        + ["--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env={**env, **environment},
        timeout=60,
    )
    assert done.returncode == 1
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_a_token_from_the_environment_works(tmp_path) -> None:
    env = dict(os.environ, SECRETSD_METRICS_TOKEN=METRICS_TOKEN)
    env.pop("SECRETSD_METRICS_TOKEN_FILE", None)
    server = start_server(tmp_path / "data", "--metrics", env=env)
    try:
        assert scrape(server.endpoint_url).value("secretsd_store_up") == 1
    finally:
        server.stop()


def test_audit_write_failures_are_counted_and_the_outage_shows(tmp_path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.symlink("/dev/full", data_dir / "audit.log")
    env = dict(os.environ, SECRETSD_METRICS_TOKEN=METRICS_TOKEN)
    env.pop("SECRETSD_METRICS_TOKEN_FILE", None)
    server = start_server(data_dir, "--metrics", env=env)
    try:
        sm = server.client()
        assert scrape(server.endpoint_url).value("secretsd_audit_failing") == 0
        with pytest.raises(ClientError):
            sm.create_secret(Name=f"audit/{uuid.uuid4().hex[:8]}", SecretString="v")
        scraped = scrape(server.endpoint_url)
        assert scraped.value("secretsd_audit_failing") == 1
        failures = scraped.value("secretsd_audit_write_failures_total")
        assert failures is not None and failures >= 1
        (data_dir / "audit.log").unlink()
        # The first call after may still be refused (its refusal recorded ends the outage).
        with contextlib.suppress(ClientError):
            sm.list_secrets()
        sm.list_secrets()
        scraped = scrape(server.endpoint_url)
        assert scraped.value("secretsd_audit_failing") == 0
        assert scraped.value("secretsd_audit_write_failures_total") == failures
    finally:
        server.stop()
