"""One ``Change`` applied to the SQL tables both backends share, inside the caller's
transaction. SQL is written with ``?`` placeholders; each backend says how to spell them
and which exception its driver raises for a unique-constraint violation."""

from __future__ import annotations

from typing import Any

from secretsd.store import index
from secretsd.store.base import Change, Conflict


def runners(conn: Any, placeholder: str) -> tuple[index.Run, index.RunMany]:
    """Execute one statement, or one statement over many rows, on ``conn``."""

    def run(statement: str, args: tuple) -> Any:
        return conn.execute(statement.replace("?", placeholder), args)

    def run_many(statement: str, rows: list[tuple]) -> None:
        cursor = conn.cursor()
        try:
            cursor.executemany(statement.replace("?", placeholder), rows)
        finally:
            cursor.close()

    return run, run_many


def apply_change(
    conn: Any, change: Change, *, placeholder: str, unique_violation: type[Exception]
) -> int:
    """Apply ``change``; return the new revision (0 for a delete). Raises Conflict."""
    run, run_many = runners(conn, placeholder)
    arn, expected = change.arn, change.expected_revision
    if change.delete:
        if expected is None:
            run("DELETE FROM secrets WHERE arn = ?", (arn,))
        elif (
            run("DELETE FROM secrets WHERE arn = ? AND revision = ?", (arn, expected)).rowcount != 1
        ):
            raise Conflict(f"secret {arn} changed since revision {expected}")
        run("DELETE FROM secret_values WHERE arn = ?", (arn,))
        run("DELETE FROM events WHERE arn = ?", (arn,))
        index.remove(run, arn)
        return 0
    if expected is None:
        try:
            run(
                "INSERT INTO secrets (arn, name, revision, document) VALUES (?, ?, 1, ?)",
                (arn, change.name, change.document),
            )
        except unique_violation:
            raise Conflict(f"a secret named {change.name} or with ARN {arn} exists") from None
        revision = 1
    else:
        try:
            updated = run(
                "UPDATE secrets SET name = ?, document = ?, revision = revision + 1 "
                "WHERE arn = ? AND revision = ?",
                (change.name, change.document, arn, expected),
            ).rowcount
        except unique_violation:
            raise Conflict(f"another secret is named {change.name}") from None
        if updated != 1:
            raise Conflict(f"secret {arn} changed since revision {expected}")
        revision = expected + 1
    if change.put_values:
        run_many(
            "INSERT INTO secret_values (arn, version_id, value) VALUES (?, ?, ?) "
            "ON CONFLICT (arn, version_id) DO UPDATE SET value = excluded.value",
            [(arn, version_id, value) for version_id, value in change.put_values.items()],
        )
    if change.drop_values:
        run_many(
            "DELETE FROM secret_values WHERE arn = ? AND version_id = ?",
            [(arn, version_id) for version_id in change.drop_values],
        )
    if change.index is not None:
        index.write(run, run_many, arn, change.index)
    return revision
