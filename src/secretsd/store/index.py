"""The index both SQL backends keep beside the documents, and ListSecrets as SQL over it.

Theory of operation. ``secret_index`` has one row per secret with the columns lists sort
and page on; ``secret_attributes`` has the filterable text (``model.index``): names,
descriptions, description words and tags, as given and folded. Both are written from the
``IndexRecord`` of each ``Change`` inside the change's transaction, so they never disagree
with the documents.

A filter becomes a WHERE clause with the meaning of ``listing.matches``: prefixes compare
``substr(column, 1, n)`` with the value (case-sensitive, and free of LIKE's wildcards);
``description`` needs every word of the value to start some description word, ``all``
every word of the value to start some "word" row. Pages are keyset pages: the query
continues strictly after the last (sort value, ARN) returned, so page N costs what page 1
costs.

SQL here uses ``?`` placeholders; callers hand in ``run``/``run_many`` that spell them for
their driver, as in ``store.changes``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from secretsd.model import index, listing
from secretsd.model.index import IndexRecord
from secretsd.model.secret import Secret, UnreadableRecord
from secretsd.store import documents
from secretsd.store.base import ListQuery, SortKey

log = logging.getLogger("secretsd.store")

Run = Callable[[str, tuple], Any]
RunMany = Callable[[str, list[tuple]], None]

SORT_COLUMNS = {
    "created-date": "created",
    "last-accessed-date": "last_accessed",
    "last-changed-date": "last_changed",
    "name": "name",
}
_SELECT = "SELECT s.arn, s.name, s.revision, s.document"
_FROM = "FROM secret_index i JOIN secrets s ON s.arn = i.arn"
_NOTHING = "1 = 0"


def remove(run: Run, arn: str) -> None:
    run("DELETE FROM secret_attributes WHERE arn = ?", (arn,))
    run("DELETE FROM secret_index WHERE arn = ?", (arn,))


def write(run: Run, run_many: RunMany, arn: str, record: IndexRecord) -> None:
    """Replace the index of the secret ``arn`` with ``record``."""
    run("DELETE FROM secret_attributes WHERE arn = ?", (arn,))
    run(
        "INSERT INTO secret_index (arn, name, created, last_changed, last_accessed, "
        "deleted_date, deletion_date, rotation_attention) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (arn) DO UPDATE SET name = excluded.name, created = excluded.created, "
        "last_changed = excluded.last_changed, last_accessed = excluded.last_accessed, "
        "deleted_date = excluded.deleted_date, deletion_date = excluded.deletion_date, "
        "rotation_attention = excluded.rotation_attention",
        (
            arn,
            record.name,
            record.created,
            record.last_changed,
            record.last_accessed,
            record.deleted_date,
            record.deletion_date,
            record.rotation_attention,
        ),
    )
    if record.attributes:
        run_many(
            "INSERT INTO secret_attributes (arn, kind, value, folded) VALUES (?, ?, ?, ?)",
            [(arn, kind, value, folded) for kind, value, folded in record.attributes],
        )


def rebuild(run: Run, run_many: RunMany) -> None:
    """Index every stored secret from its document: the migration that adds the index."""
    run("DELETE FROM secret_attributes", ())
    run("DELETE FROM secret_index", ())
    for arn, name, document in run("SELECT arn, name, document FROM secrets", ()).fetchall():
        try:
            record = index.index_record(
                Secret.from_document(documents.unverified_document(bytes(document)))
            )
        except (UnreadableRecord, ValueError, TypeError, KeyError, AttributeError):
            # Reading it fails the same way: leaving it out of lists keeps them working.
            log.warning("secret %s has an unreadable document; it is not indexed", name)
            continue
        write(run, run_many, arn, record)


def _exists(condition: str) -> str:
    return f"EXISTS (SELECT 1 FROM secret_attributes a WHERE a.arn = i.arn AND {condition})"


def _prefix(column: str, value: str) -> str:
    # The length is our own integer, so it is part of the statement; the value is bound.
    return f"substr({column}, 1, {len(value):d}) = ?"


def _match(key: str, value: str) -> tuple[str, list[Any]]:
    """SQL true when one value of a filter with ``key`` matches (``listing._value_matches``)."""
    if key == "name":
        return _prefix("i.name", value), [value]
    if key in (index.TAG_KEY, index.TAG_VALUE):
        return _exists(f"a.kind = ? AND {_prefix('a.value', value)}"), [key, value]
    if key in ("description", "all"):
        kind, words = (
            (index.DESCRIPTION_WORD, listing.description_words(value))
            if key == "description"
            else (index.WORD, listing.all_words(value))
        )
        clauses = [_exists(f"a.kind = ? AND {_prefix('a.value', word)}") for word in words]
        args = [a for word in words for a in (kind, word)]
        return " AND ".join(clauses or [_NOTHING]), args
    # primary-region and owning-service: secretsd's secrets have neither.
    return _NOTHING, []


def _filter(f: listing.Filter) -> tuple[str, list[Any]]:
    clauses, args = [], []
    alternatives = []
    for value in f.values:
        sql, value_args = _match(f.key, value.removeprefix("!"))
        if value.startswith("!"):
            clauses.append(f"NOT ({sql})")
            args += value_args
        else:
            alternatives.append((sql, value_args))
    if alternatives:
        clauses.append("(" + " OR ".join(f"({sql})" for sql, _ in alternatives) + ")")
        args += [a for _, value_args in alternatives for a in value_args]
    return " AND ".join(clauses), args


def page_statement(query: ListQuery) -> tuple[str, list[Any]]:
    """The SELECT for ``query``: rows (arn, name, revision, document, sort value), one more
    than the page holds when a next page exists."""
    column = f"i.{SORT_COLUMNS[query.sort_by]}"
    where = ["(i.deletion_date IS NULL OR i.deletion_date > ?)"]
    args: list[Any] = [query.now]
    if not query.include_planned_deletion:
        where.append("i.deleted_date IS NULL")
    if query.after is not None:
        where.append(f"({column}, i.arn) {'<' if query.descending else '>'} (?, ?)")
        args += query.after
    for f in query.filters:
        sql, filter_args = _filter(f)
        where.append(f"({sql})")
        args += filter_args
    order = "DESC" if query.descending else "ASC"
    statement = (
        f"{_SELECT}, {column} {_FROM} WHERE {' AND '.join(where)} "
        f"ORDER BY {column} {order}, i.arn {order} LIMIT ?"
    )
    return statement, [*args, query.limit + 1]


def split_page(rows: list[tuple], limit: int) -> tuple[list[tuple], SortKey | None]:
    """The page's rows as (arn, name, revision, document), and the key after which the next
    page starts, if there is one."""
    page = [tuple(row[:4]) for row in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = rows[limit - 1]
    return page, (last[4], last[0])


CANDIDATES_STATEMENT = (
    f"{_SELECT} {_FROM} WHERE i.rotation_attention <= ? ORDER BY i.rotation_attention, i.arn"
)
