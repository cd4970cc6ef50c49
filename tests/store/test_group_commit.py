"""Group commit: many changes, one durable transaction, each change still atomic."""

from __future__ import annotations

import pytest

from secretsd.store.base import Change, Conflict
from secretsd.store.sqlite import SQLiteStorage


def create(name: str) -> Change:
    return Change(f"arn:{name}", name, None, b"{}", {"v1": b"value-" + name.encode()})


def test_changes_of_a_batch_land_together_and_a_failing_one_alone_is_undone(tmp_path):
    store = SQLiteStorage(tmp_path / "db")
    with store.batch():
        store.commit(create("a"))
        with pytest.raises(Conflict):
            store.commit(create("a"))  # the name is taken: only this change is undone
        store.commit(create("b"))
        # Inside the batch the writer sees its own changes...
        assert store.load_by_name("b") is not None
    store.close()
    # ...and after it they are on disk.
    reopened = SQLiteStorage(tmp_path / "db")
    assert [s.name for s in reopened.iter_secrets()] == ["a", "b"]
    assert reopened.read_value("arn:a", "v1") == b"value-a"
    reopened.close()


def test_an_error_escaping_the_batch_stores_nothing(tmp_path):
    store = SQLiteStorage(tmp_path / "db")
    with pytest.raises(RuntimeError), store.batch():
        store.commit(create("a"))
        raise RuntimeError("the group failed")
    assert store.load_by_name("a") is None
    store.commit(create("a"))  # and the store is usable afterwards
    assert store.load_by_name("a") is not None
    store.close()


def test_other_threads_do_not_see_a_batch_before_it_ends(tmp_path):
    import threading

    store = SQLiteStorage(tmp_path / "db")
    seen: list[object] = []
    with store.batch():
        store.commit(create("a"))
        reader = threading.Thread(target=lambda: seen.append(store.load_by_name("a")))
        reader.start()
        reader.join()
    assert seen == [None]
    assert store.load_by_name("a") is not None
    store.close()


def test_a_lazy_commit_is_visible_at_once_and_survives_reopening(tmp_path):
    store = SQLiteStorage(tmp_path / "db")
    store.commit(create("a"))
    stored = store.load_by_name("a")
    store.commit(Change("arn:a", "a", stored.revision, b'{"touched":1}'), durable=False)
    assert store.load_by_name("a").document == b'{"touched":1}'
    store.close()
    reopened = SQLiteStorage(tmp_path / "db")
    assert reopened.load_by_name("a").document == b'{"touched":1}'
    reopened.close()
