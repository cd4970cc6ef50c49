"""``secretsd rotation history``: reads only, finds secrets of any region, creates nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from secretsd.cli import main
from secretsd.store import CREATE, DATABASE_FILE_NAME, open_storage
from secretsd.store.keys import KEY_FILE_NAME
from tests.support.server import start_server
from tests.support.wait import wait_for

HISTORY = [sys.executable, "-m", "secretsd.cli", "rotation", "history"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_missing_data_directory_is_named_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRETSD_MASTER_KEY", raising=False)
    typo = tmp_path / "dta"
    assert main(["rotation", "history", "db/app", "--data-dir", str(typo)]) == 1
    err = capsys.readouterr().err
    assert err == f"secretsd rotation: the data directory {typo} does not exist\n"
    assert not typo.exists()


def test_a_directory_without_a_store_is_named_and_left_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRETSD_MASTER_KEY", raising=False)
    assert main(["rotation", "history", "db/app", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"secretsd rotation: there is no secretsd store in {tmp_path}: "
        f"{tmp_path / DATABASE_FILE_NAME} does not exist\n"
    )
    assert _files(tmp_path) == []


def test_a_missing_key_file_is_named_and_not_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRETSD_MASTER_KEY", raising=False)
    open_storage(tmp_path, env={}, mode=CREATE).close()
    (tmp_path / KEY_FILE_NAME).unlink()
    assert main(["rotation", "history", "db/app", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / KEY_FILE_NAME} is missing" in err
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_an_unknown_secret_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRETSD_MASTER_KEY", raising=False)
    open_storage(tmp_path, env={}, mode=CREATE).close()
    assert main(["rotation", "history", "db/nope", "--data-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == "secretsd rotation: no secret db/nope in the store\n"


def test_secrets_of_another_region_are_found_by_name_full_and_partial_arn(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "data", "--region", "eu-west-1")
    try:
        client = server.session().client(
            "secretsmanager", endpoint_url=server.endpoint_url, region_name="eu-west-1"
        )
        arn = client.create_secret(Name="db/eu", SecretString="x")["ARN"]
    finally:
        server.stop()
    assert ":eu-west-1:" in arn
    partial = arn[: arn.rindex("-")]
    for secret_id in ("db/eu", arn, partial):
        done = subprocess.run(
            [*HISTORY, secret_id, "--data-dir", str(server.data_dir)],
            capture_output=True,
            text=True,
        )
        assert (done.returncode, done.stdout) == (0, "db/eu: no rotation attempts recorded\n"), (
            done.stderr
        )
    other_region = arn.replace(":eu-west-1:", ":us-east-1:")
    done = subprocess.run(
        [*HISTORY, other_region[: other_region.rindex("-")], "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "no secret" in done.stderr


def test_follow_prints_new_events_as_they_come_and_ends_quietly_on_interrupt(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "data", "--scheduler-interval", "0.1")
    follower = None
    try:
        sm = server.client()
        sm.create_secret(Name="follow/token", SecretString='{"token": "first-value"}')
        follower = subprocess.Popen(
            [*HISTORY, "follow/token", "--data-dir", str(server.data_dir)]
            + ["--follow", "--interval", "0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []

        def pump() -> None:
            for line in follower.stdout:
                lines.append(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        wait_for(lambda: lines, message="no first line from --follow")
        assert lines == ["follow/token: no rotation attempts recorded\n"]
        sm.rotate_secret(SecretId="follow/token", RotationLambdaARN="secretsd-generic")
        wait_for(
            lambda: any("succeeded" in line for line in lines),
            timeout=60,
            message=f"--follow did not show the rotation end: {lines}",
        )
        steps = [line.split()[3] for line in lines[1:] if not line.startswith(" ")]
        assert steps == [
            "attempt",
            "createSecret",
            "setSecret",
            "testSecret",
            "finishSecret",
            "attempt",
        ]
        follower.send_signal(signal.SIGINT)
        assert follower.wait(20) == 0
        reader.join(10)
        assert "Traceback" not in follower.stderr.read()
    finally:
        if follower is not None:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
            follower.stdout.close()
            follower.stderr.close()
        server.stop()
