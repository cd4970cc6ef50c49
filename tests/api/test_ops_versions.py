"""The spec's "Versions and staging labels" rules, one test each, on the live server.

Each test asserts what the real service does; several of these are where the usual
emulator differs (label exclusivity, the AWSPENDING move, GetSecretValue after a move).
DescribeSecret, DeleteSecret and GetRandomPassword rules of that section are in
test_ops_read, test_ops_delete and test_ops_password.
"""

from __future__ import annotations

import uuid

import pytest

from secretsd.model import errors
from tests.api.test_ops_helpers import expect_error, labelled, stages_by_version, token, unique_name


@pytest.fixture
def name(sm):
    """A secret created without a value: its first version comes from the test."""
    secret_name = unique_name("labels")
    sm.create_secret(Name=secret_name)
    return secret_name


def put(sm, secret_id, value, stages=None) -> str:
    version = token()
    kwargs = {} if stages is None else {"VersionStages": stages}
    sm.put_secret_value(
        SecretId=secret_id, SecretString=value, ClientRequestToken=version, **kwargs
    )
    return version


# A version holds 1-20 labels; a label sits on at most one version.


def test_a_version_can_hold_20_labels(sm, name):
    stages = ["AWSCURRENT"] + [f"label-{i}" for i in range(19)]
    v1 = put(sm, name, "v", stages)
    assert stages_by_version(sm, name) == {v1: set(stages)}


def test_a_21st_label_is_refused(sm, name):
    stages = ["AWSCURRENT"] + [f"label-{i}" for i in range(19)]
    v1 = put(sm, name, "v", stages)
    with expect_error({"LimitExceededException", "InvalidParameterException"}):
        sm.update_secret_version_stage(
            SecretId=name, VersionStage="one-too-many", MoveToVersionId=v1
        )
    assert stages_by_version(sm, name) == {v1: set(stages)}


def test_putting_21_labels_is_refused(shared_server, sm, name):
    loose = shared_server.client(parameter_validation=False)
    with expect_error(
        {"LimitExceededException", "InvalidParameterException", "ValidationException"}
    ):
        loose.put_secret_value(
            SecretId=name, SecretString="v", VersionStages=[f"l{i}" for i in range(21)]
        )
    assert stages_by_version(sm, name) == {}


def test_a_custom_label_sits_on_one_version_only(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2", ["blue"])
    v3 = put(sm, name, "v3", ["blue"])
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: set(), v3: {"blue"}}
    assert sm.get_secret_value(SecretId=name, VersionStage="blue")["SecretString"] == "v3"


def test_awspending_sits_on_one_version_only(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2", ["AWSPENDING"])
    v3 = put(sm, name, "v3", ["AWSPENDING"])
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: set(), v3: {"AWSPENDING"}}


# A version with no label is deprecated.


def test_a_version_without_labels_is_deprecated(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2", ["blue"])
    sm.update_secret_version_stage(SecretId=name, VersionStage="blue", RemoveFromVersionId=v2)
    assert labelled(sm, name) == {v1: {"AWSCURRENT"}}
    default = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert [v["VersionId"] for v in default] == [v1]
    everything = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    [deprecated] = [v for v in everything if v["VersionId"] == v2]
    assert "VersionStages" not in deprecated
    # Until it is purged, a deprecated version is still readable by its id.
    assert sm.get_secret_value(SecretId=name, VersionId=v2)["SecretString"] == "v2"


# Moving AWSCURRENT moves AWSPREVIOUS to the version AWSCURRENT left, always.


def move_by_put(sm, name, value):
    return put(sm, name, value)


def move_by_put_with_current_listed(sm, name, value):
    return put(sm, name, value, ["AWSCURRENT", "extra"])


def move_by_update_secret(sm, name, value):
    version = token()
    sm.update_secret(SecretId=name, SecretString=value, ClientRequestToken=version)
    return version


def move_by_stage_update(sm, name, value):
    version = put(sm, name, value, ["staged"])
    current = sm.get_secret_value(SecretId=name)["VersionId"]
    sm.update_secret_version_stage(
        SecretId=name,
        VersionStage="AWSCURRENT",
        MoveToVersionId=version,
        RemoveFromVersionId=current,
    )
    return version


@pytest.mark.parametrize(
    "move",
    [move_by_put, move_by_put_with_current_listed, move_by_update_secret, move_by_stage_update],
)
def test_previous_follows_current(sm, name, move):
    v1 = put(sm, name, "v1")
    v2 = move(sm, name, "v2")
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["VersionId"] == v1
    v3 = move(sm, name, "v3")
    stages = stages_by_version(sm, name)
    assert "AWSCURRENT" in stages[v3]
    assert stages[v2] & {"AWSCURRENT", "AWSPREVIOUS"} == {"AWSPREVIOUS"}
    assert "AWSPREVIOUS" not in stages[v1]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v3"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "v2"


def test_rolling_back_to_previous_swaps_the_two(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2")
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v1, RemoveFromVersionId=v2
    )
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"AWSPREVIOUS"}}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"


# PutSecretValue and labels.


