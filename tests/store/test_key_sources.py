"""Master key sources: the choice between them, a command, and AWS KMS (moto's live server)."""

from __future__ import annotations

import base64
import secrets
import shlex
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsd.store import CREATE, MasterKeyError, WrongMasterKey, open_storage
from secretsd.store.base import Change
from secretsd.store.key_sources import (
    COMMAND_ENV_VAR,
    KMS_BLOB_FILE_NAME,
    KMS_ENV_VAR,
    CommandSource,
    choose_source,
)
from secretsd.store.keys import ENV_VAR, KEY_FILE_NAME
from tests.support.kms import create_kms_key, kms_env, moto_kms


def _key_file(directory: Path, name: str = "key.b64") -> Path:
    """A file holding a fresh base64 key, for a command to print."""
    path = directory / name
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    path.chmod(0o600)
    return path


def _cat(path: Path) -> str:
    return f"cat {shlex.quote(str(path))}"


# -- choosing ------------------------------------------------------------------------------


def test_command_and_kms_exclude_each_other(tmp_path: Path) -> None:
    expected = (
        "choose one master key source: --master-key-command (or SECRETSD_MASTER_KEY_COMMAND) "
        "and --master-key-kms (or SECRETSD_MASTER_KEY_KMS) exclude each other"
    )
    for env, flags in (
        ({}, {"command": "cat k", "kms_key": "alias/x"}),
        ({COMMAND_ENV_VAR: "cat k", KMS_ENV_VAR: "alias/x"}, {}),
        ({KMS_ENV_VAR: "alias/x"}, {"command": "cat k"}),
    ):
        with pytest.raises(MasterKeyError) as caught:
            choose_source(tmp_path, env, **flags)
        assert str(caught.value) == expected


def test_the_key_variable_excludes_the_other_sources(tmp_path: Path) -> None:
    env = {ENV_VAR: base64.b64encode(bytes(32)).decode()}
    with pytest.raises(MasterKeyError) as caught:
        choose_source(tmp_path, env, command="cat k")
    assert str(caught.value) == (
        "SECRETSD_MASTER_KEY is set, and so is --master-key-command: unset one of them"
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("   ", "the master key command is empty"),
        ('cat "unterminated', "the master key command cannot be parsed: No closing quotation"),
    ],
)
def test_an_unusable_command_is_refused_before_anything_opens(
    tmp_path: Path, command: str, message: str
) -> None:
    with pytest.raises(MasterKeyError) as caught:
        open_storage(tmp_path / "data", env={}, mode=CREATE, master_key_command=command)
    assert str(caught.value) == message
    assert not (tmp_path / "data").exists()


def test_the_command_variable_stands_in_for_the_flag(tmp_path: Path) -> None:
    source = choose_source(tmp_path, {COMMAND_ENV_VAR: "cat 'my key'"})
    assert isinstance(source, CommandSource) and source.argv == ("cat", "my key")


# -- command -------------------------------------------------------------------------------


def test_command_key_opens_the_store_and_writes_no_key_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    command = _cat(_key_file(tmp_path))
    store = open_storage(data_dir, env={}, mode=CREATE, master_key_command=command)
    store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"value"}))
    store.close()
    assert not (data_dir / KEY_FILE_NAME).exists()
    again = open_storage(data_dir, env={COMMAND_ENV_VAR: command})
    assert again.read_value("arn:1", "v1") == b"value"
    again.close()
    with pytest.raises(WrongMasterKey):
        open_storage(data_dir, env={}, master_key_command=_cat(_key_file(tmp_path, "other")))


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("false", "the master key command false failed with exit status 1"),
        ("sh -c 'exit 3'", "the master key command sh failed with exit status 3"),
        ("sh -c 'kill -9 $$'", "the master key command sh was killed by signal SIGKILL"),
        (
            "true",
            "the master key command true printed nothing: it must print the master key "
            "(base64 of 32 bytes) on its standard output",
        ),
        (
            "echo TOPSECRET-not-a-key",
            "the output of the master key command echo is not a valid master key: expected "
            "the base64 encoding of 32 random bytes (for example from `openssl rand -base64 32`)",
        ),
        (
            "/nonexistent/vault-helper get",
            "the master key command /nonexistent/vault-helper cannot be run: "
            "No such file or directory",
        ),
    ],
)
def test_command_failures_are_clear_and_never_show_the_output(
    tmp_path: Path, command: str, message: str
) -> None:
    with pytest.raises(MasterKeyError) as caught:
        open_storage(tmp_path, env={}, mode=CREATE, master_key_command=command)
    assert str(caught.value) == message
    assert "TOPSECRET" not in repr(caught.value)
    # Nothing chained either: a traceback shows no underlying error carrying output.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_a_wrong_key_from_a_command_does_not_show_it(tmp_path: Path) -> None:
    key = base64.b64encode(secrets.token_bytes(31)).decode()
    with pytest.raises(MasterKeyError) as caught:
        open_storage(tmp_path, env={}, mode=CREATE, master_key_command=f"echo {key}")
    assert key not in str(caught.value)


