"""GetSecretValue, BatchGetSecretValue and DescribeSecret against the live server."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from secretsd.model import errors
from tests.api.test_ops_helpers import expect_error, partial_arn, token, unique_name
from tests.support.wait import wait_for


@pytest.fixture
def two_versions(sm):
    """A secret with v1 = AWSPREVIOUS ("old") and v2 = AWSCURRENT ("new")."""
    name = unique_name("read")
    v1, v2 = token(), token()
    arn = sm.create_secret(Name=name, SecretString="old", ClientRequestToken=v1)["ARN"]
    sm.put_secret_value(SecretId=name, SecretString="new", ClientRequestToken=v2)
    return name, arn, v1, v2


# GetSecretValue


def test_get_by_name_full_arn_and_partial_arn(sm, two_versions):
    name, arn, _, v2 = two_versions
    for secret_id in (name, arn, partial_arn(arn)):
        value = sm.get_secret_value(SecretId=secret_id)
        assert value["SecretString"] == "new", secret_id
        assert value["VersionId"] == v2
        assert value["Name"] == name
        assert value["ARN"] == arn


def test_get_by_version_id(sm, two_versions):
    name, _, v1, v2 = two_versions
    old = sm.get_secret_value(SecretId=name, VersionId=v1)
    assert old["SecretString"] == "old"
    assert old["VersionStages"] == ["AWSPREVIOUS"]
    assert sm.get_secret_value(SecretId=name, VersionId=v2)["SecretString"] == "new"


def test_get_by_version_stage(sm, two_versions):
    name, _, v1, v2 = two_versions
    previous = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert (previous["VersionId"], previous["SecretString"]) == (v1, "old")
    current = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    assert (current["VersionId"], current["SecretString"]) == (v2, "new")


def test_get_by_version_id_and_matching_stage(sm, two_versions):
    name, _, v1, _ = two_versions
    value = sm.get_secret_value(SecretId=name, VersionId=v1, VersionStage="AWSPREVIOUS")
    assert value["SecretString"] == "old"


def test_get_by_version_id_and_other_stage_fails_with_the_recorded_text(sm, two_versions):
    name, _, v1, _ = two_versions
    with expect_error("InvalidRequestException", errors.STAGE_NOT_ON_VERSION):
        sm.get_secret_value(SecretId=name, VersionId=v1, VersionStage="AWSCURRENT")


def test_get_unknown_version_id(sm, two_versions):
    name, _, _, _ = two_versions
    missing = token()
    with expect_error("ResourceNotFoundException", errors.value_not_found_for_version(missing)):
        sm.get_secret_value(SecretId=name, VersionId=missing)


def test_get_unattached_stage(sm, two_versions):
    name, _, _, _ = two_versions
    with expect_error("ResourceNotFoundException", errors.value_not_found_for_stage("AWSPENDING")):
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")


def test_get_unknown_secret(sm):
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.get_secret_value(SecretId=unique_name("nope"))


def test_get_by_arn_of_a_different_suffix_is_not_found(sm, two_versions):
    _, arn, _, _ = two_versions
    other = arn[:-6] + ("AAAAAA" if not arn.endswith("AAAAAA") else "BBBBBB")
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.get_secret_value(SecretId=other)


def test_get_returns_the_version_creation_date(sm, two_versions):
    name, _, v1, _ = two_versions
    listed = {
        v["VersionId"]: v["CreatedDate"]
        for v in sm.list_secret_version_ids(SecretId=name)["Versions"]
    }
    value = sm.get_secret_value(SecretId=name, VersionId=v1)
    assert value["CreatedDate"] == listed[v1]


def test_name_that_ends_like_an_arn_suffix_is_found_by_name(sm):
    name = f"{unique_name('read-suffix')}-Ab12Cd"
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    assert sm.get_secret_value(SecretId=name)["ARN"] == arn
    assert sm.get_secret_value(SecretId=arn)["Name"] == name


# BatchGetSecretValue


def test_batch_get_by_id_list_reports_missing_secrets_in_errors(sm, two_versions):
    name, arn, _, v2 = two_versions
    other = unique_name("batch")
    sm.create_secret(Name=other, SecretBinary=b"\x00\x01")
    missing = unique_name("batch-missing")
    result = sm.batch_get_secret_value(SecretIdList=[arn, other, missing])
    by_name = {v["Name"]: v for v in result["SecretValues"]}
    assert set(by_name) == {name, other}
    assert by_name[name]["SecretString"] == "new"
    assert by_name[name]["VersionId"] == v2
    assert by_name[name]["VersionStages"] == ["AWSCURRENT"]
    assert by_name[other]["SecretBinary"] == b"\x00\x01"
    assert [(e["SecretId"], e["ErrorCode"]) for e in result["Errors"]] == [
        (missing, "ResourceNotFoundException")
    ]


def test_batch_get_reports_a_deleted_secret_in_errors(sm):
    name = unique_name("batch-deleted")
    sm.create_secret(Name=name, SecretString="v")
    sm.delete_secret(SecretId=name)
    result = sm.batch_get_secret_value(SecretIdList=[name])
    assert result["SecretValues"] == []
    assert [(e["SecretId"], e["ErrorCode"]) for e in result["Errors"]] == [
        (name, "InvalidRequestException")
    ]


def test_batch_get_by_filters_with_pagination(sm):
    prefix = f"batchf-{uuid.uuid4().hex[:10]}"
    expected = {}
    for i in range(5):
        name = f"{prefix}/s{i}"
        sm.create_secret(Name=name, SecretString=f"value-{i}")
        expected[name] = f"value-{i}"
    sm.create_secret(Name=f"other-{prefix}", SecretString="not me")

    seen: dict[str, str] = {}
    kwargs = {"Filters": [{"Key": "name", "Values": [prefix]}], "MaxResults": 2}
    pages = 0
    while True:
        page = sm.batch_get_secret_value(**kwargs)
        pages += 1
        assert len(page["SecretValues"]) <= 2
        for entry in page["SecretValues"]:
            assert entry["Name"] not in seen
            seen[entry["Name"]] = entry["SecretString"]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    assert seen == expected
    assert pages >= 3


def test_batch_get_needs_exactly_one_of_id_list_and_filters(sm, two_versions):
    name, _, _, _ = two_versions
    with expect_error({"InvalidParameterException", "InvalidRequestException"}):
        sm.batch_get_secret_value(SecretIdList=[name], Filters=[{"Key": "name", "Values": [name]}])
    with expect_error({"InvalidParameterException", "InvalidRequestException"}):
        sm.batch_get_secret_value()


def test_batch_get_max_results_needs_filters(sm, two_versions):
    name, _, _, _ = two_versions
    with expect_error({"InvalidParameterException", "InvalidRequestException"}):
        sm.batch_get_secret_value(SecretIdList=[name], MaxResults=5)


def test_batch_get_refuses_more_than_20_ids(shared_server):
    loose = shared_server.client(parameter_validation=False)
    ids = [unique_name("batch-many") for _ in range(21)]
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.batch_get_secret_value(SecretIdList=ids)


# DescribeSecret


def test_describe_lists_only_fields_with_values(sm):
    name = unique_name("describe")
    version = token()
    arn = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=version)["ARN"]
    described = sm.describe_secret(SecretId=name)
    assert described["ARN"] == arn
    assert described["Name"] == name
    assert described["VersionIdsToStages"] == {version: ["AWSCURRENT"]}
    for absent in (
        "Description",
        "KmsKeyId",
        "RotationEnabled",
        "RotationLambdaARN",
        "RotationRules",
        "LastRotatedDate",
        "NextRotationDate",
        "LastAccessedDate",
        "DeletedDate",
    ):
        assert absent not in described, absent
    assert isinstance(described["CreatedDate"], dt.datetime)
    assert isinstance(described["LastChangedDate"], dt.datetime)


def test_describe_by_arn_and_partial_arn(sm, two_versions):
    name, arn, _, _ = two_versions
    assert sm.describe_secret(SecretId=arn)["Name"] == name
    assert sm.describe_secret(SecretId=partial_arn(arn))["ARN"] == arn


def test_describe_lists_only_labelled_versions(sm, two_versions):
    name, _, v1, v2 = two_versions
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSPREVIOUS", RemoveFromVersionId=v1
    )
    described = sm.describe_secret(SecretId=name)
    assert described["VersionIdsToStages"] == {v2: ["AWSCURRENT"]}


def test_last_accessed_date_appears_after_a_read_at_day_resolution(sm):
    name = unique_name("describe-accessed")
    sm.create_secret(Name=name, SecretString="v")
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)
    day_before = dt.datetime.now(dt.UTC).date()
    sm.get_secret_value(SecretId=name)
    day_after = dt.datetime.now(dt.UTC).date()
    # The date is bookkeeping, written after the read has answered.
    accessed = wait_for(lambda: sm.describe_secret(SecretId=name).get("LastAccessedDate"))
    as_utc = accessed.astimezone(dt.UTC)
    assert (as_utc.hour, as_utc.minute, as_utc.second, as_utc.microsecond) == (0, 0, 0, 0)
    assert as_utc.date() in (day_before, day_after)


def test_deleted_date_while_scheduled_for_deletion(sm):
    name = unique_name("describe-deleted")
    sm.create_secret(Name=name, SecretString="v")
    before = time.time()
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    described = sm.describe_secret(SecretId=name)
    assert before - 5 <= described["DeletedDate"].timestamp() <= time.time() + 5
    sm.restore_secret(SecretId=name)
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)


def test_describe_unknown_secret(sm):
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.describe_secret(SecretId=unique_name("nope"))


def test_last_changed_date_moves_on_a_new_value(sm):
    name = unique_name("describe-changed")
    sm.create_secret(Name=name, SecretString="v1")
    first = sm.describe_secret(SecretId=name)["LastChangedDate"]
    time.sleep(1.1)
    sm.put_secret_value(SecretId=name, SecretString="v2")
    assert sm.describe_secret(SecretId=name)["LastChangedDate"] > first


def test_last_accessed_date_is_per_version_and_listed(sm, two_versions):
    name, _, v1, v2 = two_versions
    sm.get_secret_value(SecretId=name, VersionId=v1)

    def once_v1_is_accessed() -> dict[str, dict] | None:
        listed = sm.list_secret_version_ids(SecretId=name)["Versions"]
        versions = {v["VersionId"]: v for v in listed}
        return versions if "LastAccessedDate" in versions[v1] else None

    # The date is bookkeeping, written after the read has answered.
    versions = wait_for(once_v1_is_accessed)
    assert "LastAccessedDate" not in versions[v2]
    accessed = versions[v1]["LastAccessedDate"].astimezone(dt.UTC)
    assert (accessed.hour, accessed.minute, accessed.second) == (0, 0, 0)
    [entry] = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert entry["LastAccessedDate"] == sm.describe_secret(SecretId=name)["LastAccessedDate"]


def test_describe_is_not_an_access(sm):
    name = unique_name("describe-no-access")
    sm.create_secret(Name=name, SecretString="v")
    sm.describe_secret(SecretId=name)
    sm.list_secret_version_ids(SecretId=name)
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)


def foreign_arn(arn: str, field: int, value: str) -> str:
    """``arn`` with its region (field 3) or account (field 4) replaced."""
    parts = arn.split(":")
    assert parts[field] != value
    parts[field] = value
    return ":".join(parts)


@pytest.mark.parametrize(("field", "value"), [(3, "eu-west-3"), (4, "000000000000")])
def test_full_arn_of_another_region_or_account_is_not_found(sm, two_versions, field, value):
    _, arn, _, _ = two_versions
    with expect_error({"ResourceNotFoundException", "AccessDeniedException"}):
        sm.get_secret_value(SecretId=foreign_arn(arn, field, value))


@pytest.mark.parametrize(("field", "value"), [(3, "eu-west-3"), (4, "000000000000")])
def test_partial_arn_of_another_region_or_account_is_not_found(sm, two_versions, field, value):
    _, arn, _, _ = two_versions
    with expect_error({"ResourceNotFoundException", "AccessDeniedException"}):
        sm.get_secret_value(SecretId=partial_arn(foreign_arn(arn, field, value)))
