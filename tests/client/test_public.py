"""The client's public surface and its secret-value type."""

from __future__ import annotations

import inspect
import pickle

import pytest

import secretsd.client as client
from secretsd.client import ClientError, SecretValue

VALUE = 'hunter2-"quoted"-value'


def test_exported_names_are_exactly_the_public_api():
    assert sorted(client.__all__) == [
        "AgentRefused",
        "ClientError",
        "CostEstimate",
        "CostReport",
        "HealthReport",
        "RequestRefused",
        "RotationStatus",
        "SecretNotFound",
        "SecretValue",
        "SecretsClient",
        "SourceUnavailable",
        "SourceUsage",
        "Usage",
        "connect_mysql",
        "connect_postgres",
        "connect_surviving_rotation",
        "estimate_cost",
        "mysql_refused",
        "postgres_refused",
        "rotation_status",
        "variable_name",
    ]
    for name in client.__all__:
        obj = getattr(client, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    assert inspect.getdoc(member), f"{name}.{attr} has no docstring"


def test_errors_form_one_hierarchy():
    for name in ("AgentRefused", "RequestRefused", "SecretNotFound", "SourceUnavailable"):
        assert issubclass(getattr(client, name), ClientError)


@pytest.mark.parametrize("value", [VALUE, VALUE.encode()])
def test_secret_value_never_shows_itself(value):
    secret = SecretValue(value, version_id="v1", source="agent")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", format(secret, "")]
    shown.append(repr([secret, {"k": secret}]))
    assert set(shown[:5]) == {"SecretValue('**********')"}
    for text in shown:
        assert "hunter2" not in text
    assert secret.reveal() == value
    assert secret.version_id == "v1" and secret.source == "agent"


def test_secret_value_compares_by_value_and_refuses_pickling_and_hashing():
    assert SecretValue("a") == SecretValue("a")
    assert SecretValue("a") != SecretValue("b")
    assert SecretValue("a") != SecretValue(b"a")
    with pytest.raises(TypeError):
        hash(SecretValue("a"))
    with pytest.raises(TypeError):
        pickle.dumps(SecretValue(VALUE))
    with pytest.raises(TypeError):
        SecretValue(42)  # type: ignore[arg-type]


def test_json_parses_and_its_error_never_quotes_the_value():
    assert SecretValue('{"username": "u", "password": "p"}').json() == {
        "username": "u",
        "password": "p",
    }
    assert SecretValue(b"[1, 2]").json() == [1, 2]
    with pytest.raises(ClientError) as caught:
        SecretValue("hunter2 is not json").json()
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_environment_variable_names():
    assert client.variable_name("db/app-1") == "SECRETSD_SECRET_DB_APP_1"
    assert client.variable_name("arn:aws:x") == "SECRETSD_SECRET_ARN_AWS_X"
