"""The audit hash chain as pure code: sealing, and naming the first record tampered with."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from secretsd.model.audit_chain import (
    EMPTY,
    GENESIS,
    Head,
    Line,
    Problem,
    Verified,
    canonical,
    chain_hash,
    check,
    head_of,
    seal,
)


def chain(bodies: list[dict]) -> list[Line]:
    head = EMPTY
    lines = []
    for number, body in enumerate(bodies, 1):
        line, head = seal(canonical(body), head)
        assert line.endswith(b"\n")
        lines.append(Line(f"audit.log:{number}", line.decode().rstrip("\n")))
    return lines


def records(count: int) -> list[dict]:
    return [{"eventName": "GetSecretValue", "eventID": f"id-{n}", "n": n} for n in range(count)]


def test_a_sealed_line_carries_the_documented_hash():
    body = canonical({"eventName": "CreateSecret", "b": [1, "é"], "a": None})
    assert body == '{"a":null,"b":[1,"é"],"eventName":"CreateSecret"}'
    line, head = seal(body, EMPTY)
    record = json.loads(line)
    assert record["sequence"] == 1 and record["previousHash"] == GENESIS
    # The hash as docs/access.md defines it, computed independently.
    import hashlib

    expected = hashlib.sha256(f"1\n{GENESIS}\n{body}".encode()).hexdigest()
    assert record["hash"] == expected == head.hash == chain_hash(1, GENESIS, body)
    assert head_of(line.decode()) == Head(1, expected)


def test_an_intact_chain_verifies_and_reports_its_head():
    lines = chain(records(5))
    outcome = check(lines)
    assert isinstance(outcome, Verified)
    assert outcome.records == 5 and outcome.head == head_of(lines[-1].text)


def test_an_empty_log_verifies():
    assert check([]) == Verified(0, EMPTY)


def edited(line: Line) -> Line:
    record = json.loads(line.text)
    record["eventName"] = "DeleteSecret"
    return Line(line.where, json.dumps(record))


@given(st.integers(2, 12), st.data())
def test_an_edited_record_is_named(count, data):
    lines = chain(records(count))
    target = data.draw(st.integers(0, count - 1))
    lines[target] = edited(lines[target])
    problem = check(lines)
    assert isinstance(problem, Problem)
    assert problem.where == f"audit.log:{target + 1}" and problem.sequence == target + 1
    assert "edited" in str(problem)


@given(st.integers(2, 12), st.data())
def test_a_record_edited_with_its_hash_recomputed_is_named(count, data):
    lines = chain(records(count))
    target = data.draw(st.integers(0, count - 2))
    record = json.loads(lines[target].text)
    sequence, previous = record.pop("sequence"), record.pop("previousHash")
    record.pop("hash")
    record["eventName"] = "DeleteSecret"
    record.update(
        sequence=sequence,
        previousHash=previous,
        hash=chain_hash(sequence, previous, canonical(record)),
    )
    lines[target] = Line(lines[target].where, json.dumps(record))
    problem = check(lines)
    assert isinstance(problem, Problem)
    assert problem.where == f"audit.log:{target + 1}" and problem.sequence == target + 1


@given(st.integers(2, 12), st.data())
def test_a_removed_record_is_named(count, data):
    lines = chain(records(count))
    target = data.draw(st.integers(0, count - 2))  # the last one's removal is undetectable
    del lines[target]
    problem = check(lines)
    assert isinstance(problem, Problem)
    assert f"record {target + 1} was removed" in str(problem)


@given(st.integers(2, 12), st.data())
def test_two_swapped_records_are_named(count, data):
    lines = chain(records(count))
    target = data.draw(st.integers(0, count - 2))
    lines[target], lines[target + 1] = lines[target + 1], lines[target]
    problem = check(lines)
    assert isinstance(problem, Problem)
    assert problem.sequence == target + 2 and "out of order" in str(problem)
    assert f"record {target + 1} was moved" in str(problem)


def test_a_line_that_is_not_a_record_is_named():
    lines = chain(records(3))
    lines[1] = Line(lines[1].where, lines[1].text[:-5])
    problem = check(lines)
    assert isinstance(problem, Problem) and problem.where == "audit.log:2"


def test_a_chain_that_does_not_start_at_one_is_reported():
    lines = chain(records(4))[2:]
    problem = check(lines)
    assert isinstance(problem, Problem)
    assert "records 1 to 2 were removed" in str(problem)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )
)
def test_any_record_body_round_trips_through_a_line(value):
    body = canonical({"value": value} if value is not None else {})
    line, _ = seal(body, EMPTY)
    outcome = check([Line("x", line.decode().rstrip("\n"))])
    assert outcome == Verified(1, head_of(line.decode()))
