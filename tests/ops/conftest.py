"""A live server with one rotation failing, one overdue and one in order, and an agent.

The overdue rotation is what a server that was down through a rotation window leaves: its
secret is set up through the store with a clock three days back, with a daily window that
is twelve hours away now, so the running scheduler has nothing to do about it.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from secretsd.service import SecretsService
from secretsd.store import CREATE, open_storage
from tests.agent.support import AgentProcess, start_agent, write_config
from tests.support.metrics import METRICS_TOKEN
from tests.support.server import ServerProcess, start_server
from tests.support.wait import wait_for

DAY = 86400.0
GENERIC = "arn:aws:lambda:us-east-1:123456789012:function:secretsd-generic"


@dataclass
class Estate:
    server: ServerProcess
    agent: AgentProcess
    failing: str
    overdue: str
    in_order: str
    plain: str


def make_overdue(data_dir, name: str) -> None:
    """A secret whose rotation window closed days ago without a rotation."""
    storage = open_storage(data_dir, env={}, mode=CREATE)
    try:
        service = SecretsService(storage, clock=lambda: datetime.now(UTC).timestamp() - 3 * DAY)
        service.call(
            "CreateSecret",
            {
                "Name": name,
                "SecretString": json.dumps({"k": "v"}),
                "ClientRequestToken": str(uuid.uuid4()),
            },
        )
        hour = (datetime.now(UTC).hour + 12) % 24
        rules = {"ScheduleExpression": f"cron(0 {hour} * * ? *)", "Duration": "1h"}
        service.call(
            "RotateSecret",
            {
                "SecretId": name,
                "RotationLambdaARN": GENERIC,
                "RotationRules": rules,
                "RotateImmediately": False,
                "ClientRequestToken": str(uuid.uuid4()),
            },
        )
    finally:
        storage.close()


def describe(server: ServerProcess):
    """A boto3 client that knows secretsd's DescribeRotation (as `secretsd status` makes)."""
    from secretsd.status.checks import client

    return client(server.endpoint_url, "us-east-1", 10, server.credentials_file, "secretsd")


@pytest.fixture(scope="package")
def estate(tmp_path_factory) -> Estate:
    base = tmp_path_factory.mktemp("estate")
    fails = base / "fails.py"
    fails.write_text("import sys\nsys.stdin.read()\nsys.exit('database refused: boom')\n")
    config = base / "rotation.toml"
    config.write_text(
        f"[functions.always-fails]\ncommand = [{json.dumps(sys.executable)}, "
        f"{json.dumps(str(fails))}]\n"
    )
    token = base / "metrics-token"
    token.write_text(METRICS_TOKEN)
    overdue = f"ops/overdue-{uuid.uuid4().hex[:6]}"
    make_overdue(base / "data", overdue)
    server = start_server(
        base / "data",
        "--rotation-config",
        str(config),
        "--scheduler-interval",
        "0.2",
        "--metrics",
        "--metrics-token-file",
        str(token),
        "--metrics-secret-names",
    )
    agent = None
    try:
        sm = server.client()
        failing, in_order, plain = (
            f"ops/{kind}-{uuid.uuid4().hex[:6]}" for kind in ("failing", "in-order", "plain")
        )
        for name in (failing, in_order, plain):
            sm.create_secret(Name=name, SecretString=json.dumps({"api_key": "first"}))
        sm.rotate_secret(
            SecretId=in_order,
            RotationLambdaARN=GENERIC,
            RotationRules={"AutomaticallyAfterDays": 30},
        )
        sm.rotate_secret(
            SecretId=failing,
            RotationLambdaARN="always-fails",
            RotationRules={"AutomaticallyAfterDays": 30},
        )
        rotations = describe(server)
        wait_for(
            lambda: (
                rotations.describe_rotation(SecretId=in_order)["Condition"] == "ok"
                and "LastRotatedDate" in rotations.describe_rotation(SecretId=in_order)
            )
        )
        wait_for(lambda: rotations.describe_rotation(SecretId=failing)["Condition"] == "failing")
        agent = start_agent(write_config(base / "agent"), dict(server.env))
        yield Estate(server, agent, failing, overdue, in_order, plain)
    finally:
        if agent is not None:
            agent.stop()
        server.stop()
