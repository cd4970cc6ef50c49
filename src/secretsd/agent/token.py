"""The SSRF token: read once at start, compared in constant time on every request."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import messages

FILE_PREFIX = "file://"


class TokenError(Exception):
    """No usable token; the message is the one the AWS agent prints before exiting."""


def read_token(variables: Sequence[str], env: Mapping[str, str]) -> bytes:
    """The value of the first variable in ``variables`` that is set; ``file://`` is followed."""
    value = next((env[name] for name in variables if name in env), None)
    try:
        if value is None:
            raise LookupError(messages.TOKEN_NOT_PRESENT)
        if value.startswith(FILE_PREFIX):
            value = Path(value[len(FILE_PREFIX) :]).read_text(encoding="utf-8").strip()
    except LookupError as exc:
        raise TokenError(messages.token_unreadable(list(variables), exc.args[0])) from None
    except OSError as exc:
        # The AWS agent prints Rust's form of an I/O error: "<text> (os error <n>)".
        detail = f"{exc.strerror} (os error {exc.errno})" if exc.errno else str(exc)
        raise TokenError(messages.token_unreadable(list(variables), detail)) from None
    except UnicodeDecodeError:
        detail = "stream did not contain valid UTF-8"
        raise TokenError(messages.token_unreadable(list(variables), detail)) from None
    if not value:
        # The AWS agent would accept it, and then an empty header would pass the check.
        raise TokenError(messages.token_unreadable(list(variables), messages.TOKEN_EMPTY))
    return value.encode("utf-8")


def token_matches(candidate: bytes, token: bytes) -> bool:
    return hmac.compare_digest(candidate, token)
