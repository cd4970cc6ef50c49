"""PutSecretValue, UpdateSecret, UpdateSecretVersionStage, TagResource and UntagResource."""

from __future__ import annotations

import uuid

import pytest

from secretsd.model import errors
from tests.api.test_ops_helpers import (
    expect_error,
    labelled,
    stages_by_version,
    token,
    unique_name,
)


@pytest.fixture
def secret(sm):
    """A secret with one version ("v1", AWSCURRENT): (name, arn, version id)."""
    name = unique_name("write")
    v1 = token()
    arn = sm.create_secret(Name=name, SecretString="v1", ClientRequestToken=v1)["ARN"]
    return name, arn, v1


# PutSecretValue


def test_put_moves_current_and_previous(sm, secret):
    name, arn, v1 = secret
    v2 = token()
    put = sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken=v2)
    assert (put["ARN"], put["Name"], put["VersionId"]) == (arn, name, v2)
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert stages_by_version(sm, name) == {v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"


def test_put_binary_by_arn(sm, secret):
    _, arn, _ = secret
    sm.put_secret_value(SecretId=arn, SecretBinary=b"\xff\x00binary")
    value = sm.get_secret_value(SecretId=arn)
    assert value["SecretBinary"] == b"\xff\x00binary"
    assert "SecretString" not in value


def test_put_with_stages_leaves_current_alone(sm, secret):
    name, _, v1 = secret
    pending = token()
    put = sm.put_secret_value(
        SecretId=name, SecretString="next", ClientRequestToken=pending, VersionStages=["AWSPENDING"]
    )
    assert put["VersionStages"] == ["AWSPENDING"]
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, pending: {"AWSPENDING"}}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")["SecretString"] == "next"


def test_put_same_token_same_value_changes_nothing(sm, secret):
    name, _, _ = secret
    v2, v3 = token(), token()
    sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken=v2)
    sm.put_secret_value(SecretId=name, SecretString="v3", ClientRequestToken=v3)
    before = stages_by_version(sm, name)
    again = sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken=v2)
    assert again["VersionId"] == v2
    assert stages_by_version(sm, name) == before
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v3"


def test_put_same_token_other_value_is_refused(sm, secret):
    name, _, v1 = secret
    with expect_error("ResourceExistsException"):
        sm.put_secret_value(SecretId=name, SecretString="changed", ClientRequestToken=v1)
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "v1"


def test_put_same_token_binary_instead_of_string_is_refused(sm, secret):
    name, _, v1 = secret
    with expect_error("ResourceExistsException"):
        sm.put_secret_value(SecretId=name, SecretBinary=b"v1", ClientRequestToken=v1)


def test_put_string_and_binary_together_is_refused(sm, secret):
    name, _, v1 = secret
    with expect_error("InvalidParameterException"):
        sm.put_secret_value(SecretId=name, SecretString="s", SecretBinary=b"b")
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}}


def test_put_without_a_value_is_refused(sm, secret):
    name, _, v1 = secret
    with expect_error({"InvalidParameterException", "InvalidRequestException"}):
        sm.put_secret_value(SecretId=name)
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}}


def test_put_to_unknown_secret(sm):
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.put_secret_value(SecretId=unique_name("nope"), SecretString="v")


def test_put_to_secret_scheduled_for_deletion(sm, secret):
    name, _, _ = secret
    sm.delete_secret(SecretId=name)
    with expect_error("InvalidRequestException", errors.MARKED_FOR_DELETION):
        sm.put_secret_value(SecretId=name, SecretString="v")


# UpdateSecret


def test_update_description_only_makes_no_version(sm, secret):
    name, arn, v1 = secret
    updated = sm.update_secret(SecretId=name, Description="new words")
    assert (updated["ARN"], updated["Name"]) == (arn, name)
    assert "VersionId" not in updated
    assert sm.describe_secret(SecretId=name)["Description"] == "new words"
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}}


def test_update_kms_key_id(sm, secret):
    name, _, _ = secret
    sm.update_secret(SecretId=name, KmsKeyId="alias/app-secrets")
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == "alias/app-secrets"
    # An empty key id returns the secret to the default key, which DescribeSecret omits.
    sm.update_secret(SecretId=name, KmsKeyId="")
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)


KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    "key",
    [
        KEY,
        f"arn:aws:kms:us-east-1:123456789012:key/{KEY}",
        "alias/app-secrets",
        "arn:aws:kms:us-east-1:123456789012:alias/app-secrets",
    ],
)
def test_kms_key_id_in_each_form_aws_takes_is_returned_as_given(sm, key):
    name = unique_name("kms")
    sm.create_secret(Name=name, SecretString="v", KmsKeyId=key)
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == key
    [listed] = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert listed["KmsKeyId"] == key
    other = unique_name("kms")
    sm.create_secret(Name=other, SecretString="v")
    sm.update_secret(SecretId=other, KmsKeyId=key)
    assert sm.describe_secret(SecretId=other)["KmsKeyId"] == key


