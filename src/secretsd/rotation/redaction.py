"""Masking a secret's values out of the texts rotation keeps (error messages, history).

An operator reading why a rotation failed needs the host, the user name and the master
secret's ARN; only what would let someone in must go. So a JSON secret loses the values of
its fields that are named like credentials (password, keys, tokens), and a secret that is
not a JSON object is masked whole.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "********"
# Shorter words are too common in error texts to mask usefully ("app", "db").
MIN_REDACTED_LENGTH = 4

# A field whose name holds one of these is a credential: password, passwd, pwd, secret,
# client_secret, token, api_key, private_key, keyid, credentials, auth, passphrase, salt...
SECRET_FIELD = re.compile(r"pass|pwd|secret|token|key|credential|private|auth|signature|salt", re.I)


def is_secret_field(name: str, declared: frozenset[str] = frozenset()) -> bool:
    """Named like a credential, or declared secret by the rotation function (lower case)."""
    return SECRET_FIELD.search(name) is not None or name.lower() in declared


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _secret_strings(document: Any, declared: frozenset[str]) -> Iterable[str]:
    """The strings under credential fields, at any depth."""
    if isinstance(document, dict):
        for name, item in document.items():
            if is_secret_field(str(name), declared):
                yield from _strings(item)
            else:
                yield from _secret_strings(item, declared)
    elif isinstance(document, list):
        for item in document:
            yield from _secret_strings(item, declared)


def secret_words(plain: str, declared: frozenset[str] = frozenset()) -> set[str]:
    """What to mask for one stored value: its credential fields, or all of it."""
    with contextlib.suppress(ValueError):
        document = json.loads(plain)
        if isinstance(document, dict):
            return set(_secret_strings(document, declared))
    return {plain}


def scrub(text: str, secrets: Iterable[bytes], declared: frozenset[str] = frozenset()) -> str:
    """``text`` with the credentials held by ``secrets`` (stored values) masked; ``declared``
    names more fields that are secret (lower case), as a rotation function configures them."""
    words: set[str] = set()
    for stored in secrets:
        plain = stored[1:].decode(errors="replace") if stored[:1] == b"S" else ""
        if plain:
            words.update(secret_words(plain, declared))
    for word in sorted(words, key=len, reverse=True):
        if len(word) >= MIN_REDACTED_LENGTH:
            text = text.replace(word, REDACTED)
    return text
