"""An IAM user in the console: signed in with its own key, allowed exactly what its policies
allow through the API, refused in AWS's words, and signed out when its key is deactivated."""

from __future__ import annotations

import html
import json
import secrets
from urllib.parse import urlencode

from tests.api.console.test_actions import act, flash
from tests.api.console.test_security import secret_path
from tests.support.console import ConsoleClient, over_http

ACCOUNT = "123456789012"


def user_with(server, *actions: str, resource: str) -> tuple[dict, str]:
    """A user allowed ``actions`` on ``resource``, and ListSecrets (which has no resource)."""
    iam = server.client("iam")
    name = f"console-{secrets.token_hex(4)}"
    iam.create_user(UserName=name)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": list(actions), "Resource": resource},
            {"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"},
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    return iam.create_access_key(UserName=name)["AccessKey"], name


def test_an_iam_user_gets_what_its_policies_allow(console_server):
    root = console_server.client()
    mine, theirs = (f"{kind}/{secrets.token_hex(4)}" for kind in ("team", "other"))
    root.create_secret(Name=mine, SecretString='{"token": "mine"}')
    root.create_secret(Name=theirs, SecretString='{"token": "theirs"}')
    key, user = user_with(
        console_server,
        "secretsmanager:DescribeSecret",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:DescribeRotation",
        "secretsmanager:GetSecretValue",
        resource=f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:team/*",
    )
    client = ConsoleClient(over_http(console_server.endpoint_url), console_server.endpoint_url)
    assert client.sign_in(key["AccessKeyId"], key["SecretAccessKey"]).status == 303
    assert f"console-{user.split('-')[1]}" in client.get("/console/secrets").body

    # Its own secret: shown and revealed.
    page = client.get(secret_path(mine))
    assert page.status == 200
    revealed = client.post("/console/secret/reveal", {"id": mine, "csrf": page.csrf})
    assert "mine" in html.unescape(revealed.body)
    # Not allowed to write it: refused as the API refuses, nothing changes.
    after = act(client, "put-value", mine, value="planted")
    assert flash(after).startswith(
        f"User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: "
        "secretsmanager:PutSecretValue on resource: "
    )
    assert root.get_secret_value(SecretId=mine)["SecretString"] == '{"token": "mine"}'
    # Another team's secret: refused, whether it exists or not.
    other = client.get(secret_path(theirs))
    missing = client.get(secret_path(f"other/{secrets.token_hex(4)}"))
    assert other.status == missing.status == 400
    assert "is not authorized to perform: secretsmanager:DescribeSecret" in html.unescape(
        other.body
    )
    # The list shows what ListSecrets shows it (the whole list: ListSecrets is allowed).
    listing = client.get("/console/secrets?" + urlencode({"q": mine})).body
    assert f">{mine}</a>" in listing and "badge-ok" not in listing
    assert ">Not rotating</span>" in listing
    # Listed (ListSecrets is allowed on everything), but not described: no badge to show.
    listing = client.get("/console/secrets?" + urlencode({"q": theirs})).body
    assert f">{theirs}</a>" in listing and ">Not shown</span>" in listing


def test_a_deactivated_key_ends_its_console_sessions(console_server):
    key, user = user_with(console_server, "secretsmanager:DescribeRotation", resource="*")
    client = ConsoleClient(over_http(console_server.endpoint_url), console_server.endpoint_url)
    assert client.sign_in(key["AccessKeyId"], key["SecretAccessKey"]).status == 303
    assert client.get("/console/secrets").status == 200
    console_server.client("iam").update_access_key(
        UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive"
    )
    reply = client.get("/console/secrets")
    assert reply.status == 303 and reply.header("location") == "/console/sign-in?ended=1"
    again = ConsoleClient(over_http(console_server.endpoint_url), console_server.endpoint_url)
    assert again.sign_in(key["AccessKeyId"], key["SecretAccessKey"]).status == 401


def test_a_user_who_may_only_describe_sees_the_page_without_the_rest(console_server):
    root = console_server.client()
    name = f"team/{secrets.token_hex(4)}"
    root.create_secret(Name=name, SecretString='{"token": "unseen-value"}')
    key, _ = user_with(console_server, "secretsmanager:DescribeSecret", resource="*")
    client = ConsoleClient(over_http(console_server.endpoint_url), console_server.endpoint_url)
    assert client.sign_in(key["AccessKeyId"], key["SecretAccessKey"]).status == 303
    page = client.get(secret_path(name))
    assert page.status == 200
    assert ">Not shown</span>" in page.body
    assert "AWSCURRENT" in page.body  # the staged versions, from DescribeSecret
    revealed = client.post("/console/secret/reveal", {"id": name, "csrf": page.csrf})
    assert "is not authorized to perform: secretsmanager:GetSecretValue" in html.unescape(
        revealed.body
    )
    assert "unseen-value" not in revealed.body
