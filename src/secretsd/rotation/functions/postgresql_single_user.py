"""Rotation function ``secretsd-postgresql-single-user``: PostgreSQL, single user.

Lambda handler: ``postgresql_single_user.lambda_handler`` (inside the packaged directory).
"""

from __future__ import annotations

from typing import Any

from .common import handle
from .database import DatabaseRotation
from .postgresql_engine import PostgreSQLEngine

ROTATION = DatabaseRotation(PostgreSQLEngine(), alternating=False)


def lambda_handler(event: dict[str, Any], context: Any = None) -> None:
    handle(event, ROTATION)
