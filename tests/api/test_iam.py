"""IAM users, keys and inline policies, and STS GetCallerIdentity, through boto3 and the AWS
CLI against a live server (the AWS Query protocol at the Secrets Manager endpoint)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess

ACCOUNT = "123456789012"
ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}],
    }
)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def iam(shared_server: ServerProcess):
    return shared_server.client("iam")


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = excinfo.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_root_is_the_account(shared_server: ServerProcess) -> None:
    identity = shared_server.client("sts").get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert identity["UserId"] == ACCOUNT


def test_users_are_created_found_in_any_case_listed_and_deleted(iam) -> None:
    name = unique("App-Reader")
    created = iam.create_user(UserName=name, Path="/apps/", Tags=[{"Key": "team", "Value": "a"}])
    user = created["User"]
    assert user["UserName"] == name
    assert user["Path"] == "/apps/"
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/apps/{name}"
    assert user["UserId"].startswith("AIDA") and len(user["UserId"]) == 21
    assert user["Tags"] == [{"Key": "team", "Value": "a"}]
    fetched = iam.get_user(UserName=name.lower())["User"]
    assert fetched["UserName"] == name and fetched["UserId"] == user["UserId"]
    listed = iam.list_users(PathPrefix="/apps/")["Users"]
    assert name in [u["UserName"] for u in listed]
    with pytest.raises(ClientError) as excinfo:
        iam.create_user(UserName=name.upper())
    assert error_of(excinfo) == (
        409,
        "EntityAlreadyExists",
        f"User with name {name.upper()} already exists.",
    )
    iam.delete_user(UserName=name)
    with pytest.raises(ClientError) as excinfo:
        iam.get_user(UserName=name)
    assert error_of(excinfo) == (404, "NoSuchEntity", f"The user with name {name} cannot be found.")


def test_list_users_pages_with_markers(iam) -> None:
    prefix = f"/pages{secrets.token_hex(3)}/"
    names = sorted(unique(f"p{i}") for i in range(5))
    for name in names:
        iam.create_user(UserName=name, Path=prefix)
    seen = []
    for page in iam.get_paginator("list_users").paginate(
        PathPrefix=prefix, PaginationConfig={"PageSize": 2}
    ):
        assert len(page["Users"]) <= 2
        seen += [u["UserName"] for u in page["Users"]]
    assert seen == sorted(names, key=str.lower)


def test_tags_are_added_replaced_listed_and_removed(iam) -> None:
    name = unique("tagged")
    iam.create_user(UserName=name)
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "x"}])
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "b"}])
    assert iam.list_user_tags(UserName=name)["Tags"] == [
        {"Key": "team", "Value": "b"},
        {"Key": "env", "Value": "x"},
    ]
    iam.untag_user(UserName=name, TagKeys=["team"])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "env", "Value": "x"}]
    assert iam.get_user(UserName=name)["User"]["Tags"] == [{"Key": "env", "Value": "x"}]


def test_access_keys_sign_until_deactivated_or_deleted(shared_server: ServerProcess, iam) -> None:
    name = unique("signer")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=ALLOW_ALL)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert key["Status"] == "Active" and key["UserName"] == name
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40
    sts = shared_server.client_for_key(key, "sts")
    identity = sts.get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    user_id = iam.get_user(UserName=name)["User"]["UserId"]
    assert identity["UserId"] == user_id

    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(key["AccessKeyId"], "Active")]
    assert "SecretAccessKey" not in listed[0]

    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    for client, call in ((sts, "get_caller_identity"),):
        with pytest.raises(ClientError) as excinfo:
            getattr(client, call)()
        assert error_of(excinfo) == (
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    sm = shared_server.client_for_key(key)
    with pytest.raises(ClientError) as excinfo:
        sm.list_secrets()
    assert error_of(excinfo) == (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )

    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{name}")
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as excinfo:
        sts.get_caller_identity()
    assert error_of(excinfo)[1] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as excinfo:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    assert error_of(excinfo) == (
        404,
        "NoSuchEntity",
        f"The Access Key with id {key['AccessKeyId']} cannot be found.",
    )


def test_a_user_has_at_most_two_keys(iam) -> None:
    name = unique("twokeys")
    iam.create_user(UserName=name)
    iam.create_access_key(UserName=name)
    iam.create_access_key(UserName=name)
    with pytest.raises(ClientError) as excinfo:
        iam.create_access_key(UserName=name)
    assert error_of(excinfo) == (
        409,
        "LimitExceeded",
        "Cannot exceed quota for AccessKeysPerUser: 2",
    )
    assert len(iam.list_access_keys(UserName=name)["AccessKeyMetadata"]) == 2


def test_a_user_with_keys_or_policies_cannot_be_deleted(iam) -> None:
    name = unique("conflict")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=ALLOW_ALL)
    with pytest.raises(ClientError) as excinfo:
        iam.delete_user(UserName=name)
    assert error_of(excinfo) == (
        409,
        "DeleteConflict",
        "Cannot delete entity, must delete access keys first.",
    )
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as excinfo:
        iam.delete_user(UserName=name)
    assert error_of(excinfo) == (
        409,
        "DeleteConflict",
        "Cannot delete entity, must delete policies first.",
    )
    iam.delete_user_policy(UserName=name, PolicyName="p")
    iam.delete_user(UserName=name)


def test_inline_policies_round_trip_and_bad_ones_are_refused(iam) -> None:
    name = unique("policies")
    iam.create_user(UserName=name)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:username}"}},
            }
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(document))
    # botocore decodes the URL-encoded document IAM returns.
    got = iam.get_user_policy(UserName=name, PolicyName="read")
    assert got["PolicyDocument"] == document
    assert got["UserName"] == name and got["PolicyName"] == "read"
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["read"]
    with pytest.raises(ClientError) as excinfo:
        iam.put_user_policy(UserName=name, PolicyName="bad", PolicyDocument="{not json")
    status, code, _ = error_of(excinfo)
    assert (status, code) == (400, "MalformedPolicyDocument")
    with pytest.raises(ClientError) as excinfo:
        iam.get_user_policy(UserName=name, PolicyName="absent")
    assert error_of(excinfo) == (
        404,
        "NoSuchEntity",
        "The user policy with name absent cannot be found.",
    )
    iam.delete_user_policy(UserName=name, PolicyName="read")
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == []


def test_names_are_validated_as_iam_does(iam) -> None:
    with pytest.raises(ClientError) as excinfo:
        iam.create_user(UserName="has space")
    status, code, message = error_of(excinfo)
    assert (status, code) == (400, "ValidationError")
    assert "userName" in message
    with pytest.raises(ClientError) as excinfo:
        iam.create_user(UserName=unique("x"), Path="no-slashes")
    assert error_of(excinfo)[1] == "ValidationError"
    with pytest.raises(ClientError) as excinfo:
        iam.get_user(UserName=unique("missing"))
    assert error_of(excinfo)[1] == "NoSuchEntity"


def test_the_aws_cli_manages_users(shared_server: ServerProcess, tmp_path: Path) -> None:
    name = unique("cli-user")
    env = dict(shared_server.env, AWS_ENDPOINT_URL_IAM=shared_server.endpoint_url)

    def aws(*args: str) -> dict:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("aws")), "iam", *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    created = aws("create-user", "--user-name", name)
    assert created["User"]["UserName"] == name
    key = aws("create-access-key", "--user-name", name)["AccessKey"]
    listed = aws("list-access-keys", "--user-name", name)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    aws("delete-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"])
    aws("delete-user", "--user-name", name)
    users = aws("list-users")["Users"]
    assert name not in [u["UserName"] for u in users]
