"""secretsd-generic, and the prologue every function shares, against a live server."""

from __future__ import annotations

import json
import socket
import threading
import types
import uuid

import pytest

from secretsd.rotation.functions import FUNCTIONS, generic
from secretsd.rotation.functions.common import RotationError
from tests.rotation.functions.harness import set_rotation_enabled

handler = generic.lambda_handler


def test_rotation_replaces_the_api_key_and_keeps_the_rest(rotations):
    arn = rotations.create("generic", {"api_key": "first-key", "client_id": "abc"})

    token = rotations.rotate(handler, arn)

    current = rotations.value(arn)
    assert current["client_id"] == "abc"
    assert current["api_key"] != "first-key"
    assert len(current["api_key"]) == 32
    assert current["api_key"].isalnum()
    assert rotations.value(arn, "AWSPREVIOUS")["api_key"] == "first-key"
    assert rotations.stages(arn)[token] == ["AWSCURRENT"]


def test_the_secret_names_its_own_field(rotations, monkeypatch):
    monkeypatch.setenv("SECRET_FIELD", "ignored")
    arn = rotations.create("generic-field", {"rotation_field": "token", "token": "t0"})

    rotations.rotate(handler, arn)

    current = rotations.value(arn)
    assert set(current) == {"rotation_field", "token"}
    assert current["token"] != "t0"


def test_the_environment_names_the_field(rotations, monkeypatch):
    monkeypatch.setenv("SECRET_FIELD", "bearer")
    monkeypatch.setenv("PASSWORD_LENGTH", "48")
    arn = rotations.create("generic-env", {"bearer": "b0", "api_key": "stays"})

    rotations.rotate(handler, arn)

    current = rotations.value(arn)
    assert current["api_key"] == "stays"
    assert len(current["bearer"]) == 48


def test_every_step_is_idempotent(rotations):
    arn = rotations.create("generic-idem", {"api_key": "k0"})
    token = rotations.begin(arn)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        handler(rotations.event(arn, token, step), None)
        once = (rotations.stages(arn), rotations.value(arn, "AWSPENDING"))
        handler(rotations.event(arn, token, step), None)
        assert (rotations.stages(arn), rotations.value(arn, "AWSPENDING")) == once
    new = rotations.value(arn)
    rotations.run_steps(handler, arn, token)
    assert rotations.value(arn) == new
    assert new["api_key"] != "k0"


def test_a_value_that_is_not_json_fails_without_quoting_it(rotations):
    name = f"generic-text-{uuid.uuid4().hex[:8]}"
    arn = rotations.sm.create_secret(Name=name, SecretString="hunter2-plain-text")["ARN"]
    token = rotations.begin(arn)

    with pytest.raises(RotationError) as info:
        handler(rotations.event(arn, token, "createSecret"), None)

    assert "AWSCURRENT value" in str(info.value)
    assert "not valid JSON" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_a_pending_value_without_the_field_fails_set_secret(rotations):
    arn = rotations.create("generic-bad-pending", {"api_key": "k0"})
    token = rotations.begin(arn)
    rotations.sm.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps({"other": "x"}),
        VersionStages=["AWSPENDING"],
    )

    with pytest.raises(RotationError, match="no text in its field 'api_key'"):
        handler(rotations.event(arn, token, "setSecret"), None)
    assert rotations.value(arn) == {"api_key": "k0"}


# -- the prologue ---------------------------------------------------------------------------


def test_a_token_that_is_no_version_is_refused(rotations):
    arn = rotations.create("prologue-unknown", {"api_key": "k0"})
    token = str(uuid.uuid4())

    with pytest.raises(RotationError, match=f"{token} has no stage"):
        handler(rotations.event(arn, token, "createSecret"), None)


def test_a_token_that_is_not_pending_is_refused(rotations):
    arn = rotations.create("prologue-custom", {"api_key": "k0"})
    token = str(uuid.uuid4())
    rotations.sm.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString="{}", VersionStages=["CUSTOM"]
    )

    with pytest.raises(RotationError, match="not set as AWSPENDING"):
        handler(rotations.event(arn, token, "setSecret"), None)


def test_a_token_already_current_changes_nothing(rotations):
    arn = rotations.create("prologue-current", {"api_key": "k0"})
    (token,) = rotations.stages(arn)
    before = rotations.stages(arn)

    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        handler(rotations.event(arn, token, step), None)

    assert rotations.stages(arn) == before
    assert rotations.value(arn) == {"api_key": "k0"}


def test_rotation_switched_off_is_refused(rotations):
    arn = rotations.create("prologue-off", {"api_key": "k0"})
    token = rotations.begin(arn)
    set_rotation_enabled(rotations.server, arn, False)

    with pytest.raises(RotationError, match="not enabled for rotation"):
        handler(rotations.event(arn, token, "createSecret"), None)

    set_rotation_enabled(rotations.server, arn, True)
    rotations.run_steps(handler, arn, token)
    assert rotations.value(arn)["api_key"] != "k0"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"Step": "createSecret", "SecretId": "x"}, "missing ClientRequestToken"),
        ({"Step": "bogus", "SecretId": "x", "ClientRequestToken": "t"}, "Invalid step"),
        ([], "must be a JSON object"),
    ],
)
def test_a_malformed_event_is_refused(rotations, event, message):
    with pytest.raises(RotationError, match=message):
        handler(event, None)


def test_a_lambda_context_object_is_accepted(rotations):
    arn = rotations.create("prologue-context", {"api_key": "k0"})
    token = rotations.begin(arn)
    context = types.SimpleNamespace(function_name="secretsd-generic", aws_request_id="r1")

    rotations.run_steps(lambda e, _: handler(e, context), arn, token)

    assert rotations.value(arn)["api_key"] != "k0"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_secrets_manager_endpoint_wins_over_the_aws_variable(rotations, monkeypatch):
    arn = rotations.create("prologue-endpoint", {"api_key": "k0"})
    token = rotations.begin(arn)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", rotations.server.endpoint_url)

    rotations.run_steps(handler, arn, token)

    assert rotations.value(arn)["api_key"] != "k0"


def test_an_unreachable_secrets_manager_fails_naming_it(rotations, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    event = {"Step": "createSecret", "SecretId": "s", "ClientRequestToken": str(uuid.uuid4())}

    with pytest.raises(RotationError, match="Secrets Manager DescribeSecret on s failed"):
        handler(event, None)


def test_every_named_function_has_a_handler():
    import importlib

    for name, module in FUNCTIONS.items():
        loaded = importlib.import_module(f"secretsd.rotation.functions.{module}")
        assert callable(loaded.lambda_handler), name


def test_rotations_run_in_parallel_threads(rotations):
    arns = [rotations.create("generic-parallel", {"api_key": f"k{i}"}) for i in range(8)]
    tokens = [rotations.begin(arn) for arn in arns]
    errors: list[BaseException] = []

    def rotate(arn: str, token: str) -> None:
        try:
            rotations.run_steps(handler, arn, token)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=rotate, args=pair) for pair in zip(arns, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    for i, (arn, token) in enumerate(zip(arns, tokens, strict=True)):
        assert rotations.value(arn)["api_key"] != f"k{i}"
        assert "AWSCURRENT" in rotations.stages(arn)[token]
