"""IAM users in the SQL tables both backends share: schema, reads and one ``UserChange``
applied inside the caller's transaction. SQL is written with ``?`` placeholders, as in
``store.changes``.

Rows are keyed by the user name folded to lower case (IAM names are ASCII), so names are
unique, and found, regardless of case, while the name keeps the case it was created with.
"""

from __future__ import annotations

from typing import Any

from secretsd.store.base import Conflict, StoredUser, UserChange


def schema(blob: str) -> tuple[str, ...]:
    """The statements that create the tables; ``blob`` is the backend's binary type."""
    return (
        f"""CREATE TABLE iam_users (
            folded TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            revision BIGINT NOT NULL,
            document {blob} NOT NULL)""",
        f"""CREATE TABLE iam_access_keys (
            access_key_id TEXT PRIMARY KEY,
            folded TEXT NOT NULL,
            secret {blob} NOT NULL)""",
        "CREATE INDEX iam_access_keys_by_user ON iam_access_keys (folded)",
    )


def fold(name: str) -> str:
    return name.lower()


SELECT_USER = "SELECT name, revision, document FROM iam_users WHERE folded = ?"
SELECT_USERS = "SELECT name, revision, document FROM iam_users ORDER BY folded"
SELECT_USER_KEYS = (
    "SELECT access_key_id, secret FROM iam_access_keys WHERE folded = ? ORDER BY access_key_id"
)
SELECT_KEY = (
    "SELECT u.name, u.revision, u.document, k.secret FROM iam_access_keys k "
    "JOIN iam_users u ON u.folded = k.folded WHERE k.access_key_id = ?"
)


def user(row: tuple | None) -> StoredUser | None:
    return None if row is None else StoredUser(row[0], row[1], bytes(row[2]))


def key(row: tuple | None) -> tuple[StoredUser, bytes] | None:
    if row is None:
        return None
    return StoredUser(row[0], row[1], bytes(row[2])), bytes(row[3])


def apply_user_change(
    conn: Any, change: UserChange, *, placeholder: str, unique_violation: type[Exception]
) -> int:
    def run(statement: str, args: tuple) -> Any:
        return conn.execute(statement.replace("?", placeholder), args)

    folded, expected = fold(change.name), change.expected_revision
    if change.delete:
        if expected is None:
            run("DELETE FROM iam_users WHERE folded = ?", (folded,))
        elif (
            run(
                "DELETE FROM iam_users WHERE folded = ? AND revision = ?", (folded, expected)
            ).rowcount
            != 1
        ):
            raise Conflict(f"user {change.name} changed since revision {expected}")
        run("DELETE FROM iam_access_keys WHERE folded = ?", (folded,))
        return 0
    if expected is None:
        try:
            run(
                "INSERT INTO iam_users (folded, name, revision, document) VALUES (?, ?, 1, ?)",
                (folded, change.name, change.document),
            )
        except unique_violation:
            raise Conflict(f"a user named {change.name} exists") from None
        revision = 1
    else:
        updated = run(
            "UPDATE iam_users SET document = ?, revision = revision + 1 "
            "WHERE folded = ? AND revision = ?",
            (change.document, folded, expected),
        ).rowcount
        if updated != 1:
            raise Conflict(f"user {change.name} changed since revision {expected}")
        revision = expected + 1
    # Dropped first: a change may replace a key (re-sealed) by dropping and putting it.
    for key_id in change.drop_keys:
        run(
            "DELETE FROM iam_access_keys WHERE access_key_id = ? AND folded = ?",
            (key_id, folded),
        )
    for key_id, secret in change.put_keys.items():
        try:
            run(
                "INSERT INTO iam_access_keys (access_key_id, folded, secret) VALUES (?, ?, ?)",
                (key_id, folded, secret),
            )
        except unique_violation:
            raise Conflict(f"the access key {key_id} exists") from None
    return revision
