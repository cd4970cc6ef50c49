"""docs/access.md's policy examples parse, and decide requests as the page says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from secretsd.model.policy import Policy, RequestContext, evaluate, parse_policy
from tests.model.policy_support import ACCOUNT, ROOT, user

ROOT_DIR = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```json\n(.*?)^```", re.S | re.M)
TEXT = (ROOT_DIR / "docs/access.md").read_text()
BLOCKS = [json.loads(block) for block in BLOCK.findall(TEXT)]


def _example(heading: str) -> Policy:
    """The first JSON block after the paragraph that starts with ``heading``."""
    start = TEXT.index(f"**{heading}")
    document = BLOCK.search(TEXT, start)
    assert document is not None
    text = document.group(1)
    kind = "resource" if '"Principal"' in text else "identity"
    return parse_policy(text, kind=kind)


def _arn(name: str) -> str:
    return f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf"


def _allowed(policy: Policy, action: str, resource: str, caller=None, **keys: object) -> bool:
    context = RequestContext(action, resource, caller or user("billing", app="billing"), keys)
    resource_policy = (
        policy if any(s.principal or s.not_principal for s in policy.statements) else None
    )
    identity = [] if resource_policy else [policy]
    return evaluate(context, identity, resource_policy).allowed


@pytest.mark.parametrize("document", BLOCKS)
def test_every_example_parses(document: dict) -> None:
    statements = document["Statement"]
    kind = "resource" if any("Principal" in s for s in statements) else "identity"
    assert parse_policy(json.dumps(document), kind=kind).statements


def test_by_tag() -> None:
    policy = _example("An application reading only its own secrets, by tag.")
    read = "secretsmanager:GetSecretValue"
    tag = "secretsmanager:ResourceTag/app"
    assert _allowed(policy, read, _arn("billing/db"), **{tag: "billing"})
    assert not _allowed(policy, read, _arn("shop/db"), **{tag: "shop"})
    assert not _allowed(
        policy, read, _arn("billing/db"), caller=user("untagged"), **{tag: "billing"}
    )


def test_by_path() -> None:
    policy = _example("An application reading only its own secrets, by path.")
    read = "secretsmanager:GetSecretValue"
    assert _allowed(policy, read, _arn("billing/db"))
    assert not _allowed(policy, read, _arn("shop/db"))
    assert not _allowed(policy, "secretsmanager:PutSecretValue", _arn("billing/db"))


def test_rotation_role() -> None:
    policy = _example("A rotation role.")
    assert _allowed(policy, "secretsmanager:PutSecretValue", _arn("billing/db"))
    assert _allowed(policy, "secretsmanager:GetSecretValue", _arn("billing/master"))
    assert not _allowed(policy, "secretsmanager:PutSecretValue", _arn("billing/master"))
    assert _allowed(policy, "secretsmanager:GetRandomPassword", "*")
    assert not _allowed(policy, "secretsmanager:DeleteSecret", _arn("billing/db"))


def test_auditor() -> None:
    policy = _example("An auditor.")
    assert _allowed(policy, "secretsmanager:ListSecrets", "*")
    assert _allowed(policy, "secretsmanager:DescribeSecret", _arn("billing/db"))
    assert not _allowed(policy, "secretsmanager:GetSecretValue", _arn("billing/db"))


def test_network_deny() -> None:
    deny = _example("A deny for a source network.")
    everything = parse_policy(
        json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    )
    read = RequestContext(
        "secretsmanager:GetSecretValue",
        _arn("billing/db"),
        user("app"),
        {"aws:SourceIp": "192.0.2.9", "aws:SecureTransport": True},
    )
    assert evaluate(read, [everything, deny], None).allowed
    outside = RequestContext(
        read.action, read.resource, user("app"), {**read.keys, "aws:SourceIp": "198.51.100.1"}
    )
    assert evaluate(outside, [everything, deny], None).denied_by == "identity"
    clear = RequestContext(
        read.action, read.resource, user("app"), {**read.keys, "aws:SecureTransport": False}
    )
    assert evaluate(clear, [everything, deny], None).denied_by == "identity"


def test_sharing_one_secret() -> None:
    policy = _example("A resource policy sharing one secret with one user")
    read = "secretsmanager:GetSecretValue"
    assert _allowed(policy, read, _arn("billing/db"), caller=user("reporting"))
    assert not _allowed(policy, read, _arn("billing/db"), caller=user("other"))
    assert _allowed(policy, read, _arn("billing/db"), caller=ROOT)
