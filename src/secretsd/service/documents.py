"""Decoded documents kept for reads.

Decoding a secret's document (JSON, then the dataclasses) is about a fifth of the work of a
GetSecretValue, and most reads of a secret find the same document as the read before. The
cache keeps, per secret, the document bytes and the ``Secret`` decoded from them; a hit
needs the stored document to be byte for byte the one cached, so it returns exactly what
decoding would return, whatever the store does with revisions. The stored record is still
read, and checked by the layers below, on every request.

What the cache hands out is shared by every reader: the read operations never change a
secret they got from it, and writers decode their own copy (``SecretsService.load``).
Threads may share the cache: each step is one dict operation, and a race costs a decode.
"""

from __future__ import annotations

from secretsd.model.secret import Secret
from secretsd.store.base import StoredSecret

# One entry per secret, a few KiB each at most; past the limit the cache starts over, which
# keeps misses O(1) when more secrets are read in turn than it holds.
DEFAULT_SIZE = 4096


class DocumentCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: dict[str, tuple[bytes, str, Secret]] = {}

    def get(self, stored: StoredSecret) -> Secret | None:
        """The secret decoded from this very record before, if it is cached."""
        cached = self._entries.get(stored.arn)
        if (
            cached is not None
            and stored.problem is None
            and cached[0] == stored.document
            and cached[1] == stored.name
        ):
            return cached[2]
        return None

    def put(self, stored: StoredSecret, secret: Secret) -> Secret:
        """Remember ``secret``, decoded (and checked) from ``stored``; returns it."""
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[stored.arn] = (stored.document, stored.name, secret)
        return secret
