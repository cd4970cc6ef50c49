"""Authorization of Secrets Manager requests against a live server: IAM users with different
policies and tags get exactly the allows and AccessDeniedExceptions AWS gives."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess

ACCOUNT = "123456789012"
ARN_PREFIX = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"


def statement(effect: str, action, resource="*", condition=None) -> dict:
    found = {"Effect": effect, "Action": action, "Resource": resource}
    if condition:
        found["Condition"] = condition
    return found


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def root(shared_server: ServerProcess):
    return shared_server.client()


@pytest.fixture(scope="module")
def make_user(shared_server: ServerProcess) -> Callable[..., tuple]:
    """A user with the given inline policies (and tags): (its secretsmanager client, ARN)."""
    iam = shared_server.client("iam")

    def make(*policies: str, tags: dict[str, str] | None = None, service="secretsmanager"):
        name = f"user-{secrets.token_hex(4)}"
        iam.create_user(
            UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        )
        for index, document in enumerate(policies):
            iam.put_user_policy(UserName=name, PolicyName=f"p{index}", PolicyDocument=document)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return shared_server.client_for_key(key, service), f"arn:aws:iam::{ACCOUNT}:user/{name}"

    return make


def denied(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    response = excinfo.value.response
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]["Message"]


def no_allow(user: str, action: str, resource: str | None) -> str:
    on = "" if resource is None else f" on resource: {resource}"
    return (
        f"User: {user} is not authorized to perform: secretsmanager:{action}{on} "
        f"because no identity-based policy allows the secretsmanager:{action} action"
    )


def unique(prefix: str) -> str:
    return f"{prefix}/{secrets.token_hex(4)}"


def test_a_path_policy_allows_its_secrets_and_refuses_the_rest_alike(root, make_user) -> None:
    mine, theirs = unique("app"), unique("other")
    root.create_secret(Name=mine, SecretString="mine")
    root.create_secret(Name=theirs, SecretString="theirs")
    sm, arn = make_user(
        policy(
            statement(
                "Allow",
                ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                f"{ARN_PREFIX}app/*",
            )
        )
    )
    assert sm.get_secret_value(SecretId=mine)["SecretString"] == "mine"
    assert sm.describe_secret(SecretId=mine)["Name"] == mine
    # Allowed to ask, so told that a secret under its path does not exist.
    with pytest.raises(ClientError) as excinfo:
        sm.get_secret_value(SecretId=unique("app"))
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # Refused alike whether the secret exists or not: the message names it as asked.
    for secret_id in (theirs, unique("other")):
        with pytest.raises(ClientError) as excinfo:
            sm.get_secret_value(SecretId=secret_id)
        assert denied(excinfo) == no_allow(arn, "GetSecretValue", secret_id)
    full_arn = root.describe_secret(SecretId=theirs)["ARN"]
    with pytest.raises(ClientError) as excinfo:
        sm.get_secret_value(SecretId=full_arn)
    assert denied(excinfo) == no_allow(arn, "GetSecretValue", full_arn)
    with pytest.raises(ClientError) as excinfo:
        sm.put_secret_value(SecretId=mine, SecretString="x")
    assert denied(excinfo) == no_allow(arn, "PutSecretValue", mine)
    with pytest.raises(ClientError) as excinfo:
        sm.list_secrets()
    assert denied(excinfo) == no_allow(arn, "ListSecrets", None)


def test_resource_tags_matched_against_principal_tags(root, make_user) -> None:
    ours, others = unique("tagged"), unique("tagged")
    root.create_secret(Name=ours, SecretString="a", Tags=[{"Key": "team", "Value": "alpha"}])
    root.create_secret(Name=others, SecretString="b", Tags=[{"Key": "team", "Value": "beta"}])
    sm, arn = make_user(
        policy(
            statement(
                "Allow",
                "secretsmanager:GetSecretValue",
                condition={"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
            )
        ),
        tags={"team": "alpha"},
    )
    assert sm.get_secret_value(SecretId=ours)["SecretString"] == "a"
    for secret_id in (others, unique("tagged")):
        with pytest.raises(ClientError) as excinfo:
            sm.get_secret_value(SecretId=secret_id)
        assert denied(excinfo) == no_allow(arn, "GetSecretValue", secret_id)
    # The tag moves, and so does the permission, at once.
    root.tag_resource(SecretId=others, Tags=[{"Key": "team", "Value": "alpha"}])
    assert sm.get_secret_value(SecretId=others)["SecretString"] == "b"


def test_an_explicit_deny_wins_over_an_allow(root, make_user) -> None:
    guarded = unique("guarded")
    root.create_secret(Name=guarded, SecretString="x")
    sm, arn = make_user(
        policy(statement("Allow", "secretsmanager:*")),
        policy(statement("Deny", "secretsmanager:GetSecretValue", f"{ARN_PREFIX}guarded/*")),
    )
    assert sm.describe_secret(SecretId=guarded)["Name"] == guarded
    assert sm.list_secrets()["SecretList"] is not None
    with pytest.raises(ClientError) as excinfo:
        sm.get_secret_value(SecretId=guarded)
    assert denied(excinfo) == (
        f"User: {arn} is not authorized to perform: secretsmanager:GetSecretValue on "
        f"resource: {guarded} with an explicit deny in an identity-based policy"
    )


def test_conditions_on_the_request_and_the_connection(root, make_user) -> None:
    name = unique("conditions")
    root.create_secret(Name=name, SecretString="v")
    sm, arn = make_user(
        policy(
            statement(
                "Allow",
                "secretsmanager:GetSecretValue",
                condition={"StringEquals": {"secretsmanager:VersionStage": "AWSCURRENT"}},
            ),
            statement(
                "Deny",
                "secretsmanager:*",
                condition={"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
            ),
            statement(
                "Allow",
                "secretsmanager:CreateSecret",
                condition={"StringEquals": {"aws:RequestTag/owner": "${aws:username}"}},
            ),
        )
    )
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"] == "v"
    with pytest.raises(ClientError) as excinfo:
        sm.get_secret_value(SecretId=name)  # no VersionStage in the request
    assert denied(excinfo) == no_allow(arn, "GetSecretValue", name)
    user_name = arn.rsplit("/", 1)[1]
    created = unique("created")
    sm.create_secret(Name=created, SecretString="x", Tags=[{"Key": "owner", "Value": user_name}])
    with pytest.raises(ClientError) as excinfo:
        sm.create_secret(Name=unique("created"), Tags=[{"Key": "owner", "Value": "someone"}])
    assert "secretsmanager:CreateSecret" in denied(excinfo)


def test_a_deny_for_another_network_refuses_everything(make_user) -> None:
    sm, arn = make_user(
        policy(statement("Allow", "secretsmanager:*")),
        policy(
            statement(
                "Deny",
                "secretsmanager:*",
                condition={"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}},
            )
        ),
    )
    with pytest.raises(ClientError) as excinfo:
        sm.list_secrets()
    assert denied(excinfo) == (
        f"User: {arn} is not authorized to perform: secretsmanager:ListSecrets "
        "with an explicit deny in an identity-based policy"
    )


def test_batch_reports_each_refusal_in_errors(root, make_user) -> None:
    mine, theirs = unique("batch"), unique("nobatch")
    root.create_secret(Name=mine, SecretString="m")
    root.create_secret(Name=theirs, SecretString="t")
    sm, arn = make_user(
        policy(
            statement("Allow", "secretsmanager:BatchGetSecretValue"),
            statement("Allow", "secretsmanager:GetSecretValue", f"{ARN_PREFIX}batch/*"),
        )
    )
    result = sm.batch_get_secret_value(SecretIdList=[mine, theirs])
    assert [v["Name"] for v in result["SecretValues"]] == [mine]
    assert result["Errors"] == [
        {
            "SecretId": theirs,
            "ErrorCode": "AccessDeniedException",
            "Message": no_allow(arn, "GetSecretValue", theirs),
        }
    ]
    # Filters list secrets: that takes ListSecrets too.
    with pytest.raises(ClientError) as excinfo:
        sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": [mine]}])
    assert denied(excinfo) == no_allow(arn, "ListSecrets", None)


def test_a_user_without_iam_permissions_cannot_grant_itself_any(make_user) -> None:
    iam, arn = make_user(policy(statement("Allow", "secretsmanager:*")), service="iam")
    name = arn.rsplit("/", 1)[1]
    with pytest.raises(ClientError) as excinfo:
        iam.put_user_policy(
            UserName=name, PolicyName="more", PolicyDocument=policy(statement("Allow", "*"))
        )
    error = excinfo.value.response["Error"]
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Code"] == "AccessDenied"
    assert error["Message"] == (
        f"User: {arn} is not authorized to perform: iam:PutUserPolicy on resource: {arn} "
        "because no identity-based policy allows the iam:PutUserPolicy action"
    )


def test_an_iam_admin_user_manages_users(make_user) -> None:
    iam, _ = make_user(policy(statement("Allow", "iam:*")), service="iam")
    name = f"managed-{secrets.token_hex(4)}"
    iam.create_user(UserName=name)
    assert iam.get_user(UserName=name)["User"]["UserName"] == name


def test_a_policy_change_takes_effect_on_the_next_request(
    shared_server: ServerProcess, root, make_user
) -> None:
    name = unique("revoked")
    root.create_secret(Name=name, SecretString="v")
    sm, arn = make_user(policy(statement("Allow", "secretsmanager:GetSecretValue")))
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    shared_server.client("iam").put_user_policy(
        UserName=arn.rsplit("/", 1)[1],
        PolicyName="p0",
        PolicyDocument=policy(statement("Deny", "secretsmanager:GetSecretValue")),
    )
    with pytest.raises(ClientError) as excinfo:
        sm.get_secret_value(SecretId=name)
    assert "explicit deny in an identity-based policy" in denied(excinfo)


def resource_policy(effect: str, principal, action="secretsmanager:GetSecretValue") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": effect,
                    "Principal": {"AWS": principal},
                    "Action": action,
                    "Resource": "*",
                }
            ],
        }
    )


def test_a_resource_policy_naming_a_user_lets_it_in_without_an_identity_policy(
    root, make_user
) -> None:
    shared = unique("shared")
    root.create_secret(Name=shared, SecretString="s")
    named, named_arn = make_user()
    stranger, stranger_arn = make_user()
    root.put_resource_policy(SecretId=shared, ResourcePolicy=resource_policy("Allow", named_arn))
    assert named.get_secret_value(SecretId=shared)["SecretString"] == "s"
    with pytest.raises(ClientError) as excinfo:
        stranger.get_secret_value(SecretId=shared)
    assert denied(excinfo) == no_allow(stranger_arn, "GetSecretValue", shared)
    # Naming the account delegates to its identity policies: on its own it lets no user in.
    root.put_resource_policy(
        SecretId=shared, ResourcePolicy=resource_policy("Allow", f"arn:aws:iam::{ACCOUNT}:root")
    )
    with pytest.raises(ClientError) as excinfo:
        named.get_secret_value(SecretId=shared)
    assert denied(excinfo) == no_allow(named_arn, "GetSecretValue", shared)


def test_a_deny_in_the_resource_policy_wins_over_an_identity_allow(root, make_user) -> None:
    locked = unique("locked")
    root.create_secret(Name=locked, SecretString="l")
    sm, arn = make_user(policy(statement("Allow", "secretsmanager:*")))
    assert sm.get_secret_value(SecretId=locked)["SecretString"] == "l"
    root.put_resource_policy(SecretId=locked, ResourcePolicy=resource_policy("Deny", arn))
    with pytest.raises(ClientError) as excinfo:
        sm.get_secret_value(SecretId=locked)
    assert denied(excinfo) == (
        f"User: {arn} is not authorized to perform: secretsmanager:GetSecretValue on "
        f"resource: {locked} with an explicit deny in a resource-based policy"
    )
    # Other actions, and the root, are untouched by it.
    assert sm.describe_secret(SecretId=locked)["Name"] == locked
    assert root.get_secret_value(SecretId=locked)["SecretString"] == "l"
    root.delete_resource_policy(SecretId=locked)
    assert sm.get_secret_value(SecretId=locked)["SecretString"] == "l"


def test_a_user_allowed_its_own_iam_record_sees_it_without_naming_itself(make_user) -> None:
    own = f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"
    iam, arn = make_user(
        policy(statement("Allow", ["iam:GetUser", "iam:ListAccessKeys"], own)), service="iam"
    )
    name = arn.rsplit("/", 1)[1]
    assert iam.get_user()["User"]["Arn"] == arn
    keys = iam.list_access_keys()["AccessKeyMetadata"]
    assert [k["UserName"] for k in keys] == [name]
    with pytest.raises(ClientError) as excinfo:
        iam.get_user(UserName="someone-else")
    assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
