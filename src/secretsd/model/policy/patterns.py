"""Strings in policies: wildcards and policy variables.

Theory of operation. A policy string is parsed once into a ``Template``: runs of policy
text, in which ``*`` and ``?`` are wildcards where the operator allows them; escapes
(``${*}``, ``${?}``, ``${$}``), which stand for the character itself and are never
wildcards; and variables (``${aws:username}``, ``${aws:PrincipalTag/team, 'none'}``), which
take a value from the request context when the request is evaluated. A substituted value is
literal too: a user named ``a*`` does not get a wildcard.

Resolving a template against a request gives ``Segments``, (text, wild) pairs, from which
the operator takes either the plain text (equality) or a compiled pattern (wildcards). A
variable whose key is missing from the request, or holds several values, has no value; a
template naming one resolves to ``None`` unless the variable gives a default, and the
statement holding it does not match.

Policies of the 2008-10-17 language predate variables: their ``${...}`` is plain text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

# One resolved piece of text, and whether its * and ? are wildcards.
Segment = tuple[str, bool]
Segments = tuple[Segment, ...]
# Looks a context key up by its lower-cased name; None when the request has no such key.
Lookup = Callable[[str], object]

_ESCAPES = frozenset("*?$")
_VARIABLE = re.compile(r"\s*([^\s,'}]+)\s*(?:,\s*'((?:[^']|'')*)'\s*)?")


@dataclass(frozen=True, slots=True)
class Variable:
    key: str  # lower-case, as context keys are compared
    default: str | None


@dataclass(frozen=True, slots=True)
class Escaped:
    text: str


Part = str | Escaped | Variable


@dataclass(frozen=True, slots=True)
class Template:
    """A policy string, ready to be resolved against many requests."""

    source: str
    parts: tuple[Part, ...]

    @property
    def has_variables(self) -> bool:
        return any(isinstance(part, Variable) for part in self.parts)

    def resolve(self, lookup: Lookup) -> Segments | None:
        segments: list[Segment] = []
        for part in self.parts:
            if isinstance(part, str):
                segments.append((part, True))
            elif isinstance(part, Escaped):
                segments.append((part.text, False))
            else:
                value = scalar_text(lookup(part.key))
                if value is None:
                    if part.default is None:
                        return None
                    value = part.default
                segments.append((value, False))
        return tuple(segments)


def parse_template(source: str, *, variables: bool) -> Template:
    """Split ``source`` into text, escapes and variables (no variables when not
    ``variables``). An opening ``${`` that is not closed, or whose inside is not a variable,
    is left as text."""
    if not variables or "${" not in source:
        return Template(source, (source,) if source else ())
    parts: list[Part] = []
    text: list[str] = []
    position = 0
    while position < len(source):
        start = source.find("${", position)
        end = source.find("}", start + 2) if start >= 0 else -1
        if start < 0 or end < 0:
            text.append(source[position:])
            break
        text.append(source[position:start])
        inside = source[start + 2 : end]
        part = _part(inside)
        if part is None:
            text.append(source[start : end + 1])
        else:
            if text:
                parts.append("".join(text))
                text = []
            parts.append(part)
        position = end + 1
    if any(text):
        parts.append("".join(text))
    return Template(source, tuple(p for p in parts if p != ""))


def _part(inside: str) -> Escaped | Variable | None:
    if inside in _ESCAPES:
        return Escaped(inside)
    match = _VARIABLE.fullmatch(inside)
    if match is None:
        return None
    default = match.group(2)
    return Variable(match.group(1).lower(), None if default is None else default.replace("''", "'"))


def scalar_text(value: object) -> str | None:
    """A context value as policies compare it: booleans as ``true``/``false``, times in ISO
    8601 UTC. None for a missing key or one with several values."""
    if value is None or isinstance(value, (list, tuple, set, frozenset)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bytes):
        return None
    return str(value)


def plain_text(segments: Segments) -> str:
    return "".join(text for text, _ in segments)


def has_wildcards(segments: Segments) -> bool:
    return any(wild and ("*" in text or "?" in text) for text, wild in segments)


@functools.lru_cache(maxsize=4096)
def compile_pattern(segments: Segments, ignore_case: bool = False) -> re.Pattern[str]:
    """The regular expression a policy wildcard string stands for: ``*`` any run of
    characters (``/`` and ``:`` included), ``?`` any one character."""
    pieces: list[str] = []
    for text, wild in segments:
        if not wild:
            pieces.append(re.escape(text))
            continue
        for char in text:
            if char == "*":
                pieces.append(".*")
            elif char == "?":
                pieces.append(".")
            else:
                pieces.append(re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(pieces), flags)


def wildcard_match(segments: Segments, value: str, *, ignore_case: bool = False) -> bool:
    return compile_pattern(segments, ignore_case).fullmatch(value) is not None


def split_segments(segments: Segments, separator: str, limit: int) -> list[Segments]:
    """Split resolved text on ``separator`` at most ``limit`` times, keeping each piece's
    wildcard marks (for ARNs, compared part by part)."""
    pieces: list[list[Segment]] = [[]]
    for text, wild in segments:
        chunks = text.split(separator)
        for index, chunk in enumerate(chunks):
            if index and len(pieces) <= limit:
                pieces.append([])
            elif index:
                pieces[-1].append((separator, False))
            if chunk:
                pieces[-1].append((chunk, wild))
    return [tuple(piece) for piece in pieces]
