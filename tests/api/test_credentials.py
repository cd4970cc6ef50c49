"""The server's access keys: the credentials file, the keyring, the user-facing printout."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys
import threading

import boto3
import pytest

from secretsd.api.credentials import (
    PROFILE,
    CredentialsError,
    client_setup,
    credentials_path,
    generate_key,
    load,
    load_or_create,
)


def test_first_start_creates_a_private_file_with_one_aws_shaped_key(tmp_path):
    keyring, created = load_or_create(tmp_path)
    path = credentials_path(tmp_path)
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = keyring.primary
    assert key.profile == PROFILE
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", key.secret_access_key)
    assert keyring.lookup(key.access_key_id) == key.secret_access_key
    assert keyring.lookup("AKIANOTAKEY000000000") is None
    assert [p.name for p in tmp_path.iterdir()] == ["credentials"]


def test_later_starts_load_the_same_key(tmp_path):
    first, _ = load_or_create(tmp_path)
    second, created = load_or_create(tmp_path)
    assert not created
    assert second.primary == first.primary


def test_generated_keys_differ():
    assert len({generate_key().access_key_id for _ in range(50)}) == 50
    assert len({generate_key().secret_access_key for _ in range(50)}) == 50


def test_concurrent_first_starts_agree_on_one_key(tmp_path):
    results = []

    def start():
        results.append(load_or_create(tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({keyring.primary for keyring, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["credentials"]


def test_every_profile_in_the_file_is_an_accepted_key(tmp_path):
    keyring, _ = load_or_create(tmp_path)
    path = credentials_path(tmp_path)
    with path.open("a") as handle:
        handle.write(
            "\n[ci]\naws_access_key_id = AKIACI00000000000000\n"
            "aws_secret_access_key = ci-secret%with$odd=chars\n"
            "\n[incomplete]\naws_access_key_id = AKIAHALF000000000000\n"
        )
    reloaded = load(path)
    assert reloaded.lookup(keyring.primary.access_key_id) == keyring.primary.secret_access_key
    assert reloaded.lookup("AKIACI00000000000000") == "ci-secret%with$odd=chars"
    assert reloaded.lookup("AKIAHALF000000000000") is None
    assert reloaded.primary == keyring.primary


def test_boto3_reads_the_file_as_a_profile(tmp_path, monkeypatch):
    keyring, _ = load_or_create(tmp_path)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_path(tmp_path)))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    credentials = boto3.Session(profile_name=PROFILE).get_credentials()
    assert credentials.access_key == keyring.primary.access_key_id
    assert credentials.secret_key == keyring.primary.secret_access_key


def _probe(script: str, tmp_path) -> dict[str, str]:
    """Run the printed shell lines, then ask boto3 what it would use."""
    probe = (
        "import boto3; s = boto3.Session(); c = s.get_credentials(); "
        "cl = s.client('secretsmanager'); "
        "print(c.access_key, c.secret_key, s.region_name, cl.meta.endpoint_url)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = os.devnull
    env["HOME"] = str(tmp_path)
    out = subprocess.run(
        ["bash", "-c", f'{script}\n"$0" -c "$1"', sys.executable, probe],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return dict(zip(["key", "secret", "region", "endpoint"], out, strict=True))


def test_both_forms_of_the_printout_configure_boto3(tmp_path):
    keyring, _ = load_or_create(tmp_path / "data")
    key = keyring.primary
    text = client_setup(key, "http://127.0.0.1:8089", credentials_path(tmp_path / "data"))
    lines = text.splitlines()
    split = next(i for i, line in enumerate(lines) if line.startswith("# or"))
    expected = {
        "key": key.access_key_id,
        "secret": key.secret_access_key,
        "region": "us-east-1",
        "endpoint": "http://127.0.0.1:8089",
    }
    assert _probe("\n".join(lines[:split]), tmp_path) == expected
    profile_form = "\n".join(lines[split:])
    assert key.secret_access_key not in profile_form
    assert _probe(profile_form, tmp_path) == expected


def test_printout_quotes_paths_for_the_shell(tmp_path):
    key = generate_key()
    text = client_setup(key, "http://h:1", tmp_path / "dir with space" / "credentials", "eu-west-1")
    assert f"AWS_SHARED_CREDENTIALS_FILE='{tmp_path}/dir with space/credentials'" in text
    assert "AWS_PROFILE=secretsd" in text
    assert "export AWS_DEFAULT_REGION=eu-west-1" in text


def test_reprs_never_show_the_secret(tmp_path):
    keyring, _ = load_or_create(tmp_path)
    secret = keyring.primary.secret_access_key
    assert secret not in repr(keyring.primary)
    assert secret not in repr(keyring)
    assert secret not in str(keyring.keys)


def test_a_broken_file_is_refused_without_echoing_it(tmp_path):
    path = credentials_path(tmp_path)
    path.write_text("aws_secret_access_key = leaked-secret-value\n[secretsd\n")
    with pytest.raises(CredentialsError) as caught:
        load_or_create(tmp_path)
    assert "leaked-secret-value" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_file_without_keys_is_refused(tmp_path):
    path = credentials_path(tmp_path)
    path.write_text("[secretsd]\nregion = us-east-1\n")
    with pytest.raises(CredentialsError, match="no profile with aws_access_key_id"):
        load(path)


def test_one_key_id_with_two_secrets_is_refused(tmp_path):
    path = credentials_path(tmp_path)
    path.write_text(
        "[a]\naws_access_key_id = AKIADUP0000000000000\naws_secret_access_key = first-dup-secret\n"
        "[b]\naws_access_key_id = AKIADUP0000000000000\naws_secret_access_key = second-dup-secret\n"
    )
    with pytest.raises(CredentialsError) as caught:
        load(path)
    assert "dup-secret" not in str(caught.value)
    assert "AKIADUP0000000000000" in str(caught.value)


def test_a_file_others_can_read_is_loaded_with_a_warning(tmp_path, caplog):
    keyring, _ = load_or_create(tmp_path)
    path = credentials_path(tmp_path)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="secretsd.api.credentials"):
        assert load(path).primary == keyring.primary
    assert "chmod 600" in caplog.text
    assert keyring.primary.secret_access_key not in caplog.text
