"""ListSecrets and BatchGetSecretValue filters, sorting and page tokens.

Filter rules as documented for the real service: each value is a prefix match. ``name``,
``tag-key``, ``tag-value``, ``primary-region`` and ``owning-service`` are case-sensitive;
``description`` is not, and matches the start of any word; ``all`` splits its value into
words and needs each to start a word of some attribute, ignoring case. A value starting
with ``!`` negates; several values of one filter match any, several filters must all match.

Words, for ``all``, as AWS's user guide describes them: only ASCII letters and digits count
(anything else separates), and a word also ends where a lower-case letter meets an
upper-case one or a letter meets a digit: ``credsDatabase#892`` is creds, Database, 892.
So ``all=Secret`` finds ``app/MySecret`` and ``my-secret`` but not ``Thirdsecret``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from . import errors
from .secret import Secret

T = TypeVar("T")

FILTER_KEYS = (
    "description",
    "name",
    "tag-key",
    "tag-value",
    "primary-region",
    "owning-service",
    "all",
)
SORT_KEYS: dict[str, Callable[[Secret], Any]] = {
    "created-date": lambda s: s.created,
    "last-accessed-date": lambda s: s.last_accessed or 0.0,
    "last-changed-date": lambda s: s.last_changed,
    "name": lambda s: s.name,
}
# A run of digits; upper-case letters with the lower-case ones after them; lower-case
# letters. Whatever else lies between them is a separator.
_WORD = re.compile(r"[0-9]+|[A-Z]+[a-z]*|[a-z]+")
_FILTER_VALUE = re.compile(r"^!?[a-zA-Z0-9 :_@/+=.\-!]*$")


@dataclass(frozen=True, slots=True)
class Filter:
    key: str
    values: tuple[str, ...]


def parse_filters(raw: object) -> list[Filter]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise errors.SerializationError("Expected a list for Filters.")
    if len(raw) > 10:
        raise errors.constraint(
            "filters", "Member must have length less than or equal to 10", len(raw)
        )
    result = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise errors.SerializationError("Expected an object in Filters.")
        key, values = item.get("Key"), item.get("Values")
        if key not in FILTER_KEYS:
            raise errors.constraint(
                f"filters.{n}.member.key",
                f"Member must satisfy enum value set: [{', '.join(FILTER_KEYS)}]",
                key,
            )
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise errors.SerializationError("Expected a list of strings for Filters' Values.")
        if not 1 <= len(values) <= 10:
            bound = "greater than or equal to 1" if not values else "less than or equal to 10"
            raise errors.constraint(
                f"filters.{n}.member.values", f"Member must have length {bound}", len(values)
            )
        if any(len(v) > 512 or not _FILTER_VALUE.match(v) for v in values):
            raise errors.constraint(
                f"filters.{n}.member.values",
                errors.item_constraints(
                    "Member must satisfy regular expression pattern: "
                    "^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$",
                    "Member must have length less than or equal to 512",
                ),
                f"[{', '.join(values)}]",
            )
        result.append(Filter(key, tuple(values)))
    return result


def _attributes(secret: Secret, key: str) -> list[str]:
    if key == "name":
        return [secret.name]
    if key == "description":
        return [secret.description] if secret.description else []
    if key == "tag-key":
        return [t["Key"] for t in secret.tags]
    if key == "tag-value":
        return [t["Value"] for t in secret.tags]
    if key in ("primary-region", "owning-service"):
        return []
    # "all": every attribute above
    return [
        a for k in ("name", "description", "tag-key", "tag-value") for a in _attributes(secret, k)
    ]


def all_words(text: str) -> list[str]:
    """The words of ``text`` for the ``all`` filter, folded: of a filter value, each must
    start a word of some attribute."""
    return [word.lower() for word in _WORD.findall(text)]


def description_words(text: str) -> list[str]:
    """Words of a description, or of a ``description`` filter value, folded."""
    return text.lower().split()


def _value_matches(secret: Secret, key: str, value: str) -> bool:
    attributes = _attributes(secret, key)
    if key == "all":
        # Split before folding: a change of case ends a word.
        wanted = all_words(value)
        found = {word for attr in attributes for word in all_words(attr)}
        return bool(wanted) and all(any(w.startswith(v) for w in found) for v in wanted)
    if key == "description":
        attributes = [a.lower() for a in attributes]
        value = value.lower()
        # Each word of the value starts some word of the description, in any order:
        # "My Description" finds "Description of my secret".
        words = description_words(value)
        return bool(words) and any(
            all(any(d.startswith(w) for d in attr.split()) for w in words) for attr in attributes
        )
    return any(attr.startswith(value) for attr in attributes)


def matches(secret: Secret, filters: Sequence[Filter]) -> bool:
    for f in filters:
        positive = [v for v in f.values if not v.startswith("!")]
        negative = [v[1:] for v in f.values if v.startswith("!")]
        if any(_value_matches(secret, f.key, v) for v in negative):
            return False
        if positive and not any(_value_matches(secret, f.key, v) for v in positive):
            return False
    return True


def check_sort(sort_by: str | None) -> str:
    """The ``SortBy`` asked for, created-date by default."""
    if sort_by is not None and sort_by not in SORT_KEYS:
        raise errors.constraint(
            "sortBy", f"Member must satisfy enum value set: [{', '.join(SORT_KEYS)}]", sort_by
        )
    return sort_by or "created-date"


def sort_key(sort_by: str | None) -> Callable[[Secret], tuple[Any, str]]:
    key = SORT_KEYS[check_sort(sort_by)]
    return lambda s: (key(s), s.arn)


def check_order(order: str | None) -> bool:
    """True for descending."""
    if order is not None and order not in ("asc", "desc"):
        raise errors.constraint(
            "sortOrder", "Member must satisfy enum value set: [asc, desc]", order
        )
    return order == "desc"


_INVALID_TOKEN = "The NextToken value is invalid."


def encode_token(last_key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(["secretsd", *last_key]).encode()).decode()


def decode_token(token: str) -> tuple[Any, ...]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        raise errors.InvalidNextToken(_INVALID_TOKEN) from None
    if not isinstance(decoded, list) or len(decoded) < 2 or decoded[0] != "secretsd":
        raise errors.InvalidNextToken(_INVALID_TOKEN)
    return tuple(decoded[1:])


def secret_after(token: str | None, sort_by: str) -> tuple[float | str, str] | None:
    """The sort key a ListSecrets ``NextToken`` continues after (None for the first page),
    checked against ``sort_by``: a token from a list in another order is invalid."""
    if token is None:
        return None
    last = decode_token(token)
    if len(last) != 2 or not isinstance(last[1], str):
        raise errors.InvalidNextToken(_INVALID_TOKEN)
    value = last[0]
    if sort_by == "name":
        if not isinstance(value, str):
            raise errors.InvalidNextToken(_INVALID_TOKEN)
        return value, last[1]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise errors.InvalidNextToken(_INVALID_TOKEN)
    return float(value), last[1]


def page(
    items: Iterable[T],
    key: Callable[[T], tuple[Any, ...]],
    *,
    descending: bool,
    token: str | None,
    max_results: int | None,
    default: int = 100,
) -> tuple[list[T], str | None]:
    """One page of ``items`` in key order, and the token for the next page (or None).

    A token marks the last key returned, not a count, so secrets created or deleted between
    two pages shift nothing: each one that exists throughout is seen exactly once.
    """
    ordered = sorted(items, key=key, reverse=descending)
    if token is not None:
        last = decode_token(token)
        try:
            ordered = [i for i in ordered if (key(i) < last if descending else key(i) > last)]
        except TypeError:
            raise errors.InvalidNextToken(_INVALID_TOKEN) from None
    size = max_results or default
    chunk = ordered[:size]
    following = encode_token(key(chunk[-1])) if len(ordered) > size else None
    return chunk, following
