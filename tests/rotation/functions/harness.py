"""Drive rotation functions the way the service does, against a live secretsd server.

A rotation is: the service puts a valueless AWSPENDING placeholder whose version id is the
token (the orchestrator does this on the store directly, so this harness does too), then
invokes the function with each of the four steps. The functions reach the server only
through boto3, pointed at it by the environment.
"""

from __future__ import annotations

import configparser
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from secretsd.model import versions
from secretsd.model.secret import AWSPENDING, Secret
from secretsd.service.edits import secret_change
from secretsd.store import open_storage
from secretsd.store.base import Conflict
from tests.support.server import REGION, ServerProcess

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
Handler = Callable[[dict[str, Any], Any], Any]


def point_functions_at(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a function gets from the orchestrator: endpoint, keys, region."""
    parser = configparser.ConfigParser()
    parser.read(server.credentials_file)
    profile = parser["secretsd"]
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "SECRETS_MANAGER_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", profile["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", profile["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", server.endpoint_url)


def edit_stored(
    server: ServerProcess, secret_id: str, edit: Callable[[Secret], list[str] | None]
) -> None:
    """Change a secret's document on the store, as the orchestrator does; ``edit`` returns
    the version ids whose values to drop, or None to leave the secret alone."""
    storage = open_storage(server.data_dir)
    try:
        for _ in range(20):
            stored = storage.load_by_arn(secret_id) or storage.load_by_name(secret_id)
            assert stored is not None, f"no secret {secret_id}"
            secret = Secret.from_document(stored.document)
            dropped = edit(secret)
            if dropped is None:
                return
            change = secret_change(secret, stored.revision, drop_values=dropped)
            try:
                storage.commit(change)
                return
            except Conflict:
                continue
        raise AssertionError("the secret kept changing under the edit")
    finally:
        storage.close()


def add_placeholder(server: ServerProcess, secret_id: str, token: str) -> None:
    """Put the valueless AWSPENDING version, as RotateSecret does before invoking a function."""

    def edit(secret: Secret) -> list[str] | None:
        if token in secret.versions:
            return None
        return versions.add_version(secret, token, time.time(), [AWSPENDING], has_value=False)

    edit_stored(server, secret_id, edit)


def set_rotation_enabled(server: ServerProcess, secret_id: str, enabled: bool) -> None:
    def edit(secret: Secret) -> list[str]:
        secret.rotation_enabled = enabled
        return []

    edit_stored(server, secret_id, edit)


@dataclass
class Rotations:
    server: ServerProcess
    sm: Any

    def create(self, name_prefix: str, value: dict[str, Any]) -> str:
        """A new secret with a unique name; returns its ARN."""
        name = f"{name_prefix}-{uuid.uuid4().hex[:10]}"
        return self.sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]

    def begin(self, arn: str, token: str | None = None) -> str:
        token = token or str(uuid.uuid4())
        add_placeholder(self.server, arn, token)
        return token

    def event(self, arn: str, token: str, step: str) -> dict[str, str]:
        return {"Step": step, "SecretId": arn, "ClientRequestToken": token}

    def run_steps(self, handler: Handler, arn: str, token: str, steps=STEPS) -> None:
        for step in steps:
            handler(self.event(arn, token, step), None)

    def assert_each_step_idempotent(
        self, handler: Handler, arn: str, token: str, state: Callable[[], object]
    ) -> None:
        """Run every step twice: the second run of a step must leave ``state()`` unchanged."""
        for step in STEPS:
            handler(self.event(arn, token, step), None)
            once = state()
            handler(self.event(arn, token, step), None)
            assert state() == once, f"{step} changed something when run again"

    def rotate(self, handler: Handler, arn: str) -> str:
        """One whole rotation; the service then takes AWSPENDING off, as it does on success."""
        token = self.begin(arn)
        self.run_steps(handler, arn, token)
        self.finish(arn, token)
        return token

    def finish(self, arn: str, token: str) -> None:
        stages = self.stages(arn)
        if AWSPENDING in stages.get(token, []):
            self.sm.update_secret_version_stage(
                SecretId=arn, VersionStage=AWSPENDING, RemoveFromVersionId=token
            )

    def value(self, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
        return json.loads(
            self.sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]
        )

    def stages(self, arn: str) -> dict[str, list[str]]:
        return self.sm.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
