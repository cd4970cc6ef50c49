"""Staging labels across PutSecretValue and UpdateSecretVersionStage, in process.

The wire-level property test (tests/api/test_properties_live.py) checks a few short
sequences through boto3. Here the service is called directly, so many more and longer
sequences fit in the same time, the clock can move (deprecated versions are purged only
once they are a day old), and the bursts of puts needed to reach the purge limit are cheap.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from secretsd.model import errors
from secretsd.store import open_storage
from tests.service.conftest import DAY, HOUR, FakeClock, SdkService

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
LABELS = [CURRENT, PREVIOUS, PENDING, "blue", "green"]
KEPT_DEPRECATED = 100


def token(n: int) -> str:
    return f"{n:032d}"


def put(service, value: str, version: str, stages: list[str] | None = None) -> dict:
    body = {"SecretId": "s", "SecretString": value, "ClientRequestToken": version}
    if stages is not None:
        body["VersionStages"] = stages
    return service.call("PutSecretValue", body)


def labels_by_version(service, name: str = "s") -> dict[str, set[str]]:
    """Every version with a value, labelled or not, and its labels."""
    found: dict[str, set[str]] = {}
    body = {"SecretId": name, "IncludeDeprecated": True, "MaxResults": 100}
    while True:
        page = service.call("ListSecretVersionIds", body)
        for version in page["Versions"]:
            found[version["VersionId"]] = set(version.get("VersionStages", []))
        if "NextToken" not in page:
            return found
        body = {**body, "NextToken": page["NextToken"]}


# -- single rules, by example ----------------------------------------------------------


def test_a_put_moves_current_and_previous_follows(service):
    first = service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})["VersionId"]
    put(service, "v2", token(2))
    put(service, "v3", token(3))
    assert labels_by_version(service) == {
        first: set(),
        token(2): {PREVIOUS},
        token(3): {CURRENT},
    }
    assert service.call("GetSecretValue", {"SecretId": "s"})["SecretString"] == "v3"
    previous = service.call("GetSecretValue", {"SecretId": "s", "VersionStage": PREVIOUS})
    assert previous["SecretString"] == "v2"


def test_a_put_with_labels_leaves_current_where_it_is(service):
    first = service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})["VersionId"]
    put(service, "v2", token(2), [PENDING, "blue"])
    assert labels_by_version(service) == {first: {CURRENT}, token(2): {PENDING, "blue"}}
    put(service, "v3", token(3), ["blue"])
    # A label listed on a put leaves the version that had it.
    assert labels_by_version(service) == {
        first: {CURRENT},
        token(2): {PENDING},
        token(3): {"blue"},
    }


def test_the_first_value_gets_current_whatever_labels_it_asks_for(service):
    service.call("CreateSecret", {"Name": "s"})
    put(service, "v1", token(1), ["blue"])
    assert labels_by_version(service) == {token(1): {CURRENT, "blue"}}


def test_moving_current_onto_the_pending_version_keeps_pending_there(service):
    """As recorded on the real service: v0 [AWSPREVIOUS], v1 [AWSCURRENT, AWSPENDING]."""
    v0 = service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})["VersionId"]
    put(service, "v1", token(1), [PENDING])
    service.call(
        "UpdateSecretVersionStage",
        {
            "SecretId": "s",
            "VersionStage": CURRENT,
            "MoveToVersionId": token(1),
            "RemoveFromVersionId": v0,
        },
    )
    assert labels_by_version(service) == {v0: {PREVIOUS}, token(1): {CURRENT, PENDING}}


def test_a_put_after_a_finished_rotation_leaves_the_old_current_previous_only(service):
    """AWS: once AWSCURRENT sits with AWSPENDING, a PutSecretValue with default stages
    leaves that version exactly [AWSPREVIOUS]; AWSPENDING does not linger on it."""
    v0 = service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})["VersionId"]
    put(service, "v1", token(1), [PENDING])
    service.call(
        "UpdateSecretVersionStage",
        {
            "SecretId": "s",
            "VersionStage": CURRENT,
            "MoveToVersionId": token(1),
            "RemoveFromVersionId": v0,
        },
    )
    assert put(service, "v2", token(2))["VersionStages"] == [CURRENT]
    (old_current,) = [
        v
        for v in service.call("ListSecretVersionIds", {"SecretId": "s"})["Versions"]
        if v["VersionId"] == token(1)
    ]
    assert old_current["VersionStages"] == [PREVIOUS]
    assert labels_by_version(service) == {v0: set(), token(1): {PREVIOUS}, token(2): {CURRENT}}
    with pytest.raises(errors.ResourceNotFound):
        service.call("GetSecretValue", {"SecretId": "s", "VersionStage": PENDING})


def test_a_put_that_leaves_current_in_place_leaves_pending_beside_it(service):
    """Only a version that loses AWSCURRENT to a put loses its AWSPENDING with it."""
    v0 = service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})["VersionId"]
    service.call(
        "UpdateSecretVersionStage",
        {"SecretId": "s", "VersionStage": PENDING, "MoveToVersionId": v0},
    )
    put(service, "v1", token(1), ["blue"])
    assert labels_by_version(service) == {v0: {CURRENT, PENDING}, token(1): {"blue"}}


def test_moving_a_held_label_needs_its_holder_named(service):
    v0 = service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})["VersionId"]
    put(service, "v1", token(1), ["blue"])
    before = labels_by_version(service)
    with pytest.raises(errors.InvalidParameter):
        service.call(
            "UpdateSecretVersionStage",
            {"SecretId": "s", "VersionStage": "blue", "MoveToVersionId": v0},
        )
    with pytest.raises(errors.InvalidParameter):
        service.call(
            "UpdateSecretVersionStage",
            {
                "SecretId": "s",
                "VersionStage": "blue",
                "MoveToVersionId": v0,
                "RemoveFromVersionId": v0,
            },
        )
    assert labels_by_version(service) == before


def test_current_can_be_moved_but_not_removed(service):
    v0 = service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})["VersionId"]
    with pytest.raises(errors.InvalidParameter):
        service.call(
            "UpdateSecretVersionStage",
            {"SecretId": "s", "VersionStage": CURRENT, "RemoveFromVersionId": v0},
        )
    assert labels_by_version(service) == {v0: {CURRENT}}


def test_a_repeated_token_is_settled_by_its_value(service):
    service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})
    put(service, "v1", token(1))
    put(service, "v2", token(2))
    before = labels_by_version(service)
    # The same token and value again: success, and no label moves back.
    assert put(service, "v1", token(1))["VersionId"] == token(1)
    assert labels_by_version(service) == before
    with pytest.raises(errors.ResourceExists):
        put(service, "changed", token(1))
    assert labels_by_version(service) == before


# -- the purge of deprecated versions ---------------------------------------------------


def test_deprecated_versions_past_a_hundred_are_purged_once_a_day_old(service, clock):
    first = service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})["VersionId"]
    puts = [token(n) for n in range(1, 121)]
    for n, version in enumerate(puts, start=1):
        put(service, f"v{n}", version)
        clock.advance(60)
    # 119 deprecated, all younger than a day: every one is kept.
    deprecated = [v for v, labels in labels_by_version(service).items() if not labels]
    assert len(deprecated) == 119

    clock.advance(DAY)
    put(service, "last", token(999))
    listed = labels_by_version(service)
    deprecated = {v for v, labels in listed.items() if not labels}
    assert len(deprecated) == KEPT_DEPRECATED
    # The oldest went: the secret's first value and the earliest puts.
    gone = {first, *puts[:19]}
    assert not gone & set(listed)
    assert deprecated == set(puts[19:119])
    assert listed[puts[-1]] == {PREVIOUS}
    assert listed[token(999)] == {CURRENT}
    with pytest.raises(errors.ResourceNotFound):
        service.call("GetSecretValue", {"SecretId": "s", "VersionId": first})
    kept = service.call("GetSecretValue", {"SecretId": "s", "VersionId": puts[19]})
    assert kept["SecretString"] == "v20"


def test_a_labelled_version_is_never_purged_however_old(service, clock):
    service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})
    put(service, "keep", token(1), ["blue"])
    clock.advance(2 * DAY)
    for n in range(2, 110):
        put(service, f"v{n}", token(n))
    clock.advance(2 * DAY)
    put(service, "last", token(999))
    listed = labels_by_version(service)
    assert listed[token(1)] == {"blue"}
    assert len([v for v, labels in listed.items() if not labels]) == KEPT_DEPRECATED


# -- random sequences against a model ---------------------------------------------------


class Model:
    """What the spec says the labels and values are; written apart from the service."""

    def __init__(self) -> None:
        self.holders: dict[str, str] = {}  # label -> version
        self.values: dict[str, str] = {}
        self.created: dict[str, float] = {}

    def labels_of(self, version: str) -> set[str]:
        return {label for label, held in self.holders.items() if held == version}

    def move(self, label: str, version: str) -> None:
        left = self.holders.get(label)
        self.holders[label] = version
        if label == CURRENT and left is not None and left != version:
            self.holders[PREVIOUS] = left

    def put(self, version: str, value: str, stages: list[str] | None, now: float) -> None:
        self.values[version] = value
        self.created[version] = now
        wanted = list(stages) if stages is not None else [CURRENT]
        if CURRENT not in self.holders and CURRENT not in wanted:
            wanted.append(CURRENT)
        left = self.holders.get(CURRENT)
        for label in wanted:
            self.move(label, version)
        moved = left is not None and self.holders[CURRENT] != left
        if moved and self.holders.get(PENDING) == left:
            # A new version taking AWSCURRENT leaves the old one AWSPREVIOUS only; a put
            # that leaves AWSCURRENT where it is leaves AWSPENDING beside it too.
            del self.holders[PENDING]
        self.purge(now)

    def purge(self, now: float) -> None:
        deprecated = sorted(
            (v for v in self.values if not self.labels_of(v)), key=self.created.__getitem__
        )
        old = [v for v in deprecated if now - self.created[v] >= DAY]
        for version in old[: max(0, len(deprecated) - KEPT_DEPRECATED)]:
            del self.values[version]
            del self.created[version]


stage_lists = st.none() | st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True)


class LabelSequences(RuleBasedStateMachine):
    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.storage = open_storage(data_dir, env={}, mode="create")
        self.service = SdkService(self.storage, clock=self.clock)
        self.model = Model()
        self.tokens = itertools.count(1)

    def teardown(self) -> None:
        self.storage.close()

    def _put(self, value: str, stages: list[str] | None) -> None:
        version = token(next(self.tokens))
        response = put(self.service, value, version, stages)
        self.model.put(version, value, stages, self.clock())
        assert set(response["VersionStages"]) == self.model.labels_of(version)

    def _check_purged(self) -> None:
        """Right after a put: at most 100 deprecated versions, unless the rest are young."""
        now = self.clock()
        deprecated = [v for v, labels in labels_by_version(self.service).items() if not labels]
        young = [v for v in deprecated if now - self.model.created[v] < DAY]
        assert len(deprecated) <= KEPT_DEPRECATED or len(young) == len(deprecated)

    @initialize(with_value=st.booleans(), stages=stage_lists, near_the_limit=st.booleans())
    def create(self, with_value: bool, stages: list[str] | None, near_the_limit: bool) -> None:
        self.service.call("CreateSecret", {"Name": "s"})
        if with_value:
            self._put("first", stages)
        if near_the_limit:
            # Start a day after 99 puts: the sequence that follows decides, label by label,
            # what the purge may take. One group commit pays for one fsync, not 99.
            with self.service.group_commit():
                for n in range(KEPT_DEPRECATED - 1):
                    self._put(f"old {n}", None)
            self.clock.advance(DAY)
            self._check_purged()

    @rule(value=st.text(max_size=8), stages=stage_lists)
    def put_value(self, value: str, stages: list[str] | None) -> None:
        self._put(value or "-", stages)
        self._check_purged()

    @rule(hours=st.sampled_from([1, 23, 25, 72]))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours * HOUR)

    @precondition(lambda self: self.model.values)
    @rule(label=st.sampled_from(LABELS), data=st.data(), name_the_holder=st.booleans())
    def move_label(self, label: str, data, name_the_holder: bool) -> None:
        target = data.draw(st.sampled_from(sorted(self.model.values)))
        holder = self.model.holders.get(label)
        body = {"SecretId": "s", "VersionStage": label, "MoveToVersionId": target}
        if name_the_holder and holder is not None:
            body["RemoveFromVersionId"] = holder
        if holder is not None and holder != target and "RemoveFromVersionId" not in body:
            with pytest.raises(errors.InvalidParameter):
                self.service.call("UpdateSecretVersionStage", body)
            return
        self.service.call("UpdateSecretVersionStage", body)
        self.model.move(label, target)

    @precondition(lambda self: self.model.holders)
    @rule(data=st.data())
    def remove_label(self, data) -> None:
        label = data.draw(st.sampled_from(sorted(self.model.holders)))
        body = {
            "SecretId": "s",
            "VersionStage": label,
            "RemoveFromVersionId": self.model.holders[label],
        }
        if label == CURRENT:
            with pytest.raises(errors.InvalidParameter):
                self.service.call("UpdateSecretVersionStage", body)
            return
        self.service.call("UpdateSecretVersionStage", body)
        del self.model.holders[label]

    @precondition(lambda self: self.model.values)
    @rule(data=st.data(), same=st.booleans())
    def repeat_a_token(self, data, same: bool) -> None:
        version = data.draw(st.sampled_from(sorted(self.model.values)))
        value = self.model.values[version] if same else self.model.values[version] + "!"
        if same:
            put(self.service, value, version)
        else:
            with pytest.raises(errors.ResourceExists):
                put(self.service, value, version)

    @invariant()
    def each_label_on_at_most_one_version(self) -> None:
        listed = labels_by_version(self.service)
        for label in LABELS:
            assert len([v for v, labels in listed.items() if label in labels]) <= 1, label
        assert listed == {v: self.model.labels_of(v) for v in self.model.values}

    @invariant()
    def current_exists_once_there_is_a_value(self) -> None:
        if not self.model.values:
            with pytest.raises(errors.ResourceNotFound):
                self.service.call("GetSecretValue", {"SecretId": "s"})
            return
        current = self.service.call("GetSecretValue", {"SecretId": "s"})
        assert current["VersionId"] == self.model.holders[CURRENT]
        assert current["SecretString"] == self.model.values[current["VersionId"]]
        staged = self.service.call("DescribeSecret", {"SecretId": "s"})["VersionIdsToStages"]
        assert {v: set(labels) for v, labels in staged.items()} == {
            v: self.model.labels_of(v) for v in self.model.values if self.model.labels_of(v)
        }

    @invariant()
    def deprecated_versions_are_listed_only_on_request(self) -> None:
        listed = self.service.call("ListSecretVersionIds", {"SecretId": "s"})
        assert {v["VersionId"] for v in listed["Versions"]} == {
            v for v in self.model.values if self.model.labels_of(v)
        }


# A failing run spends up to hypothesis's own five minutes shrinking (each example starts
# with up to 99 puts); the longer timeout lets it report the shrunk sequence rather than
# be killed mid-shrink, as it was when this model lagged the service. Passing takes ~30 s.
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_random_sequences_keep_the_label_rules(tmp_path_factory):
    run_state_machine_as_test(
        lambda: LabelSequences(tmp_path_factory.mktemp("labels")),
        settings=settings(
            max_examples=40,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
