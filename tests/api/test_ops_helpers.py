"""Helpers shared by the live-server API tests (no tests of its own).

Every test on the shared server names its secrets with ``unique_name`` so that tests never
see each other's secrets, whatever order they run in.
"""

from __future__ import annotations

import contextlib
import re
import uuid

import pytest
from botocore.exceptions import ClientError

ARN_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


def token() -> str:
    return str(uuid.uuid4())


def arn_pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        r"^arn:aws:secretsmanager:[a-z]{2}(-[a-z]+)+-\d:\d{12}:secret:"
        + re.escape(name)
        + r"-[A-Za-z0-9]{6}$"
    )


def partial_arn(arn: str) -> str:
    """The ARN without its six-character suffix, as a caller may write it."""
    assert ARN_SUFFIX.search(arn), arn
    return ARN_SUFFIX.sub("", arn)


@contextlib.contextmanager
def expect_error(code: str | set[str], message: str | None = None, status: int = 400):
    """The block must fail with ``code`` (one of a set), ``message`` if given, in AWS form.

    Every error of the API is an HTTP error status with a request id header, as botocore
    sees it from the real service.
    """
    with pytest.raises(ClientError) as caught:
        yield
    response = caught.value.response
    got, text = response["Error"]["Code"], response["Error"].get("Message", "")
    codes = {code} if isinstance(code, str) else code
    assert got in codes, f"expected {codes}, got {got}: {text}"
    if message is not None:
        assert text == message
    metadata = response["ResponseMetadata"]
    assert metadata["HTTPStatusCode"] == status, (
        f"{got} came with HTTP {metadata['HTTPStatusCode']}"
    )
    assert metadata.get("HTTPHeaders", {}).get("x-amzn-requestid"), "no x-amzn-RequestId"


def stages_by_version(client, secret_id: str) -> dict[str, set[str]]:
    """Every version (deprecated ones too) with its labels, read through the API."""
    versions: dict[str, set[str]] = {}
    kwargs = {"SecretId": secret_id, "IncludeDeprecated": True, "MaxResults": 100}
    while True:
        page = client.list_secret_version_ids(**kwargs)
        for entry in page["Versions"]:
            versions[entry["VersionId"]] = set(entry.get("VersionStages", []))
        if not page.get("NextToken"):
            return versions
        kwargs["NextToken"] = page["NextToken"]


def labelled(client, secret_id: str) -> dict[str, set[str]]:
    """DescribeSecret's view: labelled versions only."""
    described = client.describe_secret(SecretId=secret_id)
    return {k: set(v) for k, v in described.get("VersionIdsToStages", {}).items()}
