"""Database fixtures of the rotation-function tests, shared with the server-level ones."""

from tests.rotation.functions.conftest import mysql_users, pg_roles  # noqa: F401
