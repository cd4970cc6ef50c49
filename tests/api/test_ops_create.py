"""CreateSecret against the live server, as boto3 sees the real service."""

from __future__ import annotations

import time
import uuid

import pytest

from secretsd.model import errors
from tests.api.test_ops_helpers import (
    arn_pattern,
    expect_error,
    stages_by_version,
    token,
    unique_name,
)

ALL_BYTES = bytes(range(256))


@pytest.fixture
def loose(shared_server):
    """A client that sends what botocore would refuse, so the server's own checks answer."""
    return shared_server.client(parameter_validation=False)


def test_create_string_secret(sm):
    name = unique_name("create")
    version = token()
    before = time.time()
    created = sm.create_secret(Name=name, SecretString="s3cr3t", ClientRequestToken=version)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert created["Name"] == name
    assert arn_pattern(name).match(created["ARN"]), created["ARN"]
    assert created["VersionId"] == version

    value = sm.get_secret_value(SecretId=name)
    assert value["SecretString"] == "s3cr3t"
    assert "SecretBinary" not in value
    assert value["VersionId"] == version
    assert value["VersionStages"] == ["AWSCURRENT"]
    assert value["ARN"] == created["ARN"]

    described = sm.describe_secret(SecretId=name)
    assert before - 5 <= described["CreatedDate"].timestamp() <= time.time() + 5
    assert described["VersionIdsToStages"] == {version: ["AWSCURRENT"]}


def test_create_binary_secret_round_trips_every_byte(sm):
    name = unique_name("create-bin")
    created = sm.create_secret(Name=name, SecretBinary=ALL_BYTES)
    value = sm.get_secret_value(SecretId=name)
    assert value["SecretBinary"] == ALL_BYTES
    assert "SecretString" not in value
    assert value["VersionId"] == created["VersionId"]


def test_create_with_description_and_tags(sm):
    name = unique_name("create-tags")
    tags = [{"Key": "team", "Value": "payments"}, {"Key": "Env", "Value": ""}]
    sm.create_secret(Name=name, SecretString="x", Description="db creds", Tags=tags)
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "db creds"
    assert sorted(described["Tags"], key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])


def test_an_empty_description_is_omitted(sm):
    # AWS leaves Description out of DescribeSecret and ListSecrets when it is "".
    name = unique_name("create-nodesc")
    sm.create_secret(Name=name, SecretString="x", Description="")
    assert "Description" not in sm.describe_secret(SecretId=name)
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert [entry.get("Description") for entry in listed if entry["Name"] == name] == [None]


def test_create_without_value_has_no_version(sm):
    name = unique_name("create-empty")
    created = sm.create_secret(Name=name, Description="filled in later")
    assert "VersionId" not in created
    described = sm.describe_secret(SecretId=name)
    assert not described.get("VersionIdsToStages")
    with expect_error("ResourceNotFoundException", errors.value_not_found_for_stage("AWSCURRENT")):
        sm.get_secret_value(SecretId=name)


def test_sdk_fills_in_a_uuid_token(sm):
    created = sm.create_secret(Name=unique_name("create-uuid"), SecretString="v")
    assert str(uuid.UUID(created["VersionId"])) == created["VersionId"]


def test_retry_with_same_token_and_value_is_ignored(sm):
    name = unique_name("create-retry")
    version = token()
    first = sm.create_secret(Name=name, SecretString="same", ClientRequestToken=version)
    again = sm.create_secret(Name=name, SecretString="same", ClientRequestToken=version)
    assert again["ARN"] == first["ARN"]
    assert again["VersionId"] == version
    assert stages_by_version(sm, name) == {version: {"AWSCURRENT"}}


def test_retry_with_same_token_and_other_value_fails(sm):
    name = unique_name("create-clash")
    version = token()
    sm.create_secret(Name=name, SecretString="first", ClientRequestToken=version)
    with expect_error("ResourceExistsException"):
        sm.create_secret(Name=name, SecretString="second", ClientRequestToken=version)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "first"


def test_existing_name_fails_with_the_recorded_text(sm):
    name = unique_name("create-dup")
    sm.create_secret(Name=name, SecretString="one")
    with expect_error("ResourceExistsException", errors.secret_exists(name)):
        sm.create_secret(Name=name, SecretString="two")
    with expect_error("ResourceExistsException", errors.secret_exists(name)):
        sm.create_secret(Name=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "one"


def test_name_may_use_every_allowed_punctuation(sm):
    name = f"a/b_c+d=e.f@g-h/{uuid.uuid4().hex[:8]}"
    created = sm.create_secret(Name=name, SecretString="v")
    assert arn_pattern(name).match(created["ARN"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"


def test_name_of_512_characters_is_accepted(sm):
    name = ("n" + uuid.uuid4().hex).ljust(512, "x")
    sm.create_secret(Name=name, SecretString="v")
    assert sm.describe_secret(SecretId=name)["Name"] == name


@pytest.mark.parametrize("bad", ["has space", "bang!", "star*", "quote'", "caf\u00e9", "tab\t"])
def test_name_with_a_forbidden_character_is_refused(sm, bad):
    name = f"{bad}-{uuid.uuid4().hex[:8]}"
    with expect_error("ValidationException", errors.INVALID_NAME):
        sm.create_secret(Name=name, SecretString="v")


def test_name_longer_than_512_is_refused(loose):
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.create_secret(Name="n" * 513, SecretString="v")


def test_empty_name_is_refused(loose):
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.create_secret(Name="", SecretString="v")


def test_string_and_binary_together_are_refused(sm):
    name = unique_name("create-both")
    with expect_error("InvalidParameterException"):
        sm.create_secret(Name=name, SecretString="s", SecretBinary=b"b")
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.describe_secret(SecretId=name)


@pytest.mark.parametrize("length", [31, 65])
def test_token_outside_32_to_64_characters_is_refused(loose, length):
    name = unique_name("create-token")
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.create_secret(Name=name, SecretString="v", ClientRequestToken="t" * length)


def test_token_of_32_and_64_characters_becomes_the_version_id(sm):
    for length in (32, 64):
        name = unique_name("create-token-ok")
        version = uuid.uuid4().hex[:1] * length
        created = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=version)
        assert created["VersionId"] == version
        assert sm.get_secret_value(SecretId=name, VersionId=version)["SecretString"] == "v"


def test_description_longer_than_2048_is_refused(loose):
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.create_secret(Name=unique_name("create-desc"), Description="d" * 2049)


def test_value_larger_than_64_kib_is_refused(loose):
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.create_secret(Name=unique_name("create-big"), SecretString="v" * 65537)


def test_value_of_64_kib_is_accepted(sm):
    name = unique_name("create-64k")
    sm.create_secret(Name=name, SecretString="v" * 65536)
    assert len(sm.get_secret_value(SecretId=name)["SecretString"]) == 65536


def test_unicode_string_round_trips_exactly(sm):
    name = unique_name("create-unicode")
    value = 'nul\x00 tab\t quote" back\\ snow\u2603 emoji\U0001f511 rtl\u05d0 ctl\x1f'
    sm.create_secret(Name=name, SecretString=value)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == value


def test_binary_of_64_kib_is_accepted_and_one_byte_more_refused(sm, loose):
    name = unique_name("create-bin64k")
    blob = bytes(range(256)) * 256
    sm.create_secret(Name=name, SecretBinary=blob)
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == blob
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.create_secret(Name=unique_name("create-bin-big"), SecretBinary=blob + b"x")
