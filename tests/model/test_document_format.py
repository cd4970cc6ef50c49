"""Document formats: newer minors round-trip their fields, newer majors are refused."""

from __future__ import annotations

import json

import pytest

from secretsd.model import versions
from secretsd.model.secret import (
    AWSCURRENT,
    AWSPREVIOUS,
    DOCUMENT_FORMAT,
    Secret,
    UnreadableRecord,
    UnsupportedFormat,
)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"


def _document(**changes) -> dict:
    secret = Secret(arn=ARN, name="db", created=1.0, last_changed=1.0)
    versions.add_version(secret, "v1", 1.0, None)
    data = json.loads(secret.to_document())
    data.update(changes)
    return data


def test_this_release_writes_format_1_3() -> None:
    assert DOCUMENT_FORMAT == (1, 3)
    assert _document()["format"] == "1.3"


def test_a_1_2_document_reads_with_every_version_under_the_secrets_key() -> None:
    # Format 1.3 added each version's kms_key_id; versions written before it lack it.
    data = _document(format="1.2", kms_key_id="alias/app")
    del data["versions"][0]["kms_key_id"]
    secret = Secret.from_document(json.dumps(data).encode())
    assert secret.versions["v1"].kms_key_id is None and secret.versions["v1"].extra == {}
    assert json.loads(secret.to_document())["versions"][0]["kms_key_id"] is None


def test_format_1_2_keeps_the_resource_policy() -> None:
    policy = '{"Version":"2012-10-17","Statement":[]}'
    data = _document(resource_policy=policy)
    assert Secret.from_document(json.dumps(data).encode()).resource_policy == policy
    # Written before 1.2: no policy.
    del data["resource_policy"]
    assert (
        Secret.from_document(json.dumps({**data, "format": "1.0"}).encode()).resource_policy is None
    )


def test_a_1_0_document_reads_as_never_tagged() -> None:
    # Format 1.1 added "tagged"; documents written before it lack the field.
    data = _document(format="1.0")
    del data["tagged"]
    secret = Secret.from_document(json.dumps(data).encode())
    assert secret.tagged is False and secret.extra == {}
    assert json.loads(secret.to_document())["tagged"] is False


def test_documents_of_the_previous_release_still_read() -> None:
    # The previous release wrote the bare integer 1 and nothing it didn't know.
    data = _document(format=1)
    secret = Secret.from_document(json.dumps(data).encode())
    assert secret.versions["v1"].stages == [AWSCURRENT]
    assert secret.extra == {}
    assert json.loads(secret.to_document())["format"] == "1.3"
    del data["format"]
    assert Secret.from_document(json.dumps(data).encode()).name == "db"


def test_a_newer_minor_reads_edits_and_writes_back_its_fields() -> None:
    data = _document(format="1.9", replica_status={"eu-west-1": "InSync"}, owner="team-a")
    data["versions"][0]["checksum"] = "sha256:abc"
    secret = Secret.from_document(json.dumps(data).encode())
    assert secret.name == "db" and secret.versions["v1"].stages == [AWSCURRENT]

    versions.add_version(secret, "v2", 2.0, None)
    secret.description = "edited by the older release"
    written = json.loads(secret.to_document())

    assert written["format"] == "1.9"
    assert written["replica_status"] == {"eu-west-1": "InSync"}
    assert written["owner"] == "team-a"
    by_id = {v["version_id"]: v for v in written["versions"]}
    assert by_id["v1"]["checksum"] == "sha256:abc"
    assert by_id["v1"]["stages"] == [AWSPREVIOUS]
    assert "checksum" not in by_id["v2"]
    assert by_id["v2"]["stages"] == [AWSCURRENT]
    assert written["description"] == "edited by the older release"
    assert "extra" not in written and "document_format" not in written
    # And read again, the document is the same secret.
    assert Secret.from_document(secret.to_document()) == secret


def test_carried_fields_are_copies() -> None:
    data = _document(format="1.4", nested={"list": [1, 2]})
    secret = Secret.from_document(json.dumps(data).encode())
    json.loads(secret.to_document())["nested"]["list"].append(3)
    assert secret.extra["nested"] == {"list": [1, 2]}


@pytest.mark.parametrize("newer", ["2.0", "2.7", 2, "10.0"])
def test_a_newer_major_is_refused_naming_the_secret(newer) -> None:
    data = _document(format=newer, fields_with_new_meaning=True)
    with pytest.raises(UnsupportedFormat) as caught:
        Secret.from_document(json.dumps(data).encode())
    assert caught.value.secret == "db" and caught.value.arn == ARN
    assert "db" in str(caught.value) and "later release" in str(caught.value)
    assert isinstance(caught.value, UnreadableRecord)


@pytest.mark.parametrize(
    "document, reason",
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"format": "one", "name": "x"}).encode(), "format is not recognised"),
        (json.dumps({"format": "0.9", "name": "x"}).encode(), "not recognised"),
        (json.dumps({"format": True, "name": "x"}).encode(), "not recognised"),
        (json.dumps({"format": "1.0", "name": "x"}).encode(), "missing: arn"),
        (json.dumps({"format": "1.0", "name": "x", "versions": [1]}).encode(), "malformed"),
    ],
)
def test_undecodable_documents_raise_a_typed_error(document: bytes, reason: str) -> None:
    with pytest.raises(UnreadableRecord, match=reason) as caught:
        Secret.from_document(document, name="stored-name")
    assert caught.value.secret == "stored-name"
    assert not isinstance(caught.value, UnsupportedFormat)


def test_the_error_names_the_document_s_secret_when_the_caller_doesn_t() -> None:
    data = _document(format="3.0")
    with pytest.raises(UnsupportedFormat, match="secret db "):
        Secret.from_document(json.dumps(data).encode())
    with pytest.raises(UnreadableRecord, match=r"secret \(unknown\)"):
        Secret.from_document(b"garbage")
