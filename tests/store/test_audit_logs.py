"""The audit logs, file and PostgreSQL, against one conformance suite; then what each does
on its own (rolling files, a failed write, nodes taking turns at one chain)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secretsd.model.audit_chain import Verified, canonical, check
from secretsd.store import StorageError
from secretsd.store.audit import AuditLog, AuditWriteError, FileAuditLog, rolled_files
from tests.store.conftest import POSTGRES_DSN

Opener = Callable[[], AuditLog]


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the parametrised log; each call opens the same log again (the one before it
    must be closed first for the file, which has one writer)."""
    opened: list[AuditLog] = []
    if request.param == "postgres":
        from secretsd.store.audit_postgres import PostgresAuditLog

        schema = request.getfixturevalue("pg_schema")

        def open_log() -> AuditLog:
            return PostgresAuditLog(POSTGRES_DSN, schema=schema)
    else:

        def open_log() -> AuditLog:
            return FileAuditLog(tmp_path)

    def opener() -> AuditLog:
        log = open_log()
        opened.append(log)
        return log

    yield opener
    for log in opened:
        log.close()


def body(n: int) -> str:
    return canonical({"eventName": "GetSecretValue", "eventID": f"e{n}"})


def stored(log: AuditLog) -> list[dict]:
    return [json.loads(line.text) for line in log.lines()]


def test_records_are_stored_in_order_on_one_chain(reopen: Opener):
    log = reopen()
    log.append([body(1)])
    log.append([body(2), body(3), body(4)])
    records = stored(log)
    assert [r["eventID"] for r in records] == ["e1", "e2", "e3", "e4"]
    assert [r["sequence"] for r in records] == [1, 2, 3, 4]
    outcome = check(log.lines())
    assert isinstance(outcome, Verified) and outcome.records == 4


def test_appends_from_an_event_loop_and_from_threads_share_the_chain(reopen: Opener):
    import asyncio

    log = reopen()

    async def from_the_loop() -> None:
        for n in range(10):
            await log.append_async([body(n), body(n + 100)])

    writer = threading.Thread(target=lambda: [log.append([body(500 + n)]) for n in range(10)])
    writer.start()
    asyncio.run(from_the_loop())
    writer.join()
    log.append([body(999)])
    outcome = check(log.lines())
    assert isinstance(outcome, Verified) and outcome.records == 31


def test_a_reopened_log_continues_the_chain(reopen: Opener):
    log = reopen()
    log.append([body(1), body(2)])
    log.close()
    again = reopen()
    again.append([body(3)])
    outcome = check(again.lines())
    assert isinstance(outcome, Verified) and outcome.head.sequence == 3


def test_appends_from_many_threads_make_one_linear_chain(reopen: Opener):
    log = reopen()

    def writer(n: int) -> None:
        for i in range(20):
            log.append([body(n * 100 + i), body(n * 100 + i + 50)])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome = check(log.lines())
    assert isinstance(outcome, Verified) and outcome.records == 160


def test_the_file_rolls_by_size_and_the_chain_runs_on_across_files(tmp_path: Path):
    log = FileAuditLog(tmp_path, max_bytes=4096)
    try:
        for n in range(60):
            log.append([body(n)])
    finally:
        log.close()
    files = rolled_files(tmp_path)
    assert len(files) > 3 and files[-1].name == "audit.log"
    assert files[0].name == "audit.log.000001"
    assert all(path.stat().st_size < 4096 + 512 for path in files)
    outcome = check(FileAuditLog.lines(log))
    assert isinstance(outcome, Verified) and outcome.records == 60
    # Stopped between a roll's rename and the new file: the head is in the last rolled one.
    os.rename(tmp_path / "audit.log", tmp_path / f"audit.log.{len(files):06d}")
    again = FileAuditLog(tmp_path, max_bytes=4096)
    try:
        again.append([body(60)])
        outcome = check(again.lines())
        assert isinstance(outcome, Verified) and outcome.head.sequence == 61
    finally:
        again.close()


def test_one_process_writes_a_file_log(tmp_path: Path):
    log = FileAuditLog(tmp_path)
    try:
        with pytest.raises(StorageError, match="another process writes the audit log"):
            FileAuditLog(tmp_path)
    finally:
        log.close()


def test_the_file_is_private(tmp_path: Path):
    log = FileAuditLog(tmp_path)
    log.append([body(1)])
    log.close()
    assert (tmp_path / "audit.log").stat().st_mode & 0o777 == 0o600


def test_a_half_written_last_record_is_cut_when_the_log_opens(tmp_path: Path):
    log = FileAuditLog(tmp_path)
    log.append([body(1), body(2)])
    log.close()
    with (tmp_path / "audit.log").open("ab") as handle:
        handle.write(b'{"eventName":"GetSecr')  # a crash in the middle of a write
    again = FileAuditLog(tmp_path)
    try:
        again.append([body(3)])
        outcome = check(again.lines())
        assert isinstance(outcome, Verified) and outcome.records == 3
    finally:
        again.close()


def test_a_failed_write_raises_and_stores_nothing(tmp_path: Path):
    full = tmp_path / "full"
    full.mkdir()
    os.symlink("/dev/full", full / "audit.log")
    log = FileAuditLog(full)
    try:
        with pytest.raises(AuditWriteError, match="No space left"):
            log.append([body(1)])
        # The writer keeps trying: once the file is writable again, the chain starts.
        (full / "audit.log").unlink()
        log.append([body(2)])
        records = [json.loads(line.text) for line in log.lines()]
        assert [(r["eventID"], r["sequence"]) for r in records] == [("e2", 1)]
    finally:
        log.close()


@pytest.mark.postgres
def test_nodes_sharing_postgres_take_turns_at_one_chain(pg_schema: str):
    from secretsd.store.audit_postgres import PostgresAuditLog

    nodes = [PostgresAuditLog(POSTGRES_DSN, schema=pg_schema) for _ in range(3)]
    try:

        def node(n: int) -> None:
            for i in range(15):
                nodes[n].append([body(n * 100 + i), body(n * 100 + i + 50)])

        threads = [threading.Thread(target=node, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcome = check(nodes[0].lines())
        assert isinstance(outcome, Verified) and outcome.records == 90
    finally:
        for log in nodes:
            log.close()


@pytest.mark.postgres
def test_reading_a_schema_without_a_log_is_an_error_and_creates_nothing(pg_schema: str):
    import psycopg

    from secretsd.store import audit_lines

    with pytest.raises(StorageError, match=f"the schema {pg_schema} holds no audit log"):
        list(audit_lines("unused", POSTGRES_DSN, schema=pg_schema))
    with psycopg.connect(POSTGRES_DSN) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (pg_schema,)
        ).fetchone()
    assert found is None
