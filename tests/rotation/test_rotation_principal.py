"""Rotation functions run as a narrow principal: the four steps on their one secret (and the
master secret it names), nothing else, with a key that dies with the invocation."""

from __future__ import annotations

import json
import sys
import uuid

import boto3
from botocore.exceptions import ClientError

from secretsd.model.policy import RequestContext
from secretsd.service.sessions import SessionKeys
from tests.support.server import start_server
from tests.support.wait import wait_for

PROBE = """
import json, os, sys
import boto3
from botocore.exceptions import ClientError

event = json.load(sys.stdin)
endpoint = os.environ["SECRETS_MANAGER_ENDPOINT"]
sm = boto3.client("secretsmanager", endpoint_url=endpoint)
sts = boto3.client("sts", endpoint_url=endpoint)
found = {"step": event["Step"], "key": os.environ["AWS_ACCESS_KEY_ID"],
         "secret_key": os.environ["AWS_SECRET_ACCESS_KEY"]}
found["arn"] = sts.get_caller_identity()["Arn"]
def attempt(name, call):
    try:
        call()
        found[name] = "ok"
    except ClientError as exc:
        found[name] = exc.response["Error"]["Code"]
attempt("own", lambda: sm.get_secret_value(SecretId=event["SecretId"]))
attempt("master", lambda: sm.get_secret_value(SecretId=os.environ["MASTER"]))
attempt("other", lambda: sm.get_secret_value(SecretId=os.environ["OTHER"]))
master = os.environ["MASTER"]
attempt("write_master", lambda: sm.put_secret_value(SecretId=master, SecretString="x"))
attempt("list", lambda: sm.list_secrets())
attempt("password", lambda: sm.get_random_password())
with open(os.environ["OUT"], "a") as out:
    out.write(json.dumps(found) + "\\n")
sys.exit("probe done")
"""


def test_a_rotation_function_acts_only_on_its_secret_and_master(tmp_path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    out = tmp_path / "out.jsonl"
    master, other = f"rot/master-{uuid.uuid4().hex[:6]}", f"rot/other-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "rotation.toml"
    config.write_text(
        f"[functions.probe]\ncommand = [{json.dumps(sys.executable)}, {json.dumps(str(probe))}]\n"
        f"[functions.probe.environment]\nOUT = {json.dumps(str(out))}\n"
        f"MASTER = {json.dumps(master)}\nOTHER = {json.dumps(other)}\n"
    )
    server = start_server(tmp_path / "data", "--rotation-config", str(config))
    try:
        sm = server.client()
        master_arn = sm.create_secret(Name=master, SecretString='{"password": "m"}')["ARN"]
        sm.create_secret(Name=other, SecretString="other")
        name = f"rot/app-{uuid.uuid4().hex[:6]}"
        sm.create_secret(
            Name=name, SecretString=json.dumps({"password": "p", "masterarn": master_arn})
        )
        sm.rotate_secret(SecretId=name, RotationLambdaARN="probe")
        line = wait_for(lambda: out.exists() and out.read_text().splitlines()[:1])
        found = json.loads(line[0])
        assert found["step"] == "createSecret"
        session = "rotation-" + name.replace("/", "-")
        role = "arn:aws:sts::123456789012:assumed-role/secretsd-rotation"
        assert found["arn"] == f"{role}/{session}"
        assert found["own"] == "ok"
        assert found["master"] == "ok"
        assert found["password"] == "ok"
        assert found["other"] == "AccessDeniedException"
        assert found["write_master"] == "AccessDeniedException"
        assert found["list"] == "AccessDeniedException"
        # Once the invocation is over, its key is refused.
        stale = boto3.client(
            "secretsmanager",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=found["key"],
            aws_secret_access_key=found["secret_key"],
        )

        def refused() -> str | None:
            try:
                stale.get_secret_value(SecretId=name)
            except ClientError as exc:
                return exc.response["Error"]["Code"]
            return None

        assert wait_for(refused) == "UnrecognizedClientException"
    finally:
        server.stop()


def test_a_session_is_an_assumed_role_to_policies() -> None:
    sessions = SessionKeys("123456789012")
    key_id, _ = sessions.issue("secretsd-rotation", "rotation-db-app", [])
    found = sessions.lookup(key_id)
    assert found is not None
    caller = found[1]
    context = RequestContext("secretsmanager:GetSecretValue", "*", caller)
    assert caller.type == "AssumedRole"
    assert context.lookup("aws:principaltype") == "AssumedRole"
    assert context.lookup("aws:username") is None
    assert context.lookup("aws:userid").endswith(":rotation-db-app")
    sessions.revoke(key_id)
    assert sessions.lookup(key_id) is None
