"""Rotation function ``secretsd-postgresql-multi-user``: PostgreSQL, alternating users.

Lambda handler: ``postgresql_multi_user.lambda_handler`` (inside the packaged directory).
"""

from __future__ import annotations

from typing import Any

from .common import handle
from .database import DatabaseRotation
from .postgresql_engine import PostgreSQLEngine

ROTATION = DatabaseRotation(PostgreSQLEngine(), alternating=True)


def lambda_handler(event: dict[str, Any], context: Any = None) -> None:
    handle(event, ROTATION)
