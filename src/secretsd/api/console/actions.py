"""The console's forms as the API requests they stand for.

Each action turns a submitted form into an operation and its request members, exactly as
an SDK would send them, and says in words what the answer means. A form the service
would refuse is refused here only when it cannot be put into a request at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from secretsd.model import errors

from .views import when

Body = dict[str, Any]
Describe = Callable[[Body], str]
Action = Callable[[Mapping[str, str]], tuple[str, Body, Describe]]


def _secret_id(form: Mapping[str, str]) -> Body:
    return {"SecretId": form.get("id", "")}


def rotate(form: Mapping[str, str]) -> tuple[str, Body, Describe]:
    body = {**_secret_id(form), "ClientRequestToken": str(uuid.uuid4())}
    function = form.get("function", "").strip()
    if function:
        body["RotationLambdaARN"] = function
    rules = form.get("schedule", "").strip()
    if rules.isdigit():
        body["RotationRules"] = {"AutomaticallyAfterDays": int(rules)}
    elif rules:
        body["RotationRules"] = {"ScheduleExpression": rules}
    return "RotateSecret", body, lambda r: f"Rotation started: version {r['VersionId']}."


def cancel_rotation(form: Mapping[str, str]) -> tuple[str, Body, Describe]:
    def said(result: Body) -> str:
        if "VersionId" in result:
            return f"Rotation cancelled; the pending version {result['VersionId']} lost AWSPENDING."
        return "Rotation cancelled."

    return "CancelRotateSecret", _secret_id(form), said


def put_value(form: Mapping[str, str]) -> tuple[str, Body, Describe]:
    body = {
        **_secret_id(form),
        "ClientRequestToken": str(uuid.uuid4()),
        "SecretString": form.get("value", ""),
    }
    return (
        "PutSecretValue",
        body,
        lambda r: f"New value stored: version {r['VersionId']} ({', '.join(r['VersionStages'])}).",
    )


def delete(form: Mapping[str, str]) -> tuple[str, Body, Describe]:
    days = form.get("days", "").strip()
    if not days.isdigit():
        raise errors.InvalidParameter("The recovery window is a number of days, 7 to 30.")
    body = {**_secret_id(form), "RecoveryWindowInDays": int(days)}
    return (
        "DeleteSecret",
        body,
        lambda r: f"Scheduled for deletion on {when(r['DeletionDate'])}; restore it until then.",
    )


def restore(form: Mapping[str, str]) -> tuple[str, Body, Describe]:
    return "RestoreSecret", _secret_id(form), lambda r: "Restored: the deletion is cancelled."


ACTIONS: dict[str, Action] = {
    "/secret/rotate": rotate,
    "/secret/cancel-rotation": cancel_rotation,
    "/secret/put-value": put_value,
    "/secret/delete": delete,
    "/secret/restore": restore,
}


def list_request(q: str, tag: str, deleted: bool, page: str | None, size: int) -> Body:
    """ListSecrets for the search form: names starting with ``q``, a tag key (``key``) or a
    key and a value starting with the ones given (``key=value``)."""
    filters = []
    if q:
        filters.append({"Key": "name", "Values": [q]})
    if tag:
        key, _, value = tag.partition("=")
        if key.strip():
            filters.append({"Key": "tag-key", "Values": [key.strip()]})
        if value.strip():
            filters.append({"Key": "tag-value", "Values": [value.strip()]})
    body: Body = {"MaxResults": size, "SortBy": "name", "SortOrder": "asc"}
    if filters:
        body["Filters"] = filters
    if deleted:
        body["IncludePlannedDeletion"] = True
    if page:
        body["NextToken"] = page
    return body