@pytest.mark.parametrize("key", ["app-secrets", "alias/", f"{KEY}-x", "arn:aws:kms:::key/1"])
def test_a_kms_key_id_in_no_form_aws_takes_is_refused(sm, secret, key):
    name, _, _ = secret
    with expect_error("InvalidParameterException", errors.INVALID_KMS_KEY):
        sm.update_secret(SecretId=name, KmsKeyId=key)
    with expect_error("InvalidParameterException", errors.INVALID_KMS_KEY):
        sm.create_secret(Name=unique_name("kms"), SecretString="v", KmsKeyId=key)
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)


def test_a_new_key_covers_the_aws_labelled_versions_and_the_rest_keep_theirs(sm, secret):
    """AWS re-encrypts AWSCURRENT, AWSPENDING and AWSPREVIOUS under the new key; the other
    versions stay under the key they had, and KmsKeyIds says which."""
    name, _, v1 = secret
    v2 = sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=["blue"])
    sm.update_secret(SecretId=name, KmsKeyId="alias/app-secrets")
    v3 = sm.put_secret_value(SecretId=name, SecretString="v3")["VersionId"]

    def keys() -> dict[str, list[str]]:
        listed = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
        return {v["VersionId"]: v["KmsKeyIds"] for v in listed["Versions"]}

    assert keys() == {
        v1: ["alias/app-secrets"],
        v2["VersionId"]: ["DefaultEncryptionKey"],
        v3: ["alias/app-secrets"],
    }


def test_update_with_value_makes_a_current_version(sm, secret):
    name, _, v1 = secret
    v2 = token()
    updated = sm.update_secret(SecretId=name, SecretString="v2", ClientRequestToken=v2)
    assert updated["VersionId"] == v2
    assert stages_by_version(sm, name) == {v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"


def test_update_with_binary_value(sm, secret):
    name, _, _ = secret
    sm.update_secret(SecretId=name, SecretBinary=b"\x01\x02")
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x01\x02"


def test_update_reusing_a_token_with_another_value_is_refused(sm, secret):
    name, _, v1 = secret
    with expect_error("ResourceExistsException"):
        sm.update_secret(SecretId=name, SecretString="other", ClientRequestToken=v1)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"


def test_update_unknown_secret(sm):
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.update_secret(SecretId=unique_name("nope"), Description="x")


def test_update_secret_scheduled_for_deletion(sm, secret):
    name, _, _ = secret
    sm.delete_secret(SecretId=name)
    with expect_error("InvalidRequestException", errors.MARKED_FOR_DELETION):
        sm.update_secret(SecretId=name, SecretString="v")


# UpdateSecretVersionStage


@pytest.fixture
def labelled_pair(sm, secret):
    """v1 AWSCURRENT, v2 carrying "blue" only."""
    name, arn, v1 = secret
    v2 = token()
    sm.put_secret_value(
        SecretId=name, SecretString="v2", ClientRequestToken=v2, VersionStages=["blue"]
    )
    return name, arn, v1, v2


def test_stage_move_with_remove_from(sm, labelled_pair):
    name, arn, v1, v2 = labelled_pair
    moved = sm.update_secret_version_stage(
        SecretId=name, VersionStage="blue", MoveToVersionId=v1, RemoveFromVersionId=v2
    )
    assert (moved["ARN"], moved["Name"]) == (arn, name)
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT", "blue"}, v2: set()}


def test_stage_move_without_remove_from_is_refused(sm, labelled_pair):
    name, _, v1, v2 = labelled_pair
    with expect_error("InvalidParameterException"):
        sm.update_secret_version_stage(SecretId=name, VersionStage="blue", MoveToVersionId=v1)
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"blue"}}


def test_stage_move_with_wrong_remove_from_is_refused(sm, labelled_pair):
    name, _, v1, v2 = labelled_pair
    with expect_error("InvalidParameterException"):
        sm.update_secret_version_stage(
            SecretId=name, VersionStage="blue", MoveToVersionId=v1, RemoveFromVersionId=v1
        )
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"blue"}}


def test_stage_remove_only(sm, labelled_pair):
    name, _, v1, v2 = labelled_pair
    sm.update_secret_version_stage(SecretId=name, VersionStage="blue", RemoveFromVersionId=v2)
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: set()}
    assert labelled(sm, name) == {v1: {"AWSCURRENT"}}


def test_stage_new_label_needs_only_move_to(sm, labelled_pair):
    name, _, v1, v2 = labelled_pair
    sm.update_secret_version_stage(SecretId=name, VersionStage="green", MoveToVersionId=v2)
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"blue", "green"}}


def test_stage_already_on_target_is_a_no_op(sm, labelled_pair):
    name, _, v1, v2 = labelled_pair
    sm.update_secret_version_stage(SecretId=name, VersionStage="blue", MoveToVersionId=v2)
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"blue"}}


