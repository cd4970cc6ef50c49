"""The console's calls are on the audit trail as the same calls through the API would be."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import uuid

from secretsd.api.console import ConsoleApp, ConsoleOperations, KeyCheck
from secretsd.model.identity import root_caller
from secretsd.service import SecretsService
from secretsd.service.audit_trail import AuditTrail
from secretsd.service.writer import GroupWriter
from secretsd.store import open_storage
from secretsd.store.audit import AuditLog, AuditWriteError
from tests.api.console.test_actions import act, flash
from tests.api.console.test_security import secret_path
from tests.support.console import ConsoleClient, in_process, over_http, root_key
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


def test_no_sign_in_while_the_trail_cannot_be_written(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.symlink("/dev/full", data_dir / "audit.log")
    server = start_server(data_dir)
    try:
        client = ConsoleClient(over_http(server.endpoint_url), server.endpoint_url)
        reply = client.sign_in(*root_key(data_dir))
        assert reply.status == 500
        assert "audit log could not be written" in html.unescape(reply.body)
        assert client.get("/console/secrets").status == 303
    finally:
        server.stop()


class BreakableLog(AuditLog):
    """An audit log in memory that refuses appends while ``broken``."""

    def __init__(self) -> None:
        self.records: list[str] = []
        self.broken = False

    def append(self, records) -> None:
        if self.broken:
            raise AuditWriteError("the disk is full")
        self.records.extend(records)

    def lines(self, after: int = 0):
        return iter(())


def test_console_calls_are_refused_while_the_trail_cannot_be_written(tmp_path):
    storage = open_storage(tmp_path / "data", env={}, mode="create")
    service = SecretsService(storage)
    writer = GroupWriter(service)
    audit_log = BreakableLog()
    trail = AuditTrail(audit_log, region="us-east-1", account="123456789012")
    key_id, secret = "AKIAEXAMPLE000000000", "s3cr3t-access-key"
    app = ConsoleApp(
        ConsoleOperations(service, writer, trail),
        KeyCheck({key_id: (secret, root_caller("123456789012", key_id))}.get),
    )
    try:
        service.call(
            "CreateSecret",
            {"Name": "app/db", "SecretString": "first", "ClientRequestToken": "t" * 32},
        )
        client = ConsoleClient(in_process(app))
        assert client.sign_in(key_id, secret).status == 303
        csrf = client.get(secret_path("app/db")).csrf
        audit_log.broken = True
        page = client.get(secret_path("app/db"))  # runs, but its record fails: refused
        assert page.status == 500
        assert "audit log could not be written" in html.unescape(page.body)
        # From now on refused before it runs: no version is added.
        form = {"csrf": csrf, "id": "app/db", "value": "second"}
        assert client.post("/console/secret/put-value", form).status == 303
        versions = service.call("ListSecretVersionIds", {"SecretId": "app/db"})["Versions"]
        assert len(versions) == 1
        audit_log.broken = False
        # As for the API: the first call after is refused, its refusal recorded, and that
        # record ends the outage.
        assert client.get(secret_path("app/db")).status == 500
        page = client.get(secret_path("app/db"))
        assert page.status == 200
        assert "audit log could not be written" in flash(page)
        refusals = [json.loads(r) for r in audit_log.records if "InternalServiceError" in r]
        assert [r["eventName"] for r in refusals] == ["DescribeSecret"]
    finally:
        writer.close()
        storage.close()


def test_sign_ins_are_recorded_as_console_logins(server):
    key_id, secret = root_key(server.data_dir)
    client = ConsoleClient(over_http(server.endpoint_url), server.endpoint_url)
    assert client.sign_in(secret, secret).status == 401  # the secret in the key id field
    assert client.sign_in(key_id, secret[::-1]).status == 401
    assert client.sign_in(key_id, secret).status == 303
    logins = [r for r in records(server.data_dir) if r["eventName"] == "ConsoleLogin"]
    assert [r["responseElements"]["ConsoleLogin"] for r in logins] == [
        "Failure",
        "Failure",
        "Success",
    ]
    assert logins[0]["userIdentity"] == {"type": "Unknown"}
    assert logins[1]["userIdentity"] == {"type": "Unknown", "accessKeyId": key_id}
    assert logins[1]["errorMessage"] == "Failed authentication"
    assert logins[2]["userIdentity"]["arn"] == "arn:aws:iam::123456789012:root"
    assert logins[2]["userIdentity"]["accessKeyId"] == key_id
    assert all(r["eventSource"] == "signin.amazonaws.com" for r in logins)
    assert all(r["sourceIPAddress"] == "127.0.0.1" for r in logins)
    text = (server.data_dir / "audit.log").read_text()
    assert secret not in text and secret[::-1] not in text
    verified = subprocess.run(
        [
            sys.executable,
            "-m",
            "secretsd.cli",
            "audit",
            "verify",
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    tail = subprocess.run(
        [sys.executable, "-m", "secretsd.cli", "audit", "tail", "--operation", "ConsoleLogin"]
        + ["--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert [line.split()[-2:] for line in tail] == [
        ["authentication", "127.0.0.1"],
        ["authentication", "127.0.0.1"],
        ["OK", "127.0.0.1"],
    ]
    assert all("Failed authentication" in line for line in tail[:2])
