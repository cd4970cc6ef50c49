"""Remembered decisions are the evaluator's decisions: whatever the sequence of requests, a
decision reused from memory equals what evaluating the request afresh gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.model.identity import Caller
from secretsd.model.policy import RequestContext, evaluate, parse_policy
from secretsd.model.secret import Secret
from secretsd.service.authorization import Authorization, Origin

PREFIX = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
POLICIES = tuple(
    parse_policy(json.dumps({"Version": "2012-10-17", "Statement": [s]}), kind="identity")
    for s in (
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": f"{PREFIX}app/*",
            "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
        },
        {
            "Effect": "Deny",
            "Action": "secretsmanager:*",
            "Resource": "*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
        {
            "Effect": "Allow",
            "Action": "secretsmanager:DescribeSecret",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
        },
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"StringEquals": {"secretsmanager:VersionStage": "AWSPREVIOUS"}},
        },
    )
)
CALLERS = [
    Caller(
        "123456789012",
        f"arn:aws:iam::123456789012:user/{name}",
        f"AIDA{name.upper()}",
        f"AKIA{name.upper()}",
        name,
        {"team": team},
        policies=POLICIES,
    )
    for name, team in (("ann", "a"), ("bob", "b"))
]

requests = st.tuples(
    st.sampled_from(CALLERS),
    st.sampled_from(["GetSecretValue", "DescribeSecret"]),
    st.sampled_from(["app/one", "app/two", "other/x"]),
    st.sampled_from(["a", "b", None]),  # the secret's team tag, None: no such secret
    st.sampled_from(["10.1.2.3", "192.168.0.1", None]),
    st.sampled_from([1.5e9, 1.9e9, 1.95e9]),  # 2017, 2030, 2031
    st.sampled_from([None, "AWSCURRENT", "AWSPREVIOUS"]),
)


def make_secret(name: str, team: str) -> Secret:
    return Secret(
        arn=f"{PREFIX}{name}-AbCdEf",
        name=name,
        created=0.0,
        last_changed=0.0,
        tags=[{"Key": "team", "Value": team}],
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(requests, min_size=1, max_size=40))
def test_remembered_decisions_equal_fresh_evaluations(sequence) -> None:
    now = [0.0]
    secrets: dict[str, Secret] = {}
    authorization = Authorization(secrets.get, PREFIX, lambda: now[0])
    for caller, operation, name, team, ip, at, stage in sequence:
        now[0] = at
        secrets.clear()
        if team is not None:
            secrets[name] = make_secret(name, team)
        body = {"SecretId": name, **({"VersionStage": stage} if stage else {})}
        origin = Origin(ip, False)
        try:
            authorization.check(operation, body, caller, origin)
            remembered = True
        except Exception as exc:
            assert type(exc).__name__ == "NotAuthorized"
            remembered = False
        secret = secrets.get(name)
        keys: dict[str, object] = {
            "aws:CurrentTime": datetime.fromtimestamp(at, UTC),
            "aws:SecureTransport": False,
            "secretsmanager:SecretId": name,
        }
        if ip is not None:
            keys["aws:SourceIp"] = ip
        if stage is not None and operation == "GetSecretValue":
            keys["secretsmanager:VersionStage"] = stage
        if secret is not None:
            keys["secretsmanager:Name"] = name
            keys["aws:ResourceTag/team"] = team
        resource = secret.arn if secret is not None else f"{PREFIX}{name}"
        fresh = evaluate(
            RequestContext(f"secretsmanager:{operation}", resource, caller, keys), POLICIES, None
        )
        assert remembered == fresh.allowed