def test_a_command_that_hangs_is_stopped_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "survivor"
    # The child outlives its parent's kill unless the whole process group goes.
    script = f"(sleep 5; touch {shlex.quote(str(marker))}) & sleep 30"
    source = CommandSource(("sh", "-c", script), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(MasterKeyError) as caught:
        source.load(create=True)
    assert time.monotonic() - started < 5
    assert str(caught.value) == "the master key command sh did not finish within 0.5 seconds"
    assert not marker.exists()


# -- KMS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kms_url() -> Iterator[str]:
    with moto_kms() as url:
        yield url


@pytest.fixture
def kms(kms_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in kms_env(kms_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return kms_url


def test_kms_wraps_a_key_made_on_first_start_and_unwraps_it_later(tmp_path: Path, kms: str) -> None:
    arn = create_kms_key(kms)
    store = open_storage(tmp_path, env={}, mode=CREATE, master_key_kms=arn)
    store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"value"}))
    store.close()
    blob = tmp_path / KMS_BLOB_FILE_NAME
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    assert not (tmp_path / KEY_FILE_NAME).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    again = open_storage(tmp_path, env={KMS_ENV_VAR: arn})
    assert again.read_value("arn:1", "v1") == b"value"
    again.close()


def test_a_blob_wrapped_by_another_kms_key_is_refused(tmp_path: Path, kms: str) -> None:
    first, second = create_kms_key(kms), create_kms_key(kms)
    open_storage(tmp_path, env={}, mode=CREATE, master_key_kms=first).close()
    with pytest.raises(MasterKeyError) as caught:
        open_storage(tmp_path, env={}, master_key_kms=second)
    message = str(caught.value)
    assert message.startswith(f"AWS KMS refused to unwrap {tmp_path / KMS_BLOB_FILE_NAME} ")
    assert second in message
    assert f"(if {tmp_path / KMS_BLOB_FILE_NAME} was wrapped by another KMS key" in message


def test_a_lost_kms_blob_is_an_error_not_a_new_key(tmp_path: Path, kms: str) -> None:
    arn = create_kms_key(kms)
    open_storage(tmp_path, env={}, mode=CREATE, master_key_kms=arn).close()
    (tmp_path / KMS_BLOB_FILE_NAME).unlink()
    with pytest.raises(MasterKeyError) as caught:
        open_storage(tmp_path, env={}, mode=CREATE, master_key_kms=arn)
    assert str(caught.value) == (
        f"{tmp_path / KMS_BLOB_FILE_NAME} is missing, but the store already holds data sealed "
        f"with a master key: restore the file (it holds the key wrapped by KMS key {arn})"
    )
    assert not (tmp_path / KMS_BLOB_FILE_NAME).exists()


def test_an_unknown_kms_key_is_reported(tmp_path: Path, kms: str) -> None:
    arn = create_kms_key(kms)
    missing = arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(MasterKeyError) as caught:
        open_storage(tmp_path, env={}, mode=CREATE, master_key_kms=missing)
    assert str(caught.value).startswith(
        f"AWS KMS refused to generate a data key with key {missing}: NotFoundException"
    )
    assert not (tmp_path / KMS_BLOB_FILE_NAME).exists()


def test_an_unreachable_kms_is_reported(
    tmp_path: Path, kms: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(MasterKeyError) as caught:
        open_storage(tmp_path, env={}, mode=CREATE, master_key_kms="alias/secretsd")
    assert str(caught.value).startswith(
        "cannot reach AWS KMS to generate a data key with key alias/secretsd: "
    )
