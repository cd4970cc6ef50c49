"""Files only their owner may read (keys, credentials, tokens), written all at once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def publish_private_file(path: Path, data: bytes) -> bool:
    """Create ``path`` with mode 0600 holding ``data``; False when it already exists.

    The data goes to a private temporary file first and is then linked into place, so a
    concurrent reader sees either no file or the whole of it, and of several processes
    racing to create it exactly one wins.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
