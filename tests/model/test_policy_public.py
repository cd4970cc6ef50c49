"""Which resource policies give broad access (what BlockPublicPolicy refuses)."""

from __future__ import annotations

from typing import Any

import pytest

from secretsd.model.policy.public import grants_broad_access

from .policy_support import ACCOUNT, allow, deny, policy

USER = f"arn:aws:iam::{ACCOUNT}:user/app"


@pytest.mark.parametrize(
    ("statement", "broad"),
    [
        (allow(Principal="*"), True),
        (allow(Principal={"AWS": "*"}), True),
        (allow(NotPrincipal={"AWS": USER}), True),
        (allow(Principal={"AWS": USER}), False),
        (allow(Principal={"AWS": ACCOUNT}), False),
        (deny(Principal="*"), False),
        # Conditions that pin the caller make a wildcard narrow...
        (
            allow(Principal="*", Condition={"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}),
            False,
        ),
        (allow(Principal="*", Condition={"ArnLike": {"aws:PrincipalArn": f"{USER}*"}}), False),
        (allow(Principal="*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), False),
        # ... unless they hold for anyone: negated, IfExists, ForAllValues, bare wildcards.
        (allow(Principal="*", Condition={"StringNotEquals": {"aws:PrincipalAccount": "1"}}), True),
        (
            allow(
                Principal="*", Condition={"StringEqualsIfExists": {"aws:PrincipalAccount": ACCOUNT}}
            ),
            True,
        ),
        (allow(Principal="*", Condition={"StringLike": {"aws:PrincipalArn": "*"}}), True),
        (allow(Principal="*", Condition={"StringEquals": {"aws:ResourceTag/team": "web"}}), True),
    ],
)
def test_broad_access(statement: dict[str, Any], broad: bool) -> None:
    assert grants_broad_access(policy(statement, kind="resource")) is broad
