"""The console's calls are on the audit trail as the same calls through the API would be."""

from __future__ import annotations

import html
import json
import os
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.api.console.test_actions import act, flash
from tests.api.console.test_security import secret_path
from tests.support.console import ConsoleClient, over_http, root_key
from tests.support.server import start_server

MARKER = f"console-audit-{uuid.uuid4().hex}"


def records(data_dir) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "audit.log").read_text().splitlines()]


def signed_in(server) -> ConsoleClient:
    client = ConsoleClient(over_http(server.endpoint_url), server.endpoint_url)
    assert client.sign_in(*root_key(server.data_dir)).status == 303
    return client


def test_console_calls_are_recorded_as_the_signed_in_caller(server):
    name = f"audit/{uuid.uuid4().hex[:8]}"
    server.client().create_secret(Name=name, SecretString=f'{{"password": "{MARKER}-1"}}')
    client = signed_in(server)
    csrf = client.get(secret_path(name)).csrf
    revealed = client.post("/console/secret/reveal", {"id": name, "csrf": csrf})
    assert f"{MARKER}-1" in revealed.body
    act(client, "put-value", name, value=f"{MARKER}-2")
    act(client, "delete", name, days="7")
    act(client, "restore", name)

    console = [r for r in records(server.data_dir) if r["userAgent"].startswith("secretsd-console")]
    names = [r["eventName"] for r in console]
    for operation in ("GetSecretValue", "PutSecretValue", "DeleteSecret", "RestoreSecret"):
        assert names.count(operation) == 1, names
    assert {"DescribeSecret", "DescribeRotation", "ListSecretVersionIds"} <= set(names)
    key_id, _ = root_key(server.data_dir)
    for record in console:
        assert record["userIdentity"]["accessKeyId"] == key_id
        assert record["userIdentity"]["type"] == "Root"
        assert record["sourceIPAddress"] == "127.0.0.1"
        assert record.get("errorCode") is None
    put = console[names.index("PutSecretValue")]
    assert put["readOnly"] is False
    assert put["resources"][0]["ARN"].split(":")[-1].startswith(name)
    assert MARKER not in (server.data_dir / "audit.log").read_text()


def test_console_calls_are_refused_while_the_trail_cannot_be_written(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.symlink("/dev/full", data_dir / "audit.log")
    server = start_server(data_dir)
    try:
        name = f"audit/{uuid.uuid4().hex[:8]}"
        sm = server.session().client(
            "secretsmanager",
            endpoint_url=server.endpoint_url,
            config=Config(retries={"total_max_attempts": 1}),
        )
        # The create runs, its record fails: from now on the trail is failing.
        with pytest.raises(ClientError):
            sm.create_secret(Name=name, SecretString="first")
        client = signed_in(server)
        page = client.get(secret_path(name))
        assert page.status == 500
        assert "audit log could not be written" in html.unescape(page.body)
        # Refused before it runs: no version is added.
        reply = client.post(
            "/console/secret/put-value", {"csrf": page.csrf, "id": name, "value": "second"}
        )
        assert reply.status == 303
        (data_dir / "audit.log").unlink()
        with pytest.raises(ClientError):
            sm.list_secrets()  # its refusal is recorded: the outage ends
        assert len(sm.list_secret_version_ids(SecretId=name)["Versions"]) == 1
        page = client.get(secret_path(name))
        assert page.status == 200
        assert "audit log could not be written" in flash(page)
    finally:
        server.stop()
