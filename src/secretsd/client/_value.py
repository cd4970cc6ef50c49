"""A secret value that does not show itself in logs, tracebacks or f-strings."""

from __future__ import annotations

import hmac
import json
from typing import Any

from ._errors import ClientError

MASK = "SecretValue('**********')"


class SecretValue:
    """A secret string or bytes, with the version it came from and the source that gave it.

    ``repr`` and ``str`` are a fixed mask; ``reveal()`` is the one way to the value, so a
    reader sees every place that uses it.
    """

    __slots__ = ("_value", "source", "version_id")

    def __init__(
        self, value: str | bytes, *, version_id: str | None = None, source: str = ""
    ) -> None:
        if not isinstance(value, str | bytes):
            raise TypeError("a secret value is a str or bytes")
        self._value = value
        self.version_id = version_id
        self.source = source

    def reveal(self) -> str | bytes:
        """The secret itself: a ``str`` for SecretString, ``bytes`` for SecretBinary."""
        return self._value

    def json(self) -> Any:
        """The value parsed as JSON; a value that is not JSON raises ClientError without
        quoting any of it."""
        try:
            return json.loads(self._value)
        except (ValueError, UnicodeDecodeError):
            # from None: the decoder's message quotes the document around the error.
            raise ClientError("the secret value is not valid JSON") from None

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        if type(self._value) is not type(other._value):
            return False
        return hmac.compare_digest(_as_bytes(self._value), _as_bytes(other._value))

    # Equal values must hash alike, and a hash of a secret is a clue to it: no hashing.
    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        # Pickling would write the value wherever the pickle goes (caches, queues).
        raise TypeError("a SecretValue cannot be pickled")


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value
