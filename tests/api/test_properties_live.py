"""Random sequences of label operations on the live server, checked against a tiny model.

The model below is written from the spec's rules alone (a label on at most one version;
AWSCURRENT moving takes AWSPREVIOUS to the version it left; a put without labels moves
AWSCURRENT; a put that takes AWSCURRENT leaves the old current exactly AWSPREVIOUS, without
the AWSPENDING a finished rotation left there; the first version always gets AWSCURRENT) and
shares no code with the server.
After every step the server's whole label map must equal the model's.
"""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.api.test_ops_helpers import stages_by_version, unique_name

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
MOVABLE = [CURRENT, PREVIOUS, PENDING, "blue", "green"]
REMOVABLE = [PREVIOUS, PENDING, "blue", "green"]

values = st.text(min_size=1, max_size=16)
stage_lists = st.none() | st.lists(st.sampled_from(MOVABLE), min_size=1, max_size=3, unique=True)


class LabelModel:
    """Versions and their labels, per the spec, with nothing shared with the server."""

    def __init__(self) -> None:
        self.labels: dict[str, set[str]] = {}
        self.values: dict[str, str] = {}

    def holder(self, label: str) -> str | None:
        for version, labels in self.labels.items():
            if label in labels:
                return version
        return None

    def attach(self, label: str, version: str) -> None:
        left = self.holder(label)
        if left == version:
            return
        if left is not None:
            self.labels[left].discard(label)
        self.labels[version].add(label)
        if label == CURRENT and left is not None:
            self.attach(PREVIOUS, left)

    def put(self, version: str, value: str, stages: list[str] | None) -> None:
        wanted = [CURRENT] if stages is None else list(stages)
        if self.holder(CURRENT) is None and CURRENT not in wanted:
            wanted.append(CURRENT)
        left = self.holder(CURRENT)
        self.labels[version] = set()
        self.values[version] = value
        for label in wanted:
            self.attach(label, version)
        if left is not None and left != self.holder(CURRENT):
            # AWS: PutSecretValue never leaves AWSPENDING on the version it took AWSCURRENT
            # from; UpdateSecretVersionStage moves only the label it names.
            self.labels[left].discard(PENDING)


class LabelMachine(RuleBasedStateMachine):
    versions = Bundle("versions")

    def __init__(self, client) -> None:
        super().__init__()
        self.sm = client
        self.name = unique_name("prop")
        self.sm.create_secret(Name=self.name)
        self.model = LabelModel()

    def _put(self, value: str, stages: list[str] | None) -> str:
        version = str(uuid.uuid4())
        kwargs = {} if stages is None else {"VersionStages": stages}
        self.sm.put_secret_value(
            SecretId=self.name, SecretString=value, ClientRequestToken=version, **kwargs
        )
        self.model.put(version, value, stages)
        return version

    @initialize(target=versions, value=values, stages=stage_lists)
    def first_put(self, value, stages):
        return self._put(value, stages)

    @rule(target=versions, value=values, stages=stage_lists)
    def put(self, value, stages):
        return self._put(value, stages)

    @rule(version=versions)
    def replay_same_value(self, version):
        self.sm.put_secret_value(
            SecretId=self.name,
            SecretString=self.model.values[version],
            ClientRequestToken=version,
        )

    @rule(version=versions, value=values)
    def replay_other_value(self, version, value):
        if value == self.model.values[version]:
            return
        with pytest.raises(ClientError) as caught:
            self.sm.put_secret_value(
                SecretId=self.name, SecretString=value, ClientRequestToken=version
            )
        assert caught.value.response["Error"]["Code"] == "ResourceExistsException"

    @rule(label=st.sampled_from(MOVABLE), version=versions)
    def move(self, label, version):
        holder = self.model.holder(label)
        kwargs = {"MoveToVersionId": version}
        if holder is not None and holder != version:
            kwargs["RemoveFromVersionId"] = holder
        self.sm.update_secret_version_stage(SecretId=self.name, VersionStage=label, **kwargs)
        self.model.attach(label, version)

    @rule(label=st.sampled_from(MOVABLE), version=versions)
    def move_without_naming_the_holder(self, label, version):
        holder = self.model.holder(label)
        if holder is None or holder == version:
            return
        with pytest.raises(ClientError) as caught:
            self.sm.update_secret_version_stage(
                SecretId=self.name, VersionStage=label, MoveToVersionId=version
            )
        assert caught.value.response["Error"]["Code"] == "InvalidParameterException"

    @rule(label=st.sampled_from(REMOVABLE))
    def remove(self, label):
        holder = self.model.holder(label)
        if holder is None:
            return
        self.sm.update_secret_version_stage(
            SecretId=self.name, VersionStage=label, RemoveFromVersionId=holder
        )
        self.model.labels[holder].discard(label)

    @rule(version=versions)
    def read_by_id(self, version):
        value = self.sm.get_secret_value(SecretId=self.name, VersionId=version)
        assert value["SecretString"] == self.model.values[version]
        assert set(value.get("VersionStages", [])) == self.model.labels[version]

    @invariant()
    def labels_match_the_model(self):
        if not self.model.labels:
            return
        listed = stages_by_version(self.sm, self.name)
        for label in MOVABLE:
            holders = [v for v, labels in listed.items() if label in labels]
            assert len(holders) <= 1, (label, holders)
        assert len([v for v, labels in listed.items() if CURRENT in labels]) == 1
        assert listed == self.model.labels
        described = self.sm.describe_secret(SecretId=self.name)["VersionIdsToStages"]
        assert {k: set(v) for k, v in described.items()} == {
            k: v for k, v in self.model.labels.items() if v
        }

    @invariant()
    def plain_read_is_the_current_version(self):
        if not self.model.labels:
            return
        current = self.model.holder(CURRENT)
        value = self.sm.get_secret_value(SecretId=self.name)
        assert value["VersionId"] == current
        assert value["SecretString"] == self.model.values[current]
        for label in MOVABLE:
            holder = self.model.holder(label)
            if holder is not None:
                by_label = self.sm.get_secret_value(SecretId=self.name, VersionStage=label)
                assert by_label["VersionId"] == holder


@pytest.mark.slow
def test_label_operations_follow_the_model(sm):
    run_state_machine_as_test(
        lambda: LabelMachine(sm),
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
