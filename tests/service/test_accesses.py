"""LastAccessedDate: noted by reads, written by the access recorder, never by the reader."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from secretsd.model.secret import Secret
from secretsd.service import AccessRecorder, SecretsService
from secretsd.store.base import Change
from secretsd.store.sqlite import SQLiteStorage
from tests.service.conftest import SdkService

DAY = 86400.0
NOW = 1_700_000_000.0  # a fixed clock: the same day all through a test
TODAY = NOW // DAY * DAY


@pytest.fixture
def storage(tmp_path):
    store = SQLiteStorage(tmp_path / "store.db")
    yield store
    store.close()


@pytest.fixture
def recorder(storage):
    recorder = AccessRecorder(storage)
    yield recorder
    recorder.close()


def service_over(storage, recorder=None) -> SecretsService:
    return SdkService(storage, clock=lambda: NOW, accesses=recorder)


def dates(storage, name: str) -> tuple[float | None, dict[str, float | None]]:
    secret = Secret.from_document(storage.load_by_name(name).document)
    return secret.last_accessed, {v: secret.versions[v].last_accessed for v in secret.versions}


def test_a_read_notes_and_the_recorder_writes(storage, recorder):
    service = service_over(storage, recorder)
    version = service.call("CreateSecret", {"Name": "app", "SecretString": "v"})["VersionId"]
    assert service.call("GetSecretValue", {"SecretId": "app"})["SecretString"] == "v"
    assert recorder.flush(timeout=30)
    assert dates(storage, "app") == (TODAY, {version: TODAY})
    revision = storage.load_by_name("app").revision
    # Already recorded today: later reads note nothing and write nothing.
    for _ in range(3):
        service.call("GetSecretValue", {"SecretId": "app"})
    assert recorder.flush(timeout=30)
    assert storage.load_by_name("app").revision == revision


def test_a_read_does_not_wait_for_the_write_of_its_date(storage, recorder):
    """The writer holds the store's write lock (a group commit in progress): the read still
    answers at once, and its date lands once the lock is free."""
    service = service_over(storage, recorder)
    service.call("CreateSecret", {"Name": "app", "SecretString": "v"})
    in_batch, release = threading.Event(), threading.Event()

    def writer() -> None:
        with storage.batch():
            storage.commit(Change("arn:other", "other", None, b"{}"))
            in_batch.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert in_batch.wait(30)
        started = time.monotonic()
        service.call("GetSecretValue", {"SecretId": "app"})
        assert time.monotonic() - started < 1.0
        assert dates(storage, "app")[0] is None
    finally:
        release.set()
        thread.join(timeout=30)
    assert recorder.flush(timeout=30)
    assert dates(storage, "app")[0] == TODAY


def test_notes_coalesce_per_secret_and_keep_every_version(storage, recorder):
    service = service_over(storage)
    first = service.call("CreateSecret", {"Name": "app", "SecretString": "one"})["VersionId"]
    second = str(uuid.uuid4())
    service.call(
        "PutSecretValue", {"SecretId": "app", "SecretString": "two", "ClientRequestToken": second}
    )
    arn = storage.load_by_name("app").arn
    for _ in range(50):
        recorder.note(arn, first, TODAY)
        recorder.note(arn, second, TODAY - DAY)
    recorder.note(arn, second, TODAY)
    assert recorder.flush(timeout=30)
    assert dates(storage, "app") == (TODAY, {first: TODAY, second: TODAY})


def test_a_date_never_moves_back_and_a_concurrent_change_is_kept(storage, recorder):
    service = service_over(storage)
    version = service.call("CreateSecret", {"Name": "app", "SecretString": "v"})["VersionId"]
    arn = storage.load_by_name("app").arn
    recorder.note(arn, version, TODAY)
    service.call("UpdateSecret", {"SecretId": "app", "Description": "changed meanwhile"})
    recorder.note(arn, version, TODAY - DAY)
    assert recorder.flush(timeout=30)
    assert dates(storage, "app") == (TODAY, {version: TODAY})
    assert service.call("DescribeSecret", {"SecretId": "app"})["Description"] == (
        "changed meanwhile"
    )


def test_closing_writes_what_is_pending(storage):
    service = service_over(storage)
    service.call("CreateSecret", {"Name": "app", "SecretString": "v"})
    recorder = AccessRecorder(storage)
    service_over(storage, recorder).call("GetSecretValue", {"SecretId": "app"})
    recorder.close()
    assert dates(storage, "app")[0] == TODAY


def test_without_a_recorder_the_reader_writes_the_date(storage):
    service = service_over(storage)
    service.call("CreateSecret", {"Name": "app", "SecretString": "v"})
    service.call("GetSecretValue", {"SecretId": "app"})
    assert dates(storage, "app")[0] == TODAY


def test_a_deleted_secret_is_skipped(storage, recorder):
    service = service_over(storage)
    version = service.call("CreateSecret", {"Name": "app", "SecretString": "v"})["VersionId"]
    arn = storage.load_by_name("app").arn
    service.call("DeleteSecret", {"SecretId": "app", "ForceDeleteWithoutRecovery": True})
    recorder.note(arn, version, TODAY)
    assert recorder.flush(timeout=30)
    assert storage.load_by_arn(arn) is None
