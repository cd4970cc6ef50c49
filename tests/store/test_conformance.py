"""One suite for every Storage: SQLite and PostgreSQL, plain and encrypted."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from secretsd.store.base import Change, Conflict, Storage, StorageError, StoredSecret
from secretsd.store.encryption import EncryptedStorage, seal


def create(store: Storage, name: str, document: bytes = b"{}", **values: bytes) -> StoredSecret:
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"
    revision = store.commit(Change(arn, name, None, document, put_values=values))
    assert revision == 1
    return StoredSecret(arn, name, revision, document)


def update(store: Storage, secret: StoredSecret, document: bytes, **kwargs) -> StoredSecret:
    revision = store.commit(Change(secret.arn, secret.name, secret.revision, document, **kwargs))
    return StoredSecret(secret.arn, secret.name, revision, document)


def test_create_then_load_by_name_and_by_arn(store: Storage) -> None:
    secret = create(store, "db/app", b'{"Description": "x"}', v1=b"hunter2")
    assert store.load_by_name("db/app") == secret
    assert store.load_by_arn(secret.arn) == secret
    assert store.read_value(secret.arn, "v1") == b"hunter2"


def test_missing_things_are_none(store: Storage) -> None:
    secret = create(store, "present")
    assert store.load_by_name("absent") is None
    assert store.load_by_arn(secret.arn + "x") is None
    assert store.read_value(secret.arn, "no-such-version") is None
    assert store.read_value("arn:none", "v1") is None
    assert store.get_setting("no-such-setting") is None
    assert store.read_events(secret.arn) == []


def test_create_conflicts_when_name_or_arn_exists(store: Storage) -> None:
    secret = create(store, "taken", b"original", v1=b"first")
    with pytest.raises(Conflict):
        store.commit(Change(secret.arn + "-other", "taken", None, b"x", {"v9": b"y"}))
    with pytest.raises(Conflict):
        store.commit(Change(secret.arn, "other-name", None, b"x", {"v1": b"overwritten"}))
    assert store.load_by_name("taken") == secret
    assert store.load_by_name("other-name") is None
    assert store.load_by_arn(secret.arn + "-other") is None
    assert store.read_value(secret.arn, "v1") == b"first"
    assert store.read_value(secret.arn + "-other", "v9") is None


def test_update_moves_revision_and_conflicts_on_stale_revision(store: Storage) -> None:
    first = create(store, "s", b"doc1", v1=b"one")
    second = update(store, first, b"doc2", put_values={"v2": b"two"})
    assert second.revision == 2
    assert store.load_by_arn(first.arn) == second
    with pytest.raises(Conflict):
        update(store, first, b"stale", put_values={"v3": b"three"}, drop_values=["v1"])
    assert store.load_by_arn(first.arn) == second
    assert store.read_value(first.arn, "v3") is None
    assert store.read_value(first.arn, "v1") == b"one"
    third = update(store, second, b"doc3")
    assert third.revision == 3
    assert store.load_by_name("s") == third


def test_update_of_a_missing_secret_conflicts(store: Storage) -> None:
    with pytest.raises(Conflict):
        store.commit(Change("arn:missing", "missing", 1, b"doc", {"v1": b"x"}))
    assert store.load_by_arn("arn:missing") is None
    assert store.read_value("arn:missing", "v1") is None


def test_rename_onto_a_taken_name_conflicts(store: Storage) -> None:
    a = create(store, "a")
    b = create(store, "b")
    with pytest.raises(Conflict):
        store.commit(Change(b.arn, "a", b.revision, b"renamed"))
    assert store.load_by_name("a") == a
    assert store.load_by_name("b") == b


def test_values_put_and_dropped_in_one_commit(store: Storage) -> None:
    secret = create(store, "s", v1=b"one", v2=b"two")
    update(store, secret, b"doc", put_values={"v3": b"three", "v2": b"TWO"}, drop_values=["v1"])
    assert store.read_value(secret.arn, "v1") is None
    assert store.read_value(secret.arn, "v2") == b"TWO"
    assert store.read_value(secret.arn, "v3") == b"three"


def test_dropping_an_unknown_value_is_harmless(store: Storage) -> None:
    secret = create(store, "s", v1=b"one")
    update(store, secret, b"doc", drop_values=["nope"])
    assert store.read_value(secret.arn, "v1") == b"one"


def test_values_belong_to_their_secret(store: Storage) -> None:
    a = create(store, "a", v1=b"value of a")
    b = create(store, "b", v1=b"value of b")
    assert store.read_value(a.arn, "v1") == b"value of a"
    assert store.read_value(b.arn, "v1") == b"value of b"


@pytest.mark.parametrize(
    "value", [b"", b"\x00", bytes(range(256)), "pässwörd ✓".encode(), b"x" * 65536]
)
def test_values_and_documents_round_trip_as_bytes(store: Storage, value: bytes) -> None:
    secret = create(store, "bytes", value, v1=value)
    assert store.read_value(secret.arn, "v1") == value
    assert store.load_by_name("bytes").document == value


def test_delete_removes_secret_values_and_events(store: Storage) -> None:
    secret = create(store, "gone", v1=b"one")
    store.append_event(secret.arn, 1.0, b"rotated")
    other = create(store, "kept", v1=b"other")
    store.append_event(other.arn, 1.0, b"other event")
    assert store.commit(Change(secret.arn, secret.name, 1, delete=True)) == 0
    assert store.load_by_name("gone") is None
    assert store.load_by_arn(secret.arn) is None
    assert store.read_value(secret.arn, "v1") is None
    assert store.read_events(secret.arn) == []
    assert store.read_value(other.arn, "v1") == b"other"
    assert store.read_events(other.arn) == [(1.0, b"other event")]
    # The name is free again.
    create(store, "gone", v1=b"reborn")
    assert store.read_value(secret.arn, "v1") == b"reborn"


def test_delete_with_a_stale_revision_conflicts(store: Storage) -> None:
    secret = create(store, "s", v1=b"one")
    update(store, secret, b"doc2")
    with pytest.raises(Conflict):
        store.commit(Change(secret.arn, secret.name, 1, delete=True))
    assert store.load_by_arn(secret.arn).revision == 2
    assert store.read_value(secret.arn, "v1") == b"one"


def test_delete_without_revision_is_unconditional_and_idempotent(store: Storage) -> None:
    secret = create(store, "s", v1=b"one")
    update(store, secret, b"doc2")
    assert store.commit(Change(secret.arn, secret.name, None, delete=True)) == 0
    assert store.load_by_arn(secret.arn) is None
    assert store.commit(Change(secret.arn, secret.name, None, delete=True)) == 0


def test_iter_secrets_is_ordered_by_name(store: Storage) -> None:
    names = ["b", "a", "Z", "a-b", "a_b", "é", "z", "A", "0", "prod/db", "prod-db"]
    names += [f"bulk/{i:04d}" for i in range(300)]  # more than one page
    random.Random(7).shuffle(names)
    for name in names:
        create(store, name, name.encode())
    listed = list(store.iter_secrets())
    assert [s.name for s in listed] == sorted(names)
    assert all(s.document == s.name.encode() and s.revision == 1 for s in listed)


def test_iter_secrets_reflects_updates_and_deletes(store: Storage) -> None:
    assert list(store.iter_secrets()) == []
    a = create(store, "a")
    b = create(store, "b")
    a2 = update(store, a, b"new")
    store.commit(Change(b.arn, b.name, b.revision, delete=True))
    assert list(store.iter_secrets()) == [a2]


def test_events_newest_limit_oldest_first(store: Storage) -> None:
    a = create(store, "a")
    b = create(store, "b")
    for i in range(10):
        store.append_event(a.arn, 100.0 + i, f"a{i}".encode())
    store.append_event(b.arn, 50.0, b"b0")
    assert store.read_events(a.arn) == [(100.0 + i, f"a{i}".encode()) for i in range(10)]
    assert store.read_events(a.arn, limit=3) == [(107.0, b"a7"), (108.0, b"a8"), (109.0, b"a9")]
    assert store.read_events(b.arn) == [(50.0, b"b0")]
    # Events survive updates of the secret.
    update(store, a, b"doc")
    assert len(store.read_events(a.arn)) == 10


def test_events_at_the_same_time_keep_insertion_order(store: Storage) -> None:
    a = create(store, "a")
    for i in range(5):
        store.append_event(a.arn, 7.5, str(i).encode())
    assert [e for _, e in store.read_events(a.arn)] == [b"0", b"1", b"2", b"3", b"4"]
    assert [e for _, e in store.read_events(a.arn, limit=2)] == [b"3", b"4"]


def test_events_are_ordered_by_time_not_arrival(store: Storage) -> None:
    a = create(store, "a")
    store.append_event(a.arn, 20.0, b"late")
    store.append_event(a.arn, 10.0, b"early")
    assert store.read_events(a.arn) == [(10.0, b"early"), (20.0, b"late")]


def test_settings_put_get_overwrite(store: Storage) -> None:
    store.put_setting("k", b"one")
    assert store.get_setting("k") == b"one"
    store.put_setting("k", b"two")
    assert store.get_setting("k") == b"two"
    store.put_setting("other", b"\x00\xff")
    assert store.get_setting("other") == b"\x00\xff"
    assert store.get_setting("k") == b"two"


def test_everything_survives_reopening(reopen: Callable[[], Storage]) -> None:
    store = reopen()
    secret = create(store, "durable", b"doc", v1=b"one")
    store.append_event(secret.arn, 3.0, b"event")
    store.put_setting("k", b"v")
    store.close()
    again = reopen()
    assert again.load_by_name("durable") == secret
    assert again.read_value(secret.arn, "v1") == b"one"
    assert again.read_events(secret.arn) == [(3.0, b"event")]
    assert again.get_setting("k") == b"v"


def test_a_closed_store_refuses_calls(reopen: Callable[[], Storage]) -> None:
    store = reopen()
    create(store, "s")
    store.close()
    with pytest.raises(StorageError):
        store.load_by_name("s")


def test_check_passes_while_the_store_answers_and_fails_once_closed(
    reopen: Callable[[], Storage],
) -> None:
    store = reopen()
    store.check()
    store.close()
    with pytest.raises(StorageError):
        store.check()


# -- group commit ----------------------------------------------------------------------


def test_changes_of_a_batch_land_together_and_a_failing_one_alone_is_undone(
    reopen: Callable[[], Storage],
) -> None:
    store = reopen()
    with store.batch():
        a = create(store, "a", v1=b"value-a")
        with pytest.raises(Conflict):
            store.commit(Change(a.arn + "-2", "a", None, b"{}", {"v1": b"taken"}))
        b = create(store, "b", v1=b"value-b")
        # Inside the batch the writer sees its own changes.
        assert store.load_by_name("b") == b
        assert store.read_value(b.arn, "v1") == b"value-b"
    store.close()
    again = reopen()
    assert [s.name for s in again.iter_secrets()] == ["a", "b"]
    assert again.read_value(a.arn, "v1") == b"value-a"
    assert again.load_by_arn(a.arn + "-2") is None


def test_an_error_escaping_a_batch_stores_nothing(store: Storage) -> None:
    with pytest.raises(RuntimeError), store.batch():
        create(store, "a", v1=b"one")
        raise RuntimeError("the group failed")
    assert store.load_by_name("a") is None
    create(store, "a", v1=b"one")  # and the store is usable afterwards
    assert store.load_by_name("a") is not None


def test_other_threads_see_a_batch_only_when_it_ends(store: Storage) -> None:
    seen: list[object] = []
    with store.batch():
        secret = create(store, "a")
        reader = threading.Thread(target=lambda: seen.append(store.load_by_name("a")))
        reader.start()
        reader.join(timeout=30)
    assert seen == [None]
    assert store.load_by_name("a") == secret


def test_a_lazy_commit_in_a_batch_is_durable_with_it(reopen: Callable[[], Storage]) -> None:
    store = reopen()
    secret = create(store, "a")
    with store.batch():
        store.commit(Change(secret.arn, "a", 1, b"touched"), durable=False)
        create(store, "b")
    store.close()
    again = reopen()
    assert again.load_by_name("a").document == b"touched"
    assert again.load_by_name("b") is not None


def test_a_lazy_commit_is_visible_at_once_and_survives_reopening(
    reopen: Callable[[], Storage],
) -> None:
    store = reopen()
    secret = create(store, "a")
    assert store.commit(Change(secret.arn, "a", 1, b"touched"), durable=False) == 2
    assert store.load_by_name("a").document == b"touched"
    store.close()
    assert reopen().load_by_name("a").document == b"touched"


# -- claims ----------------------------------------------------------------------------


def test_claim_lock_admits_one_holder_at_a_time(reopen: Callable[[], Storage]) -> None:
    node_a, node_b = reopen(), reopen()  # two openings of one store: two nodes
    with node_a.claim_lock("rotate arn:1") as held:
        assert held
        with node_b.claim_lock("rotate arn:1") as also:
            assert not also
        with node_a.claim_lock("rotate arn:1") as again:
            assert not again  # not reentrant
        with node_b.claim_lock("rotate arn:2") as different_name:
            assert different_name
        elsewhere: list[bool] = []

        def claim() -> None:
            with node_a.claim_lock("rotate arn:1") as other_thread:
                elsewhere.append(other_thread)

        thread = threading.Thread(target=claim)
        thread.start()
        thread.join(timeout=30)
        assert elsewhere == [False]
    with node_b.claim_lock("rotate arn:1") as after_release:
        assert after_release


def test_a_claim_is_released_when_its_block_fails(store: Storage) -> None:
    with pytest.raises(RuntimeError), store.claim_lock("rotate arn:1") as held:
        assert held
        raise RuntimeError("the rotation failed")
    with store.claim_lock("rotate arn:1") as again:
        assert again


def test_reads_do_not_wait_for_an_open_batch(store: Storage) -> None:
    """What lets a store say its reads never block: a writer holding its transaction open
    (a group commit waiting for the disk) does not hold up readers."""
    secret = create(store, "a", v1=b"one")
    in_batch, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.batch():
            update(store, secret, b"doc2", put_values={"v1": b"two"})
            in_batch.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert in_batch.wait(30)
        started = time.monotonic()
        assert store.load_by_name("a") == secret
        assert store.read_value(secret.arn, "v1") == b"one"
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        thread.join(timeout=30)
    assert store.read_value(secret.arn, "v1") == b"two"


def _run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_racing_writers_exactly_one_wins_each_revision(store: Storage) -> None:
    secret = create(store, "race")
    threads, rounds = 6, 15
    barrier = threading.Barrier(threads)
    winners: list[list[int]] = [[] for _ in range(rounds)]

    def writer(index: int) -> None:
        for round_ in range(rounds):
            barrier.wait()
            current = store.load_by_arn(secret.arn)
            barrier.wait()  # everyone has read the same revision before anyone writes
            try:
                store.commit(
                    Change(
                        secret.arn,
                        secret.name,
                        current.revision,
                        f"{index}".encode(),
                        put_values={f"r{round_}": f"{index}".encode()},
                    )
                )
            except Conflict:
                continue
            winners[round_].append(index)

    _run_threads(threads, writer)
    assert [len(w) for w in winners] == [1] * rounds
    final = store.load_by_arn(secret.arn)
    assert final.revision == 1 + rounds
    assert final.document == f"{winners[-1][0]}".encode()
    for round_, (winner,) in enumerate(winners):
        assert store.read_value(secret.arn, f"r{round_}") == f"{winner}".encode()


def test_read_modify_write_with_retry_loses_no_write(store: Storage) -> None:
    secret = create(store, "counter", b"")
    threads, each = 6, 15

    def adder(index: int) -> None:
        for i in range(each):
            token = f"{index}.{i};".encode()
            while True:
                current = store.load_by_arn(secret.arn)
                try:
                    store.commit(
                        Change(secret.arn, secret.name, current.revision, current.document + token)
                    )
                    break
                except Conflict:
                    continue

    _run_threads(threads, adder)
    final = store.load_by_arn(secret.arn)
    tokens = final.document.decode().rstrip(";").split(";")
    assert sorted(tokens) == sorted(f"{t}.{i}" for t in range(threads) for i in range(each))
    assert final.revision == 1 + threads * each


def test_concurrent_creates_of_one_name_have_one_winner(store: Storage) -> None:
    threads = 6
    barrier = threading.Barrier(threads)
    created: list[int] = []

    def creator(index: int) -> None:
        barrier.wait()
        try:
            store.commit(Change(f"arn:{index}", "contested", None, str(index).encode()))
        except Conflict:
            return
        created.append(index)

    _run_threads(threads, creator)
    assert len(created) == 1
    assert store.load_by_name("contested").arn == f"arn:{created[0]}"


def test_iter_values_lists_every_value_in_order(store: Storage) -> None:
    assert list(store.iter_values()) == []
    names = [f"bulk/{i:04d}" for i in range(140)]  # 280 values: more than one page
    for name in names:
        create(store, name, v1=b"one", v2=b"two")
    gone = create(store, "gone", v1=b"x")
    store.commit(Change(gone.arn, gone.name, None, delete=True))
    listed = list(store.iter_values())
    expected = sorted(
        (f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf", version)
        for name in names
        for version in ("v1", "v2")
    )
    assert [(arn, version) for arn, version, _ in listed] == expected
    assert all(isinstance(record, bytes) and record for _, _, record in listed)


def test_replace_value_swaps_only_an_unchanged_value(store: Storage) -> None:
    secret = create(store, "s", b"doc", v1=b"one", v2=b"two")
    records = {version: record for _, version, record in store.iter_values()}
    # Whatever the layer stores (plaintext or a sealed record), the swap is byte for byte.
    assert store.replace_value(secret.arn, "v1", records["v2"] + b"!", records["v1"]) is False
    assert store.replace_value(secret.arn, "v1", records["v1"], records["v1"]) is True
    assert store.read_value(secret.arn, "v1") == b"one"
    assert store.load_by_arn(secret.arn) == secret  # document and revision untouched
    update(store, secret, b"doc", drop_values=["v2"])
    assert store.replace_value(secret.arn, "v2", records["v2"], records["v2"]) is False
    assert store.read_value(secret.arn, "v2") is None  # a dropped value is not brought back
    assert store.replace_value("arn:none", "v1", b"a", b"b") is False


def test_replace_value_writes_new_bytes_durably(reopen: Callable[[], Storage]) -> None:
    store = reopen()
    secret = create(store, "s", v1=b"one")
    [(_, _, record)] = list(store.iter_values())
    # A sealing layer stores records it made itself: re-seal as a key rotation does.
    fresh = (
        seal(store.keyring, secret.arn, "v1", b"uno")
        if isinstance(store, EncryptedStorage)
        else b"uno"
    )
    assert store.replace_value(secret.arn, "v1", record, fresh) is True
    store.close()
    again = reopen()
    assert again.read_value(secret.arn, "v1") == b"uno"
    assert [value for _, _, value in again.iter_values()] == [fresh]
