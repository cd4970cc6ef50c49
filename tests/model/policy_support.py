"""Callers and requests for the policy tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from secretsd.model.identity import Caller, root_caller
from secretsd.model.policy import Decision, Policy, RequestContext, evaluate, parse_policy

ACCOUNT = "111122223333"
REGION = "us-east-1"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db/app-AbCdEf"
NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def user(name: str = "app", **tags: str) -> Caller:
    return Caller(
        account_id=ACCOUNT,
        arn=f"arn:aws:iam::{ACCOUNT}:user/{name}",
        user_id=f"AIDA{name.upper():0<17}"[:21],
        access_key_id="AKIAEXAMPLE",
        user_name=name,
        tags=tags,
    )


ROOT = root_caller(ACCOUNT, "AKIAROOT")


def policy(*statements: dict[str, Any], version: str = "2012-10-17", **kwargs: Any) -> Policy:
    return parse_policy(json.dumps({"Version": version, "Statement": list(statements)}), **kwargs)


def allow(action: Any = "secretsmanager:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "secretsmanager:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def request(
    action: str = "secretsmanager:GetSecretValue",
    resource: str = SECRET_ARN,
    caller: Caller | None = None,
    keys: dict[str, object] | None = None,
) -> RequestContext:
    return RequestContext(action, resource, caller or user(), keys or {})


def decide(
    context: RequestContext, *identity: Policy, resource_policy: Policy | None = None
) -> Decision:
    return evaluate(context, list(identity), resource_policy)