def test_current_cannot_be_removed_without_a_move(sm, labelled_pair):
    name, _, v1, v2 = labelled_pair
    with expect_error("InvalidParameterException"):
        sm.update_secret_version_stage(
            SecretId=name, VersionStage="AWSCURRENT", RemoveFromVersionId=v1
        )
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"blue"}}


def test_stage_move_to_unknown_version_is_refused(sm, labelled_pair):
    name, _, v1, v2 = labelled_pair
    with expect_error({"InvalidParameterException", "ResourceNotFoundException"}):
        sm.update_secret_version_stage(SecretId=name, VersionStage="green", MoveToVersionId=token())
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"blue"}}


def test_stage_on_unknown_secret(sm):
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.update_secret_version_stage(
            SecretId=unique_name("nope"), VersionStage="blue", MoveToVersionId=token()
        )


# TagResource / UntagResource


def tags_of(sm, name) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name).get("Tags", [])}


def test_tag_adds_and_overwrites(sm, secret):
    name, arn, _ = secret
    sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sm.tag_resource(SecretId=arn, Tags=[{"Key": "a", "Value": "one"}, {"Key": "C", "Value": ""}])
    assert tags_of(sm, name) == {"a": "one", "b": "2", "C": ""}


def test_tag_keys_are_case_sensitive(sm, secret):
    name, _, _ = secret
    sm.tag_resource(
        SecretId=name, Tags=[{"Key": "env", "Value": "x"}, {"Key": "ENV", "Value": "y"}]
    )
    assert tags_of(sm, name) == {"env": "x", "ENV": "y"}


def test_untag_removes_and_ignores_absent_keys(sm, secret):
    name, _, _ = secret
    sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sm.untag_resource(SecretId=name, TagKeys=["a", "never-there"])
    assert tags_of(sm, name) == {"b": "2"}


def test_tags_is_an_empty_list_once_the_last_tag_is_removed(sm, secret):
    # AWS omits Tags for a secret never tagged, but answers "Tags": [] once it has had
    # tags, even after all of them were removed.
    name, _, _ = secret
    assert "Tags" not in sm.describe_secret(SecretId=name)
    sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "1"}])
    sm.untag_resource(SecretId=name, TagKeys=["a"])
    assert sm.describe_secret(SecretId=name)["Tags"] == []
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert [entry["Tags"] for entry in listed if entry["Name"] == name] == [[]]


def test_tags_given_at_creation_count_as_tagged(sm):
    name = unique_name("tagged")
    sm.create_secret(Name=name, SecretString="x", Tags=[{"Key": "a", "Value": "1"}])
    sm.untag_resource(SecretId=name, TagKeys=["a"])
    assert sm.describe_secret(SecretId=name)["Tags"] == []


def test_tagging_unknown_secret(sm):
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.tag_resource(SecretId=unique_name("nope"), Tags=[{"Key": "a", "Value": "1"}])
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.untag_resource(SecretId=unique_name("nope"), TagKeys=["a"])


def test_tagging_does_not_touch_versions(sm, secret):
    name, _, v1 = secret
    sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "1"}])
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}}


def test_more_than_50_tags_are_refused(sm, secret):
    name, _, _ = secret
    sm.tag_resource(SecretId=name, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert len(tags_of(sm, name)) == 50
    with expect_error(
        {"LimitExceededException", "InvalidParameterException", "ValidationException"}
    ):
        sm.tag_resource(SecretId=name, Tags=[{"Key": "one-more", "Value": "v"}])
    assert "one-more" not in tags_of(sm, name)
    # Overwriting an existing key does not add a tag.
    sm.tag_resource(SecretId=name, Tags=[{"Key": "k0", "Value": "changed"}])
    assert tags_of(sm, name)["k0"] == "changed"


def test_tag_key_and_value_length_limits(shared_server, sm, secret):
    name, _, _ = secret
    # The API reference gives 127 and 255 characters, the service model 128 and 256.
    sm.tag_resource(SecretId=name, Tags=[{"Key": "k" * 127, "Value": "v" * 255}])
    loose = shared_server.client(parameter_validation=False)
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.tag_resource(SecretId=name, Tags=[{"Key": "k" * 129, "Value": "v"}])
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.tag_resource(SecretId=name, Tags=[{"Key": "k", "Value": "v" * 257}])
    assert tags_of(sm, name) == {"k" * 127: "v" * 255}


def test_put_secret_value_takes_a_rotation_token_held_to_the_models_pattern(sm):
    """PutSecretValue's RotationToken (36 to 256 of [a-zA-Z0-9-]): a rotation function hands
    back the one its event carried; anything else is AWS's ValidationException."""
    name = unique_name("rotation-token")
    sm.create_secret(Name=name, SecretString="v1")
    put = sm.put_secret_value(
        SecretId=name, SecretString="v2", RotationToken=f"{uuid.uuid4()}-{uuid.uuid4()}"
    )
    assert sm.get_secret_value(SecretId=name)["VersionId"] == put["VersionId"]
    with expect_error("ValidationException"):
        sm.put_secret_value(SecretId=name, SecretString="v3", RotationToken="x" * 35 + "!")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"
