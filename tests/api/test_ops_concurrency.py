"""Concurrent callers on one secret: no lost write, no label on two versions, one winner."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from tests.api.test_ops_helpers import stages_by_version, unique_name

THREADS = 8


def run_in_threads(shared_server, job, count: int) -> list:
    """Run ``job(client, i)`` for i in range(count) over THREADS threads, one client each."""
    local = threading.local()

    def call(i: int):
        if not hasattr(local, "client"):
            local.client = shared_server.client()
        return job(local.client, i)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(call, range(count)))


def test_parallel_puts_keep_every_version_and_one_current(shared_server, sm):
    name = unique_name("race-put")
    sm.create_secret(Name=name, SecretString="seed")

    def put(client, i):
        version = str(uuid.uuid4())
        client.put_secret_value(
            SecretId=name, SecretString=f"value-{i}", ClientRequestToken=version
        )
        return version, f"value-{i}"

    written = run_in_threads(shared_server, put, 80)
    listed = stages_by_version(sm, name)
    for version, value in written:
        assert version in listed
        assert sm.get_secret_value(SecretId=name, VersionId=version)["SecretString"] == value
    for label in ("AWSCURRENT", "AWSPREVIOUS"):
        holders = [v for v, labels in listed.items() if label in labels]
        assert len(holders) == 1, (label, holders)
    labelled = {v for v, labels in listed.items() if labels}
    assert len(labelled) == 2
    current = sm.get_secret_value(SecretId=name)
    assert (current["VersionId"], current["SecretString"]) in written


def test_parallel_creates_of_one_name_have_one_winner(shared_server, sm):
    name = unique_name("race-create")

    def create(client, i):
        try:
            client.create_secret(Name=name, SecretString=f"from-{i}")
            return f"from-{i}"
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ResourceExistsException"
            return None

    results = run_in_threads(shared_server, create, 16)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert sm.get_secret_value(SecretId=name)["SecretString"] == winners[0]
    assert len(stages_by_version(sm, name)) == 1


def test_parallel_label_moves_leave_each_label_on_one_version(shared_server, sm):
    name = unique_name("race-label")
    versions = [str(uuid.uuid4()) for _ in range(4)]
    sm.create_secret(Name=name, SecretString="0", ClientRequestToken=versions[0])
    for i, version in enumerate(versions[1:], start=1):
        sm.put_secret_value(SecretId=name, SecretString=str(i), ClientRequestToken=version)

    def move(client, i):
        # Each caller reads the holder, then moves; losers of a race get a clean refusal.
        label = ("blue", "AWSCURRENT")[i % 2]
        target = versions[i % len(versions)]
        holder = next(
            (v for v, labels in stages_by_version(client, name).items() if label in labels), None
        )
        kwargs = {"MoveToVersionId": target}
        if holder is not None and holder != target:
            kwargs["RemoveFromVersionId"] = holder
        try:
            client.update_secret_version_stage(SecretId=name, VersionStage=label, **kwargs)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "InvalidParameterException"

    run_in_threads(shared_server, move, 60)
    listed = stages_by_version(sm, name)
    for label in ("AWSCURRENT", "AWSPREVIOUS", "blue"):
        assert len([v for v, labels in listed.items() if label in labels]) <= 1, listed
    assert len([v for v, labels in listed.items() if "AWSCURRENT" in labels]) == 1


def test_reads_during_writes_are_never_torn(shared_server, sm):
    # Each value names its own version: a read that pairs one version's id (or labels)
    # with another's value would show here.
    name = unique_name("race-read")
    first = str(uuid.uuid4())
    second = str(uuid.uuid4())
    sm.create_secret(Name=name, SecretString=f"value-of-{first}", ClientRequestToken=first)
    sm.put_secret_value(SecretId=name, SecretString=f"value-of-{second}", ClientRequestToken=second)
    stop = threading.Event()

    def write() -> None:
        client = shared_server.client()
        while not stop.is_set():
            version = str(uuid.uuid4())
            client.put_secret_value(
                SecretId=name, SecretString=f"value-of-{version}", ClientRequestToken=version
            )

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:

        def read(client, i):
            got = client.get_secret_value(SecretId=name)
            assert got["SecretString"] == f"value-of-{got['VersionId']}"
            assert "AWSCURRENT" in got["VersionStages"]
            previous = client.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
            assert previous["SecretString"] == f"value-of-{previous['VersionId']}"

        run_in_threads(shared_server, read, 300)
    finally:
        stop.set()
        writer.join(10)
