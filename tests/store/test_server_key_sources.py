"""The master key sources through the real ``secretsd server`` command and boto3."""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsd.store.key_sources import KMS_BLOB_FILE_NAME
from secretsd.store.keys import KEY_FILE_NAME
from tests.support.kms import create_kms_key, kms_env, moto_kms
from tests.support.server import start_server

SERVER = [sys.executable, "-m", "secretsd.cli", "server", "--port", "0"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SECRETSD_"))}
    env.update(extra)
    return env


def _round_trip(data_dir: Path, *flags: str, env: dict[str, str], name: str = "db/app") -> None:
    """Store a secret with one server, read it back with a second start."""
    server = start_server(data_dir, *flags, env=env)
    try:
        server.client().create_secret(Name=name, SecretString="s3cret")
    finally:
        server.stop()
    server = start_server(data_dir, *flags, env=env)
    try:
        value = server.client().get_secret_value(SecretId=name)["SecretString"]
    finally:
        server.stop()
    assert value == "s3cret"


def _refused(data_dir: Path, *flags: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [*SERVER, "--data-dir", str(data_dir), *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stderr


def test_server_with_a_key_command(tmp_path: Path) -> None:
    key_file = tmp_path / "key.b64"
    key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    command = f"cat {shlex.quote(str(key_file))}"
    data_dir = tmp_path / "data"
    _round_trip(data_dir, "--master-key-command", command, env=_env())
    assert not (data_dir / KEY_FILE_NAME).exists()
    # The environment variable is the flag's equivalent.
    _round_trip(data_dir, env=_env(SECRETSD_MASTER_KEY_COMMAND=command), name="db/other")
    stderr = _refused(data_dir, "--master-key-command", "false", env=_env())
    assert stderr == "secretsd server: the master key command false failed with exit status 1\n"


def test_server_refuses_two_key_sources(tmp_path: Path) -> None:
    stderr = _refused(
        tmp_path,
        "--master-key-command",
        "cat k",
        env=_env(SECRETSD_MASTER_KEY_KMS="alias/secretsd"),
    )
    assert stderr == (
        "secretsd server: choose one master key source: --master-key-command (or "
        "SECRETSD_MASTER_KEY_COMMAND) and --master-key-kms (or SECRETSD_MASTER_KEY_KMS) "
        "exclude each other\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def kms_url() -> Iterator[str]:
    with moto_kms() as url:
        yield url


def test_server_with_a_kms_wrapped_key(tmp_path: Path, kms_url: str) -> None:
    arn = create_kms_key(kms_url)
    env = _env(**kms_env(kms_url))
    data_dir = tmp_path / "data"
    _round_trip(data_dir, "--master-key-kms", arn, env=env)
    assert (data_dir / KMS_BLOB_FILE_NAME).is_file()
    assert not (data_dir / KEY_FILE_NAME).exists()
    other = create_kms_key(kms_url)
    stderr = _refused(data_dir, "--master-key-kms", other, env=env)
    assert stderr.startswith(
        f"secretsd server: AWS KMS refused to unwrap {data_dir / KMS_BLOB_FILE_NAME} "
        f"with key {other}: "
    )
