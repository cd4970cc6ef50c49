"""KmsKeyId: the four forms AWS takes, and the key each version is under after a change."""

from __future__ import annotations

import pytest

from secretsd.model import kms, versions
from secretsd.model.secret import Secret

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    "key",
    [
        KEY,
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        f"arn:aws:kms:us-east-1:123456789012:key/{KEY}",
        "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/app-secrets",
        "alias/aws/secretsmanager",
        "arn:aws:kms:eu-west-1:123456789012:alias/team_a/db",
    ],
)
def test_the_four_forms_of_a_key_are_taken(key: str) -> None:
    assert kms.valid_key_id(key)


@pytest.mark.parametrize(
    "key",
    [
        "app-secrets",  # an alias name needs its alias/ prefix
        "alias/",
        "alias/has space",
        "1234abcd-12ab-34cd-56ef",
        f"arn:aws:kms:us-east-1:123:key/{KEY}",
        f"arn:aws:s3:us-east-1:123456789012:key/{KEY}",
        f"{KEY}\n",
    ],
)
def test_anything_else_is_not(key: str) -> None:
    assert not kms.valid_key_id(key)


def test_a_key_change_reencrypts_only_the_aws_labelled_versions() -> None:
    secret = Secret(arn=ARN, name="db", created=1.0, last_changed=1.0)
    for n, stages in enumerate([None, None, None, ["blue"], ["AWSPENDING"]]):
        versions.add_version(secret, f"v{n}", float(n), stages)
    # v0 deprecated, v1 AWSPREVIOUS, v2 AWSCURRENT, v3 blue, v4 AWSPENDING.
    kms.change_key(secret, "alias/first")
    keys = {v: kms.version_keys(secret, v)[0] for v in secret.versions}
    assert keys == {
        "v0": kms.DEFAULT_KEY,
        "v1": "alias/first",
        "v2": "alias/first",
        "v3": kms.DEFAULT_KEY,
        "v4": "alias/first",
    }
    versions.add_version(secret, "v5", 5.0, None)  # v2 becomes AWSPREVIOUS, v1 deprecated
    kms.change_key(secret, None)
    keys = {v: kms.version_keys(secret, v)[0] for v in secret.versions}
    assert keys == {
        "v0": kms.DEFAULT_KEY,
        "v1": "alias/first",
        "v2": kms.DEFAULT_KEY,
        "v3": kms.DEFAULT_KEY,
        "v4": kms.DEFAULT_KEY,
        "v5": kms.DEFAULT_KEY,
    }
    assert secret.kms_key_id is None