def test_put_without_stages_moves_current(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2")
    assert stages_by_version(sm, name) == {v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}


def test_first_version_always_gets_current(sm, name):
    v1 = put(sm, name, "first", ["AWSPENDING"])
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT", "AWSPENDING"}}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "first"


def test_first_version_from_create_gets_current(sm):
    secret_name = unique_name("labels-create")
    version = token()
    sm.create_secret(Name=secret_name, SecretString="v", ClientRequestToken=version)
    assert stages_by_version(sm, secret_name) == {version: {"AWSCURRENT"}}


def test_listed_labels_leave_other_versions(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2", ["AWSPENDING", "blue"])
    v3 = put(sm, name, "v3", ["AWSPENDING", "blue", "green"])
    assert stages_by_version(sm, name) == {
        v1: {"AWSCURRENT"},
        v2: set(),
        v3: {"AWSPENDING", "blue", "green"},
    }


# ClientRequestToken.


def test_token_becomes_the_version_id(sm, name):
    version = uuid.uuid4().hex + "-x"
    put_result = sm.put_secret_value(SecretId=name, SecretString="v", ClientRequestToken=version)
    assert put_result["VersionId"] == version
    assert sm.get_secret_value(SecretId=name)["VersionId"] == version


def test_same_token_same_value_succeeds_without_change(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2")
    sm.put_secret_value(SecretId=name, SecretString="v1", ClientRequestToken=v1)
    assert stages_by_version(sm, name) == {v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}


def test_same_token_same_value_ignores_new_stages(sm, name):
    # "The operation succeeds but does nothing": a retry cannot move labels either.
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2", ["AWSPENDING"])
    sm.put_secret_value(
        SecretId=name, SecretString="v2", ClientRequestToken=v2, VersionStages=["AWSCURRENT"]
    )
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"AWSPENDING"}}


def test_same_token_different_value_is_resource_exists(sm, name):
    v1 = put(sm, name, "v1")
    arn = sm.describe_secret(SecretId=name)["ARN"]
    # AWS's text, naming the token and the secret's full ARN.
    with expect_error("ResourceExistsException", errors.token_in_use(v1, arn)):
        sm.put_secret_value(SecretId=name, SecretString="other", ClientRequestToken=v1)
    with expect_error("ResourceExistsException", errors.token_in_use(v1, arn)):
        sm.update_secret(SecretId=name, SecretString="other", ClientRequestToken=v1)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"


def test_a_token_is_unique_per_secret_only(sm, name):
    other = unique_name("labels-other")
    sm.create_secret(Name=other)
    shared = token()
    sm.put_secret_value(SecretId=name, SecretString="mine", ClientRequestToken=shared)
    sm.put_secret_value(SecretId=other, SecretString="theirs", ClientRequestToken=shared)
    assert sm.get_secret_value(SecretId=name, VersionId=shared)["SecretString"] == "mine"
    assert sm.get_secret_value(SecretId=other, VersionId=shared)["SecretString"] == "theirs"


def test_sdk_fills_in_a_token(sm, name):
    result = sm.put_secret_value(SecretId=name, SecretString="v")
    assert str(uuid.UUID(result["VersionId"])) == result["VersionId"]


# UpdateSecretVersionStage.


def test_label_on_another_version_needs_remove_from(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2", ["AWSPENDING"])
    with expect_error("InvalidParameterException"):
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", MoveToVersionId=v1)
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"AWSPENDING"}}


def test_remove_from_must_name_the_holder(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2", ["AWSPENDING"])
    v3 = put(sm, name, "v3", ["blue"])
    with expect_error("InvalidParameterException"):
        sm.update_secret_version_stage(
            SecretId=name, VersionStage="AWSPENDING", MoveToVersionId=v1, RemoveFromVersionId=v3
        )
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: {"AWSPENDING"}, v3: {"blue"}}


def test_without_move_to_the_label_is_only_removed(sm, name):
    v1 = put(sm, name, "v1")
    v2 = put(sm, name, "v2", ["AWSPENDING"])
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=v2)
    assert stages_by_version(sm, name) == {v1: {"AWSCURRENT"}, v2: set()}
    with expect_error("ResourceNotFoundException"):
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")


def test_moving_current_onto_the_pending_version_keeps_pending(sm, name):
    # Recorded on the real service: v0 [AWSPREVIOUS], v1 [AWSCURRENT, AWSPENDING].
    v0 = put(sm, name, "v0")
    v1 = put(sm, name, "v1", ["AWSPENDING"])
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v1, RemoveFromVersionId=v0
    )
    assert stages_by_version(sm, name) == {v0: {"AWSPREVIOUS"}, v1: {"AWSCURRENT", "AWSPENDING"}}


# GetSecretValue with neither VersionId nor VersionStage means AWSCURRENT.


def test_get_without_version_follows_a_stage_move(sm, name):
    v1 = put(sm, name, "old")
    v2 = put(sm, name, "new", ["AWSPENDING"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "old"
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2, RemoveFromVersionId=v1
    )
    value = sm.get_secret_value(SecretId=name)
    assert (value["VersionId"], value["SecretString"]) == (v2, "new")
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v1, RemoveFromVersionId=v2
    )
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "old"


# Deprecated versions: more than 100 are kept while younger than 24 hours.


@pytest.mark.slow
def test_young_deprecated_versions_are_kept_beyond_100(sm, name):
    versions = [put(sm, name, f"value-{i}") for i in range(105)]
    listed = stages_by_version(sm, name)
    assert set(listed) == set(versions)
    assert listed[versions[-1]] == {"AWSCURRENT"}
    assert listed[versions[-2]] == {"AWSPREVIOUS"}
    assert all(listed[v] == set() for v in versions[:-2])
    first_page = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=100)
    assert len(first_page["Versions"]) == 100
    assert first_page["NextToken"]
    assert sm.get_secret_value(SecretId=name, VersionId=versions[0])["SecretString"] == "value-0"
