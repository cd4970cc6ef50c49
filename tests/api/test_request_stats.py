"""The API's request counts, pure: what a client sends cannot grow the set of series."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from secretsd.api.metrics import OTHER, RequestStats

KNOWN = ("GetSecretValue", "PutSecretValue")


@given(st.lists(st.tuples(st.text(max_size=30), st.sampled_from(["ok", "ValidationException"]))))
def test_unknown_operations_count_as_other(requests: list[tuple[str, str]]) -> None:
    stats = RequestStats(KNOWN)
    for operation, outcome in requests:
        stats.observe(operation, outcome, 0.001)
    snapshot = stats.snapshot()
    assert {operation for operation, _ in snapshot} <= {*KNOWN, OTHER}
    assert sum(s.count for s in snapshot.values()) == len(requests)
    for (operation, outcome), counted in snapshot.items():
        named = operation if operation != OTHER else None
        expected = sum(
            1
            for op, out in requests
            if out == outcome and (op == named if named else op not in KNOWN)
        )
        assert counted.count == expected
