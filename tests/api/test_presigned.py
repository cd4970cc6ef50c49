"""A presigned URL from botocore reaches an operation: members in the query, SigV4 in it too."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest


def post(url: str, target: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=b"",
        method="POST",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_presigned_get_secret_value(shared_server, sm):
    name = f"presigned/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="by-url")
    url = sm.generate_presigned_url("get_secret_value", Params={"SecretId": name}, ExpiresIn=60)
    status, body = post(url, "secretsmanager.GetSecretValue")
    assert status == 200 and body["SecretString"] == "by-url"


@pytest.mark.parametrize("change", ["signature", "member"])
def test_a_presigned_url_changed_after_signing_is_refused(shared_server, sm, change):
    name = f"presigned/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="by-url")
    url = sm.generate_presigned_url("get_secret_value", Params={"SecretId": name}, ExpiresIn=60)
    if change == "signature":
        url = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    else:
        url = url.replace("SecretId=presigned", "SecretId=other")
    status, body = post(url, "secretsmanager.GetSecretValue")
    assert status == 403 and body["__type"] in (
        "InvalidSignatureException",
        "IncompleteSignatureException",
    )


def test_a_url_presigned_for_another_region_is_refused(shared_server, sm):
    name = f"presigned/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="by-url")
    elsewhere = shared_server.session().client(
        "secretsmanager", region_name="eu-west-1", endpoint_url=shared_server.endpoint_url
    )
    url = elsewhere.generate_presigned_url(
        "get_secret_value", Params={"SecretId": name}, ExpiresIn=60
    )
    status, body = post(url, "secretsmanager.GetSecretValue")
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert body["Message"] == "Credential should be scoped to a valid region, not 'eu-west-1'. "
