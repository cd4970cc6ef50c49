"""Rotation function ``secretsd-mysql-single-user``: MySQL/MariaDB, single user.

Lambda handler: ``mysql_single_user.lambda_handler`` (inside the packaged directory).
"""

from __future__ import annotations

from typing import Any

from .common import handle
from .database import DatabaseRotation
from .mysql_engine import MySQLEngine

ROTATION = DatabaseRotation(MySQLEngine(), alternating=False)


def lambda_handler(event: dict[str, Any], context: Any = None) -> None:
    handle(event, ROTATION)
