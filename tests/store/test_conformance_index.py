"""The conformance suite, continued: the index (``list_page``, ``rotation_candidates``).

Runs on every backend of ``conftest.BACKENDS``, like ``test_conformance``. Index records are
written by hand here, so these tests pin what the store does with a record; that the
service's records and SQL filters mean what ``model.listing`` means is the property test in
``test_index_equivalence``.
"""

from __future__ import annotations

import dataclasses

import pytest

from secretsd.model import index
from secretsd.model.index import IndexRecord
from secretsd.model.listing import Filter
from secretsd.store.base import Change, ListQuery, Storage, StoredSecret


def record(name: str, created: float = 1.0, **fields) -> IndexRecord:
    attributes = fields.pop("attributes", ())
    defaults = dict(
        name=name,
        created=created,
        last_changed=created,
        last_accessed=0.0,
        deleted_date=None,
        deletion_date=None,
        rotation_attention=None,
        attributes=((index.NAME, name, name.lower()), *attributes),
    )
    return IndexRecord(**{**defaults, **fields})


def arn_of(name: str) -> str:
    return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"


def put(store: Storage, entry: IndexRecord, revision: int | None = None) -> StoredSecret:
    arn = arn_of(entry.name)
    document = f"doc of {entry.name}".encode()
    new = store.commit(Change(arn, entry.name, revision, document, index=entry))
    return StoredSecret(arn, entry.name, new, document)


def pages(store: Storage, query: ListQuery) -> list[list[str]]:
    """Every page of ``query``, as the names on each."""
    result = []
    while True:
        page, after = store.list_page(query)
        result.append([s.name for s in page])
        if after is None:
            return result
        query = dataclasses.replace(query, after=after)


def test_list_page_returns_stored_secrets_with_their_documents(store: Storage) -> None:
    made = put(store, record("one"))
    page, after = store.list_page(ListQuery(now=10.0))
    assert page == [made]
    assert after is None


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        ("created-date", ["a", "c", "b", "d"]),
        ("last-changed-date", ["d", "b", "a", "c"]),
        ("last-accessed-date", ["b", "d", "c", "a"]),
        ("name", ["a", "b", "c", "d"]),
    ],
)
def test_pages_follow_the_sort_key_then_the_arn(
    store: Storage, sort_by: str, expected: list[str]
) -> None:
    # b and d tie on last-accessed (never read) and sort by ARN; a and c tie on created.
    put(store, record("a", created=2.0, last_changed=3.0, last_accessed=9.0))
    put(store, record("b", created=3.0, last_changed=2.0))
    put(store, record("c", created=2.0, last_changed=4.0, last_accessed=5.0))
    put(store, record("d", created=4.0, last_changed=1.0))
    query = ListQuery(now=10.0, sort_by=sort_by, limit=3)
    assert pages(store, query) == [expected[:3], expected[3:]]
    descending = dataclasses.replace(query, descending=True, limit=2)
    reverse = expected[::-1]
    assert pages(store, descending) == [reverse[:2], reverse[2:]]


def test_a_full_last_page_says_there_is_no_next(store: Storage) -> None:
    for name in "ab":
        put(store, record(name))
    assert store.list_page(ListQuery(now=10.0, limit=2))[1] is None
    assert pages(store, ListQuery(now=10.0, limit=1)) == [["a"], ["b"]]


def test_a_page_continues_after_its_key_whatever_changed_meanwhile(store: Storage) -> None:
    for i, name in enumerate("abcd"):
        put(store, record(name, created=float(i)))
    first, after = store.list_page(ListQuery(now=10.0, limit=2))
    store.commit(Change(arn_of("a"), "a", None, delete=True))
    put(store, record("e", created=0.5))
    second, _ = store.list_page(ListQuery(now=10.0, limit=2, after=after))
    assert [s.name for s in first] == ["a", "b"]
    assert [s.name for s in second] == ["c", "d"]


def test_planned_deletion_is_listed_on_request_and_purged_secrets_never(store: Storage) -> None:
    put(store, record("kept"))
    put(store, record("planned", deleted_date=5.0, deletion_date=50.0))
    put(store, record("expired", deleted_date=5.0, deletion_date=20.0))
    assert pages(store, ListQuery(now=10.0)) == [["kept"]]
    assert pages(store, ListQuery(now=10.0, include_planned_deletion=True)) == [
        ["expired", "kept", "planned"]
    ]
    assert pages(store, ListQuery(now=20.0, include_planned_deletion=True)) == [["kept", "planned"]]


