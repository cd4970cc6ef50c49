"""The resource policy as authorization reads it: parsed, shared, and never failing open."""

from __future__ import annotations

import json

from secretsd.model.identity import Caller
from secretsd.model.policy import RequestContext, evaluate
from secretsd.service import SecretsService

ACCOUNT = "123456789012"
APP = Caller(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/app", "AIDAAPP", "AKIAAPP", "app")
GRANT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": APP.arn},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
)


def _allowed(service: SecretsService, name: str) -> bool:
    secret, _ = service.read(name)
    context = RequestContext("secretsmanager:GetSecretValue", secret.arn, APP)
    return evaluate(context, [], service.resource_policy(secret)).allowed


def test_no_policy_is_none(service: SecretsService) -> None:
    service.call("CreateSecret", {"Name": "plain", "SecretString": "v"})
    secret, _ = service.read("plain")
    assert service.resource_policy(secret) is None


def test_the_policy_put_is_the_policy_evaluated(service: SecretsService) -> None:
    service.call("CreateSecret", {"Name": "shared", "SecretString": "v"})
    assert not _allowed(service, "shared")
    service.call("PutResourcePolicy", {"SecretId": "shared", "ResourcePolicy": GRANT})
    assert _allowed(service, "shared")
    first, _ = service.read("shared")
    service.call("TagResource", {"SecretId": "shared", "Tags": [{"Key": "a", "Value": "b"}]})
    second, _ = service.read("shared")
    # Parsed once per text, whatever else changes on the secret.
    assert service.resource_policy(first) is service.resource_policy(second)
    service.call("DeleteResourcePolicy", {"SecretId": "shared"})
    assert not _allowed(service, "shared")


def test_a_stored_policy_that_no_longer_parses_denies_everything(
    service: SecretsService,
) -> None:
    service.call("CreateSecret", {"Name": "odd", "SecretString": "v"})
    secret, _ = service.load("odd")  # our own copy, to change
    secret.resource_policy = '{"Version": "2099-01-01", "Statement": []}'
    decision = evaluate(
        RequestContext("secretsmanager:GetSecretValue", secret.arn, APP),
        [],
        service.resource_policy(secret),
    )
    assert decision.denied_by == "resource"
