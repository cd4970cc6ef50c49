"""The decoded-document cache of the read path: shared by reads, never by writers, never stale."""

from __future__ import annotations

from secretsd.model.secret import Secret, UnreadableRecord
from secretsd.service import SecretsService
from secretsd.service.documents import DocumentCache
from secretsd.store.base import StoredSecret
from secretsd.store.sqlite import SQLiteStorage
from tests.service.conftest import SdkService

T0 = 1_700_000_000.0
DAY = 86400.0


def make_service(tmp_path, now: list[float]) -> SecretsService:
    return SdkService(SQLiteStorage(tmp_path / "db"), clock=lambda: now[0])


def test_reads_share_one_decoded_secret_and_writers_get_their_own(tmp_path):
    service = make_service(tmp_path, [T0])
    service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})
    shared, _ = service.read("s")
    assert service.read("s")[0] is shared
    own, _ = service.load("s")
    assert own is not shared and own == shared


def test_a_changed_document_is_decoded_again(tmp_path):
    service = make_service(tmp_path, [T0])
    service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})
    before, _ = service.read("s")
    service.call(
        "PutSecretValue", {"SecretId": "s", "SecretString": "v2", "ClientRequestToken": "t" * 32}
    )
    after, _ = service.read("s")
    assert after is not before
    assert after.holder("AWSCURRENT").version_id == "t" * 32
    assert service.get_secret_value({"SecretId": "s"})["SecretString"] == "v2"


def test_reading_does_not_change_the_shared_secret(tmp_path):
    now = [T0]
    service = make_service(tmp_path, now)
    service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})
    shared, _ = service.read("s")
    document = shared.to_document()
    service.get_secret_value({"SecretId": "s"})  # the first read of the day records it
    service.describe_secret({"SecretId": "s"})
    service.list_secret_version_ids({"SecretId": "s"})
    service.batch_get_secret_value({"SecretIdList": ["s"]})
    assert shared.to_document() == document
    assert service.describe_secret({"SecretId": "s"})["LastAccessedDate"] == T0 // DAY * DAY


def test_a_hit_needs_the_same_record_not_only_the_same_revision():
    cache = DocumentCache()
    first = Secret("arn:a", "a", T0, T0, description="one")
    second = Secret("arn:a", "a", T0, T0, description="two")
    stored = StoredSecret("arn:a", "a", 1, first.to_document())
    cache.put(stored, first)
    assert cache.get(StoredSecret("arn:a", "a", 1, first.to_document())) is first
    # A store that hands out the same revision with another document, or another name, is
    # believed, not the cache.
    assert cache.get(StoredSecret("arn:a", "a", 1, second.to_document())) is None
    assert cache.get(StoredSecret("arn:a", "b", 1, first.to_document())) is None


def test_a_record_that_failed_its_check_never_hits():
    cache = DocumentCache()
    secret = Secret("arn:a", "a", T0, T0)
    cache.put(StoredSecret("arn:a", "a", 1, secret.to_document()), secret)
    refused = StoredSecret(
        "arn:a", "a", 1, secret.to_document(), problem=UnreadableRecord("a", "tampered")
    )
    assert cache.get(refused) is None


def test_the_cache_starts_over_when_full():
    cache = DocumentCache(size=2)
    for name in ("a", "b", "c"):
        secret = Secret(f"arn:{name}", name, T0, T0)
        cache.put(StoredSecret(secret.arn, name, 1, secret.to_document()), secret)
    assert len(cache._entries) == 1