def test_filters_query_the_attributes(store: Storage) -> None:
    tag = (
        (index.TAG_KEY, "Team", "team"),
        (index.TAG_VALUE, "Blue", "blue"),
        *((index.WORD, w, w) for w in ("team", "blue")),
    )
    words = ((index.DESCRIPTION, "Main DB", "main db"),) + tuple(
        (kind, w, w) for w in ("main", "db") for kind in (index.DESCRIPTION_WORD, index.WORD)
    )
    put(store, record("app/one", attributes=tag))
    put(store, record("app/two", attributes=words))
    put(store, record("other", attributes=tag + words))

    def names(*filters: Filter) -> list[str]:
        return [n for page in pages(store, ListQuery(now=10.0, filters=filters)) for n in page]

    assert names(Filter("name", ("app/",))) == ["app/one", "app/two"]
    assert names(Filter("name", ("!app/o",))) == ["app/two", "other"]
    assert names(Filter("tag-key", ("Te",)), Filter("description", ("DB ma",))) == ["other"]
    assert names(Filter("tag-value", ("blue",))) == []
    assert names(Filter("all", ("BLU",))) == ["app/one", "other"]
    # "all" looks at word rows only, and at their starts.
    assert names(Filter("all", ("app",))) == []
    assert names(Filter("all", ("lue",))) == []
    assert names(Filter("all", ("blue main",))) == ["other"]
    assert names(Filter("primary-region", ("us",))) == []
    assert names(Filter("owning-service", ("!x",))) == ["app/one", "app/two", "other"]


def test_an_update_replaces_the_record_and_a_delete_removes_it(store: Storage) -> None:
    tagged = ((index.TAG_KEY, "Team", "team"),)
    first = put(store, record("s", attributes=tagged))
    query = ListQuery(now=10.0, filters=(Filter("tag-key", ("Team",)),))
    assert pages(store, query) == [["s"]]
    second = put(store, record("s"), revision=first.revision)
    assert pages(store, query) == [[]]
    assert pages(store, ListQuery(now=10.0)) == [["s"]]
    store.commit(Change(second.arn, "s", second.revision, delete=True))
    assert pages(store, ListQuery(now=10.0)) == [[]]


def test_a_change_without_a_record_keeps_the_record(store: Storage) -> None:
    first = put(store, record("s", rotation_attention=1.0))
    store.commit(Change(first.arn, "s", first.revision, b"doc"))
    assert pages(store, ListQuery(now=10.0)) == [["s"]]
    assert [s.name for s in store.rotation_candidates(10.0)] == ["s"]
    store.commit(Change(arn_of("bare"), "bare", None, b"doc"))
    assert pages(store, ListQuery(now=10.0)) == [["s"]]
    assert store.load_by_name("bare") is not None


def test_a_conflicting_change_leaves_the_record(store: Storage) -> None:
    first = put(store, record("s", created=1.0))
    stale = record("s", created=1.0, last_changed=7.0, attributes=((index.TAG_KEY, "K", "k"),))
    with pytest.raises(Exception, match="changed since"):
        put(store, stale, revision=first.revision + 5)
    query = ListQuery(now=10.0, filters=(Filter("tag-key", ("K",)),))
    assert pages(store, query) == [[]]


def test_rotation_candidates_are_those_needing_attention_by_now(store: Storage) -> None:
    put(store, record("never"))
    soon = put(store, record("soon", rotation_attention=5.0))
    later = put(store, record("later", rotation_attention=50.0))
    put(store, record("gone", rotation_attention=None, deleted_date=1.0, deletion_date=9.0))
    assert store.rotation_candidates(4.9) == []
    assert store.rotation_candidates(5.0) == [soon]
    assert store.rotation_candidates(60.0) == [soon, later]


def test_the_index_survives_reopening(reopen) -> None:
    store = reopen()
    put(store, record("durable", rotation_attention=1.0))
    store.close()
    again = reopen()
    assert pages(again, ListQuery(now=10.0)) == [["durable"]]
    assert [s.name for s in again.rotation_candidates(2.0)] == ["durable"]
