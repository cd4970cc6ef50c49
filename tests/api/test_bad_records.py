"""One bad record stays one bad record, on the wire: a secret whose stored record was edited
in the database, or written in a format this release does not know, fails the requests for
that secret alone (DecryptionFailure, named, logged once); listings and batches go on with
the rest; a forced delete removes it."""

from __future__ import annotations

import json
import sqlite3

import pytest
from botocore.exceptions import ClientError

from secretsd.store import Change, open_storage
from tests.support.server import ServerProcess


def _edit_document(server: ServerProcess, name: str, edit) -> None:
    # What someone holding the database file can do, while the server runs.
    with sqlite3.connect(server.data_dir / "secretsd.db") as conn:
        (record,) = conn.execute("SELECT document FROM secrets WHERE name = ?", (name,)).fetchone()
        conn.execute("UPDATE secrets SET document = ? WHERE name = ?", (edit(bytes(record)), name))


def _document_start(record: bytes) -> int:
    # The authentication header (store.documents): marker, format, key id length, key id,
    # then a 32-byte tag; the JSON document follows.
    return 3 + record[2] + 32


def _flip_current(record: bytes) -> bytes:
    # Keep the authentication header, change the JSON after it: a rolled-back label.
    start = _document_start(record)
    document = json.loads(record[start:])
    document["versions"] = document["versions"][::-1]
    return record[:start] + json.dumps(document).encode()


def _write_newer_major(server: ServerProcess, name: str) -> None:
    # A document as a later release would write it: authentic (written through the store
    # with the master key, as another node would), in a format unknown to this one.
    store = open_storage(server.data_dir)
    try:
        stored = store.load_by_name(name)
        document = json.loads(stored.document)
        document["format"] = "9.0"
        store.commit(
            Change(stored.arn, stored.name, stored.revision, json.dumps(document).encode())
        )
    finally:
        store.close()


def _tamper(server: ServerProcess, name: str) -> None:
    _edit_document(server, name, _flip_current)


@pytest.fixture
def three(server: ServerProcess):
    sm = server.client()
    for name in ("bad/one", "good/two", "good/three"):
        sm.create_secret(Name=name, SecretString=json.dumps({"password": f"pw-{name}"}))
    return sm


@pytest.mark.parametrize("spoil", [_tamper, _write_newer_major], ids=["tampered", "newer-major"])
def test_a_bad_record_fails_its_own_requests_only(server, three, spoil):
    sm = three
    spoil(server, "bad/one")

    with pytest.raises(ClientError) as caught:
        sm.get_secret_value(SecretId="bad/one")
    error = caught.value.response["Error"]
    assert error["Code"] == "DecryptionFailure"
    assert "bad/one" in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    with pytest.raises(ClientError, match="DecryptionFailure"):
        sm.describe_secret(SecretId="bad/one")

    listed = {s["Name"] for s in sm.list_secrets()["SecretList"]}
    assert {"good/two", "good/three"} <= listed and "bad/one" not in listed
    batch = sm.batch_get_secret_value(SecretIdList=["bad/one", "good/two"])
    assert [v["Name"] for v in batch["SecretValues"]] == ["good/two"]
    assert [e["ErrorCode"] for e in batch["Errors"]] == ["DecryptionFailure"]
    assert sm.get_secret_value(SecretId="good/three")["SecretString"]

    # Logged with the secret's name, once however often it is asked for.
    sm.list_secrets()
    refusals = [line for line in server.log_text().splitlines() if "bad/one" in line]
    assert refusals, "the refusal is logged"
    assert len([line for line in refusals if "refused" in line]) == 1

    # The way out: a forced delete removes the record, and the name is free again.
    sm.delete_secret(SecretId="bad/one", ForceDeleteWithoutRecovery=True)
    sm.create_secret(Name="bad/one", SecretString="fresh")
    assert sm.get_secret_value(SecretId="bad/one")["SecretString"] == "fresh"
