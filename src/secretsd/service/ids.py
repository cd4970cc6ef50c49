"""Ids shaped like UUIDs, for requests and audit events: a random prefix and a counter."""

from __future__ import annotations

import itertools
import os


class UniqueIds:
    """Ids shaped like AWS's (UUIDs): a random prefix per process and a counter.

    They only have to be unique, to find a request or an event again; they guard nothing. A
    uuid4 each costs an os.urandom call and a UUID object, a tenth of what the rest of the
    shell costs on the GetSecretValue path.
    """

    def __init__(self) -> None:
        prefix = os.urandom(10).hex()
        self._prefix = f"{prefix[:8]}-{prefix[8:12]}-4{prefix[12:15]}-8{prefix[15:18]}-"
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"
