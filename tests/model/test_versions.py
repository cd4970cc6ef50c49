"""Staging-label rules, pure: no server, no storage, no clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.model import errors, versions
from secretsd.model.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS, Secret

V = [f"{i:032d}" for i in range(200)]
DAY = 86400.0


def new_secret() -> Secret:
    return Secret(
        arn="arn:aws:secretsmanager:us-east-1:1:secret:s-abcdef",
        name="s",
        created=0.0,
        last_changed=0.0,
    )


def stages(secret: Secret) -> dict[str, list[str]]:
    return {vid: sorted(s) for vid, s in secret.staged_versions().items()}


def test_first_version_gets_awscurrent_even_when_other_labels_are_asked_for():
    secret = new_secret()
    versions.add_version(secret, V[0], 1.0, [AWSPENDING])
    assert stages(secret) == {V[0]: sorted([AWSCURRENT, AWSPENDING])}


def test_new_version_without_stages_takes_awscurrent_and_previous_follows():
    secret = new_secret()
    versions.add_version(secret, V[0], 1.0, None)
    versions.add_version(secret, V[1], 2.0, None)
    versions.add_version(secret, V[2], 3.0, None)
    assert stages(secret) == {V[2]: [AWSCURRENT], V[1]: [AWSPREVIOUS]}
    assert secret.versions[V[0]].deprecated


def test_custom_labels_are_exclusive_too():
    secret = new_secret()
    versions.add_version(secret, V[0], 1.0, ["blue"])
    versions.add_version(secret, V[1], 2.0, ["blue"])
    assert stages(secret) == {V[0]: [AWSCURRENT], V[1]: ["blue"]}


def test_moving_current_onto_pending_version_keeps_pending_there():
    # Recorded on the real service.
    secret = new_secret()
    versions.add_version(secret, V[0], 1.0, None)
    versions.add_version(secret, V[1], 2.0, [AWSPENDING])
    versions.update_version_stage(secret, AWSCURRENT, V[0], V[1], 3.0)
    assert stages(secret) == {V[0]: [AWSPREVIOUS], V[1]: sorted([AWSCURRENT, AWSPENDING])}


def test_moving_a_label_held_elsewhere_requires_remove_from():
    secret = new_secret()
    versions.add_version(secret, V[0], 1.0, None)
    versions.add_version(secret, V[1], 2.0, [AWSPENDING])
    with pytest.raises(errors.InvalidParameter, match="RemoveFromVersionId can't be empty"):
        versions.update_version_stage(secret, AWSCURRENT, None, V[1], 3.0)
    with pytest.raises(errors.InvalidParameter, match="is not attached"):
        versions.update_version_stage(secret, AWSCURRENT, V[1], V[1], 3.0)


def test_remove_only_and_awscurrent_cannot_be_removed_alone():
    secret = new_secret()
    versions.add_version(secret, V[0], 1.0, None)
    versions.add_version(secret, V[1], 2.0, [AWSPENDING])
    versions.update_version_stage(secret, AWSPENDING, V[1], None, 3.0)
    assert secret.versions[V[1]].deprecated
    with pytest.raises(errors.InvalidParameter):
        versions.update_version_stage(secret, AWSCURRENT, V[0], None, 3.0)


def test_select_version_rules():
    secret = new_secret()
    versions.add_version(secret, V[0], 1.0, None)
    versions.add_version(secret, V[1], 2.0, [AWSPENDING], has_value=False)
    assert versions.select_version(secret, None, None).version_id == V[0]
    with pytest.raises(errors.ResourceNotFound) as exc:
        versions.select_version(secret, None, AWSPENDING)
    assert exc.value.message == errors.value_not_found_for_stage(AWSPENDING)
    with pytest.raises(errors.ResourceNotFound) as exc:
        versions.select_version(secret, V[9], None)
    assert exc.value.message == errors.value_not_found_for_version(V[9])
    with pytest.raises(errors.InvalidRequest) as exc:
        versions.select_version(secret, V[0], AWSPENDING)
    assert exc.value.message == errors.STAGE_NOT_ON_VERSION


def test_deprecated_versions_past_100_are_purged_except_young_ones():
    secret = new_secret()
    for i in range(150):
        versions.add_version(secret, V[i], float(i), None)
    # All created "now": too young to purge.
    assert len(secret.versions) == 150
    dropped = versions.add_version(secret, V[150], 10 * DAY, None)
    deprecated = [v for v in secret.versions.values() if v.deprecated]
    assert len(deprecated) == 100
    assert dropped == V[:49]  # the oldest go first


def test_at_most_twenty_labels_per_version():
    secret = new_secret()
    versions.add_version(secret, V[0], 1.0, [f"l{i}" for i in range(19)])
    assert len(secret.versions[V[0]].stages) == 20  # 19 + AWSCURRENT
    with pytest.raises(errors.LimitExceeded):
        versions.attach(secret, "one-too-many", V[0])


def test_document_round_trip_keeps_everything():
    secret = new_secret()
    secret.tags = [{"Key": "k", "Value": "v"}]
    versions.add_version(secret, V[0], 1.0, None)
    versions.add_version(secret, V[1], 2.0, [AWSPENDING], has_value=False)
    again = Secret.from_document(secret.to_document())
    assert again == secret


LABELS = [AWSCURRENT, AWSPREVIOUS, AWSPENDING, "blue", "green"]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.none() | st.lists(st.sampled_from(LABELS), max_size=3)),
        st.tuples(
            st.just("move"),
            st.sampled_from(LABELS),
            st.integers(0, 30),
            st.booleans(),
        ),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_label_invariants_hold_over_any_sequence(ops):
    secret = new_secret()
    count = 0
    for op in ops:
        before_current = secret.holder(AWSCURRENT)
        if op[0] == "put":
            versions.add_version(secret, V[count], float(count), op[1])
            count += 1
            moved_current = op[1] is None or AWSCURRENT in op[1] or before_current is None
            # An explicit AWSPREVIOUS in the same request is placed after the implicit one.
            moved_current = moved_current and AWSPREVIOUS not in (op[1] or [])
        else:
            _, label, target, with_remove = op
            if count == 0:
                continue
            target_id = V[target % count]
            holder = secret.holder(label)
            remove = holder.version_id if (holder and with_remove) else None
            try:
                versions.update_version_stage(secret, label, remove, target_id, float(count))
            except errors.InvalidParameter:
                # Refused only when the label sits elsewhere and RemoveFromVersionId was left out.
                assert holder is not None and holder.version_id != target_id and remove is None
                continue
            moved_current = label == AWSCURRENT
        # A label sits on at most one version.
        seen: list[str] = [s for v in secret.versions.values() for s in v.stages]
        assert len(seen) == len(set(seen))
        current = secret.holder(AWSCURRENT)
        if count:
            assert current is not None
        # AWSPREVIOUS follows AWSCURRENT when it moves.
        if moved_current and before_current is not None and current is not before_current:
            assert AWSPREVIOUS in before_current.stages


def test_changes_and_edits_never_show_values_in_repr():
    from secretsd.service.edits import Edit
    from secretsd.store.base import Change

    change = Change("arn", "name", 1, b"{}", {"v": b"hunter2-value"})
    edit = Edit(True, {"v": b"hunter2-value"})
    assert "hunter2" not in repr(change) and "hunter2" not in repr(edit)
