"""Argument types the commands share, checked once by argparse with the message users see."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def port(text: str) -> int:
    """A TCP port number, 0 for any free one."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535; 0 picks a free one)")
    return number


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """Where an existing store is and how its master key is found, for the commands that
    read one (the server has its own, with the options only a server takes)."""
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SECRETSD_DATA_DIR", "./data"))
    )
    parser.add_argument("--database-url", default=os.environ.get("SECRETSD_DATABASE_URL"))
    parser.add_argument(
        "--database-schema", default=os.environ.get("SECRETSD_DATABASE_SCHEMA", "secretsd")
    )
    parser.add_argument("--master-key-command", default=None)
    parser.add_argument("--master-key-kms", default=None, metavar="KEY_ARN")
