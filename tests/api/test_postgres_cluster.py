"""Two server nodes sharing one PostgreSQL store: one view of the secrets, one rotation."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import uuid

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.rotation.test_managed_rotation import HISTORY, wait_for
from tests.support.server import start_server

pytestmark = pytest.mark.postgres
DSN = "postgresql://postgres@127.0.0.1:5432/test"
AUDIT_VERIFY = [sys.executable, "-m", "secretsd.cli", "audit", "verify"]


class Cluster(tuple):
    def __new__(cls, first, second, schema, env):
        made = super().__new__(cls, (first, second))
        made.schema, made.env = schema, env
        return made


@pytest.fixture
def cluster(tmp_path, postgres_available):
    schema = f"cluster_{uuid.uuid4().hex[:10]}"
    env = dict(os.environ, SECRETSD_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode())
    args = ("--database-url", DSN, "--database-schema", schema, "--scheduler-interval", "0.1")
    first = start_server(tmp_path / "a", *args, env=env)
    # Both nodes accept the same access keys: the second uses the first one's file.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "credentials").write_bytes((tmp_path / "a" / "credentials").read_bytes())
    os.chmod(tmp_path / "b" / "credentials", 0o600)
    second = start_server(tmp_path / "b", *args, env=env)
    yield Cluster(first, second, schema, env)
    for node in (first, second):
        node.stop()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_nodes_share_secrets_and_writes(cluster):
    a, b = (node.client() for node in cluster)
    name = f"shared/{uuid.uuid4().hex[:8]}"
    a.create_secret(Name=name, SecretString="from-a")
    assert b.get_secret_value(SecretId=name)["SecretString"] == "from-a"
    b.put_secret_value(SecretId=name, SecretString="from-b")
    assert a.get_secret_value(SecretId=name)["SecretString"] == "from-b"
    assert {s["Name"] for s in a.list_secrets()["SecretList"]} == {name}


def test_a_rotation_runs_once_across_the_cluster(cluster):
    a, b = (node.client() for node in cluster)
    name = f"shared/{uuid.uuid4().hex[:8]}"
    a.create_secret(Name=name, SecretString=json.dumps({"api_key": "k0"}))
    token = a.rotate_secret(SecretId=name, RotationLambdaARN="secretsd-generic")["VersionId"]
    # The other node sees the rotation in progress in the shared store and tries it too;
    # the cluster-wide claim lets only one run it.
    wait_for(
        lambda: b.describe_secret(SecretId=name)["VersionIdsToStages"].get(token) == ["AWSCURRENT"]
    )
    value = json.loads(b.get_secret_value(SecretId=name)["SecretString"])
    assert value["api_key"] != "k0"
    out = subprocess.run(
        [*HISTORY, name, "--json", "--data-dir", str(cluster[0].data_dir)]
        + ["--database-url", DSN, "--database-schema", cluster.schema],
        capture_output=True,
        text=True,
        check=True,
        env=cluster.env,
    ).stdout
    attempts = [json.loads(line) for line in out.splitlines()]
    attempts = [e for e in attempts if e["kind"] == "attempt"]
    assert [e["outcome"] for e in attempts] == ["started", "succeeded"]


def test_both_nodes_append_to_one_audit_chain_in_the_database(cluster):
    from concurrent.futures import ThreadPoolExecutor

    clients = [node.client() for node in cluster]
    name = f"shared/{uuid.uuid4().hex[:8]}"
    clients[0].create_secret(Name=name, SecretString="MARKER-shared-audit")

    def reads(n: int) -> None:
        for _ in range(20):
            clients[n % 2].get_secret_value(SecretId=name)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(reads, range(4)))
    assert not (cluster[0].data_dir / "audit.log").exists()
    args = ["--database-url", DSN, "--database-schema", cluster.schema]
    verify = subprocess.run([*AUDIT_VERIFY, *args], capture_output=True, text=True, env=cluster.env)
    assert verify.returncode == 0, verify.stderr
    assert "81 records" in verify.stdout
    with psycopg.connect(DSN, autocommit=True) as conn:
        rows = conn.execute(f'SELECT record FROM "{cluster.schema}".audit_log').fetchall()
        assert not any("MARKER" in row[0] for row in rows)
        conn.execute(
            f'UPDATE "{cluster.schema}".audit_log SET record = replace(record, '
            "'GetSecretValue', 'ListSecrets') WHERE sequence = 7"
        )
    tampered = subprocess.run(
        [*AUDIT_VERIFY, *args], capture_output=True, text=True, env=cluster.env
    )
    assert tampered.returncode == 1
    assert "audit_log row 7: record 7" in tampered.stderr


def test_a_user_made_on_one_node_signs_on_the_other_until_deactivated_there(cluster):
    first, second = cluster
    iam = first.client("iam")
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    secret = f"shared/{uuid.uuid4().hex[:8]}"
    first.client().create_secret(Name=secret, SecretString="v")
    on_second = second.client_for_key(key)
    assert on_second.describe_secret(SecretId=secret)["Name"] == secret
    with pytest.raises(ClientError) as excinfo:
        on_second.get_secret_value(SecretId=secret)
    assert excinfo.value.response["Error"]["Code"] == "AccessDeniedException"
    # Deactivated on the first node: the very next request to the second is refused.
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as excinfo:
        on_second.describe_secret(SecretId=secret)
    assert excinfo.value.response["Error"]["Code"] == "UnrecognizedClientException"
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert on_second.describe_secret(SecretId=secret)["Name"] == secret
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as excinfo:
        second.client_for_key(key, "sts").get_caller_identity()
    assert excinfo.value.response["Error"]["Code"] == "InvalidClientTokenId"
