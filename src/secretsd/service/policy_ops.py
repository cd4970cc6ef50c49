"""Resource policies: Get, Put, Delete and ValidateResourcePolicy, and the parsed policy
that authorization evaluates.

Theory of operation. A secret's resource policy is kept in its document (format 1.2),
exactly as PutResourcePolicy was given it, so it is sealed and authenticated with the rest
of the record and GetResourcePolicy returns the caller's own text. It is checked when put:
IAM's grammar for resource policies (a Principal in every statement), and, when the caller
asks with BlockPublicPolicy, no statement that gives broad access. Authorization reads it
through ``resource_policy``, which parses each distinct text once and shares the result.

A secret has at most one policy, named ``default``, as on AWS.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from secretsd.model import errors
from secretsd.model.policy import Policy, PolicyError, parse_policy
from secretsd.model.policy.public import broad_statements
from secretsd.model.secret import Secret

from . import params
from .edits import Edit

log = logging.getLogger("secretsd.service")

Body = dict[str, Any]

MAX_POLICY_LENGTH = 20480
POLICY_NAME = re.compile(r"[0-9A-Za-z\-\_]+")
DEFAULT_POLICY = "default"
# AWS's words for a policy it can't read.
INVALID_SYNTAX = "This policy has invalid syntax."
BROAD_ACCESS = (
    "This resource policy gives broad access to the secret: a statement allows a wildcard "
    "principal, and BlockPublicPolicy is set."
)
# ValidateResourcePolicy's checks, as its ValidationErrors name them.
SYNTAX_CHECK = "SYNTAX_CHECK"
BROAD_ACCESS_CHECK = "BROAD_ACCESS_CHECK"
# What a stored policy that no longer parses stands for: nothing gets through it.
_DENY_EVERYTHING = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}],
    }
)


@functools.lru_cache(maxsize=1024)
def parsed_resource_policy(text: str) -> Policy:
    """The stored policy, parsed; one that no longer parses (a later release's grammar, a
    hand-edited store) denies everything, so a policy never fails open."""
    try:
        return parse_policy(text, kind="resource")
    except PolicyError as exc:
        log.error("stored resource policy refused; denying all", extra={"error": exc.message})
        return parse_policy(_DENY_EVERYTHING, kind="resource")


class ResourcePolicyOperations:
    """Mixed into ``SecretsService``; uses its ``read`` and ``_mutate``."""

    read: Callable[[str], tuple[Secret, int]]
    _mutate: Callable[..., Body]

    def resource_policy(self, secret: Secret) -> Policy | None:
        """The secret's resource policy, parsed, for authorization; None when it has none."""
        if secret.resource_policy is None:
            return None
        return parsed_resource_policy(secret.resource_policy)

    def get_resource_policy(self, body: Body) -> Body:
        secret_id = params.secret_id(body)
        name = _policy_name(body)
        secret, _ = self.read(secret_id)
        if secret.scheduled_for_deletion:
            raise errors.InvalidRequest(errors.MARKED_FOR_DELETION)
        if name != DEFAULT_POLICY:
            raise errors.ResourceNotFound(
                f"Secrets Manager can't find a resource policy named {name} for the secret."
            )
        response: Body = {"ARN": secret.arn, "Name": secret.name}
        if secret.resource_policy is not None:
            response["ResourcePolicy"] = secret.resource_policy
            response["PolicyName"] = DEFAULT_POLICY
        return response

    def put_resource_policy(self, body: Body) -> Body:
        secret_id = params.secret_id(body)
        text = params.required_string(body, "ResourcePolicy", max_len=MAX_POLICY_LENGTH)
        _require_default(_policy_name(body))
        block_public = params.boolean(body, "BlockPublicPolicy", False)
        try:
            policy = parse_policy(text, kind="resource")
        except PolicyError:
            raise errors.MalformedPolicyDocument(INVALID_SYNTAX) from None
        if block_public and broad_statements(policy):
            raise errors.PublicPolicy(BROAD_ACCESS)

        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            changed = secret.resource_policy != text
            secret.resource_policy = text
            return _named(secret), Edit(changed)

        return self._mutate(secret_id, edit)

    def delete_resource_policy(self, body: Body) -> Body:
        secret_id = params.secret_id(body)
        _require_default(_policy_name(body))

        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            changed = secret.resource_policy is not None
            secret.resource_policy = None
            return _named(secret), Edit(changed)

        return self._mutate(secret_id, edit)

    def validate_resource_policy(self, body: Body) -> Body:
        text = params.required_string(body, "ResourcePolicy", max_len=MAX_POLICY_LENGTH)
        secret_id = params.string(body, "SecretId", min_len=1, max_len=2048)
        if secret_id is not None:
            self.read(secret_id)  # ResourceNotFound for a secret that isn't there
        try:
            json.loads(text)
        except ValueError:
            raise errors.MalformedPolicyDocument(INVALID_SYNTAX) from None
        problems: list[Body] = []
        try:
            policy = parse_policy(text, kind="resource")
        except PolicyError as exc:
            problems.append({"CheckName": SYNTAX_CHECK, "ErrorMessage": exc.message})
        else:
            for statement in broad_statements(policy):
                named = f" {statement.sid}" if statement.sid else ""
                problems.append(
                    {
                        "CheckName": BROAD_ACCESS_CHECK,
                        "ErrorMessage": (
                            f"Statement{named} allows a wildcard principal without a condition "
                            "that limits who the caller can be, so it gives broad access to "
                            "the secret."
                        ),
                    }
                )
        return {"PolicyValidationPassed": not problems, "ValidationErrors": problems}


def _policy_name(body: Body) -> str:
    name = params.matching(body, "PolicyName", POLICY_NAME, max_len=64)
    return DEFAULT_POLICY if name is None else name


def _require_default(name: str) -> None:
    if name != DEFAULT_POLICY:
        raise errors.InvalidParameter(
            f"A secret has one resource policy, named {DEFAULT_POLICY}: {name} can't be used."
        )


def _named(secret: Secret) -> Body:
    return {"ARN": secret.arn, "Name": secret.name, "PolicyName": DEFAULT_POLICY}
