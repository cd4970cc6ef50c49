"""The store's index lists what ``model.listing`` lists, page by page, on every backend.

Hypothesis makes sets of secrets (names, descriptions and tags from small alphabets, so
filters match often; text with upper case, non-ASCII case pairs, NUL and odd whitespace;
dates drawn from a few values, so sort keys tie) and a ListSecrets request (filters with
negations, sort, order, planned deletions, page size, clock). The reference is the pure
model: ``listing.matches`` over every secret, ``listing.page`` for the pages. The store
must return the same secrets on the same pages, with the same continuation keys.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsd.model import listing
from secretsd.model.secret import Secret
from secretsd.service.edits import secret_change
from secretsd.store.base import Change, ListQuery, Storage

NAME_CHARS = "aAbBkK0/_-."
# Upper and lower case, letters whose lower case differs in length or lies outside ASCII
# (dotted I, Kelvin sign, sharp s), whitespace Python splits on but SQL would not, and
# characters no database stores as is.
TEXT_CHARS = "aAbBiIkK0 -_/:.\u0130\u212a\u00df\u00c9\u2003\x1c\x00\ud800"
FILTER_CHARS = "aAbBiIkK0 -_/:.!"
TIMES = (1.0, 2.0, 3.0)

texts = st.text(TEXT_CHARS, max_size=8)
tags = st.lists(
    st.fixed_dictionaries({"Key": st.text(TEXT_CHARS, min_size=1, max_size=5), "Value": texts}),
    max_size=3,
)


@st.composite
def secrets(draw) -> list[Secret]:
    names = draw(
        st.lists(st.text(NAME_CHARS, min_size=1, max_size=4), min_size=1, max_size=8, unique=True)
    )
    result = []
    for name in names:
        deleted = draw(st.none() | st.sampled_from(TIMES))
        result.append(
            Secret(
                arn=f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf",
                name=name,
                created=draw(st.sampled_from(TIMES)),
                last_changed=draw(st.sampled_from(TIMES)),
                last_accessed=draw(st.none() | st.sampled_from(TIMES)),
                description=draw(st.none() | texts),
                tags=draw(tags),
                deleted_date=deleted,
                deletion_date=None if deleted is None else deleted + draw(st.sampled_from(TIMES)),
            )
        )
    return result


@st.composite
def filter_values(draw, made: list[Secret]) -> str:
    """A valid filter value, mostly a piece of some secret's text, so that filters match."""
    pieces = [s.name for s in made] + [s.description or "" for s in made]
    pieces += [text for s in made for tag in s.tags for text in tag.values()]
    if pieces and draw(st.integers(0, 3)):
        text = draw(st.sampled_from(pieces))
        if text.split() and draw(st.booleans()):
            text = draw(st.sampled_from(text.split()))
        # Prefixes often: most filters match prefixes of a text or of its words.
        start = draw(st.sampled_from((0, 0, draw(st.integers(0, len(text))))))
        text = text[start : draw(st.integers(start, len(text)))]
        text = "".join(c for c in draw(st.sampled_from((text, text.upper()))) if c in FILTER_CHARS)
    else:
        text = draw(st.text(FILTER_CHARS, max_size=4))
    return draw(st.sampled_from(("", "", "", "!"))) + text


@st.composite
def filters(draw, made: list[Secret], key: str) -> list[listing.Filter]:
    """A filter on ``key``, and sometimes one more on any key."""

    def on(key: str) -> listing.Filter:
        values = draw(st.lists(filter_values(made), min_size=1, max_size=3))
        return listing.Filter(key, tuple(values))

    chosen = [on(key)]
    if draw(st.booleans()):
        chosen.append(on(draw(st.sampled_from(listing.FILTER_KEYS))))
    return chosen


def reference_pages(secrets: list[Secret], query: ListQuery) -> list[tuple[list[str], object]]:
    """The pages as ``read_ops`` computed them before the index, from every secret."""
    chosen = [
        s
        for s in secrets
        if (s.deletion_date is None or s.deletion_date > query.now)
        and (query.include_planned_deletion or not s.scheduled_for_deletion)
        and listing.matches(s, query.filters)
    ]
    result, token = [], None
    while True:
        chunk, token = listing.page(
            chosen,
            listing.sort_key(query.sort_by),
            descending=query.descending,
            token=token,
            max_results=query.limit,
        )
        after = None if token is None else listing.secret_after(token, query.sort_by)
        result.append(([s.arn for s in chunk], after))
        if token is None:
            return result


def store_pages(store: Storage, query: ListQuery) -> list[tuple[list[str], object]]:
    result = []
    while True:
        page, after = store.list_page(query)
        result.append(([s.arn for s in page], after))
        if after is None:
            return result
        query = dataclasses.replace(query, after=after)


@pytest.mark.parametrize("key", listing.FILTER_KEYS)
# PostgreSQL's connection pool draws from ``random`` in threads of its own, at moments no
# example controls; Hypothesis would blame the strategies drawing meanwhile.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
# The encrypting layer passes the index through; the conformance suite covers it there.
@pytest.mark.parametrize(
    "reopen", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    made=secrets(),
    sort_by=st.sampled_from(sorted(listing.SORT_KEYS)),
    descending=st.booleans(),
    include_planned_deletion=st.booleans(),
    limit=st.integers(1, 4),
    now=st.sampled_from((0.0, 3.0, 4.0, 10.0)),
)
def test_index_pages_equal_the_model_pages(
    store: Storage,
    key: str,
    data: st.DataObject,
    made: list[Secret],
    sort_by: str,
    descending: bool,
    include_planned_deletion: bool,
    limit: int,
    now: float,
) -> None:
    chosen_filters = data.draw(filters(made, key))
    # One store serves every example: empty it of the previous example's secrets first.
    for stored in list(store.iter_secrets()):
        store.commit(Change(stored.arn, stored.name, None, delete=True), durable=False)
    for secret in made:
        store.commit(secret_change(secret, None), durable=False)
    query = ListQuery(
        now=now,
        filters=tuple(chosen_filters),
        sort_by=sort_by,
        descending=descending,
        include_planned_deletion=include_planned_deletion,
        limit=limit,
    )
    assert store_pages(store, query) == reference_pages(made, query)
