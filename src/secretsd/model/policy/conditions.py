"""The Condition element: operators, set qualifiers, missing keys.

Theory of operation. A condition block is a conjunction of clauses, one per (operator, key):
``{"StringEquals": {"k1": ..., "k2": ...}, "Bool": {...}}`` is three clauses, all of which
must hold. A clause holds when the request's value matches any of its policy values (values
OR'ed); a negated operator (``StringNotEquals``, ``NotIpAddress``, ``ArnNotLike``...) holds
when the positive one would not, so its values are NOR'ed.

A key the request does not carry makes a clause false, except: a negated operator is true;
an ``...IfExists`` operator is true; ``ForAllValues:`` is true (nothing fails "every value
matches") and ``ForAnyValue:`` false; ``Null`` tests exactly that absence. An empty list is
absent, as IAM treats a null data set.

A key with several values (``aws:TagKeys``) is compared value by value: ``ForAllValues:``
needs each request value to satisfy the operator, ``ForAnyValue:`` one of them; with no
qualifier, the positive operator holds when any value matches and a negated one when none
does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from . import patterns
from .patterns import Lookup, Segments, Template

Qualifier = Literal["ForAllValues", "ForAnyValue"] | None
# Whether one request value matches one resolved policy value.
Matcher = Callable[[object, Segments], bool]


class Unresolved(Exception):
    """A policy variable in the clause has no value in this request."""


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    match: Matcher | None  # None for Null, which looks only at presence
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Clause:
    operator: Operator
    qualifier: Qualifier
    if_exists: bool
    key: str  # lower-case
    values: tuple[Template, ...]

    def holds(self, lookup: Lookup) -> bool:
        present = lookup(self.key)
        request_values: Sequence[object]
        if isinstance(present, (list, tuple, set, frozenset)):
            request_values = list(present)
        else:
            request_values = [] if present is None else [present]
        if not request_values:
            return self._when_missing(lookup)
        if self.operator.match is None:  # Null: the key is present
            return any(_truth(v, lookup) is False for v in self.values)
        policy_values = [_resolved(value, lookup) for value in self.values]
        match = self.operator.match

        def matches(value: object) -> bool:
            return any(match(value, policy_value) for policy_value in policy_values)

        if self.qualifier == "ForAllValues":
            return all(matches(v) != self.operator.negated for v in request_values)
        if self.qualifier == "ForAnyValue":
            return any(matches(v) != self.operator.negated for v in request_values)
        return any(matches(v) for v in request_values) != self.operator.negated

    def _when_missing(self, lookup: Lookup) -> bool:
        if self.operator.match is None:
            return any(_truth(v, lookup) is True for v in self.values)
        if self.if_exists or self.qualifier == "ForAllValues":
            return True
        if self.qualifier == "ForAnyValue":
            return False
        return self.operator.negated


def _resolved(template: Template, lookup: Lookup) -> Segments:
    segments = template.resolve(lookup)
    if segments is None:
        raise Unresolved(template.source)
    return segments


def _truth(template: Template, lookup: Lookup) -> bool | None:
    text = patterns.plain_text(_resolved(template, lookup)).lower()
    return {"true": True, "false": False}.get(text)


# --- matchers: (request value, resolved policy value) -> bool ------------------------------


def _text(value: object) -> str | None:
    return patterns.scalar_text(value)


def _string_equals(value: object, policy: Segments) -> bool:
    return _text(value) == patterns.plain_text(policy)


def _string_equals_ignore_case(value: object, policy: Segments) -> bool:
    text = _text(value)
    return text is not None and text.casefold() == patterns.plain_text(policy).casefold()


def _string_like(value: object, policy: Segments) -> bool:
    text = _text(value)
    return text is not None and patterns.wildcard_match(policy, text)


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _numeric(compare: Callable[[Decimal, Decimal], bool]) -> Matcher:
    def match(value: object, policy: Segments) -> bool:
        left, right = _number(value), _number(patterns.plain_text(policy))
        return left is not None and right is not None and compare(left, right)

    return match


def parse_date(value: object) -> datetime | None:
    """A date as policies write them: ISO 8601 (UTC when no zone is given) or epoch
    seconds."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if text.lstrip("-").isdigit():
                return datetime.fromtimestamp(int(text), UTC)
            moment = datetime.fromisoformat(text)
        except (ValueError, OverflowError, OSError):
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date(compare: Callable[[datetime, datetime], bool]) -> Matcher:
    def match(value: object, policy: Segments) -> bool:
        left, right = parse_date(value), parse_date(patterns.plain_text(policy))
        return left is not None and right is not None and compare(left, right)

    return match


def _bool(value: object, policy: Segments) -> bool:
    text = _text(value)
    return text is not None and text.lower() == patterns.plain_text(policy).lower()


def _binary(value: object, policy: Segments) -> bool:
    try:
        expected = base64.b64decode(patterns.plain_text(policy), validate=True)
        actual = value if isinstance(value, bytes) else base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return False
    return actual == expected


@functools.lru_cache(maxsize=1024)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Clients come back: their addresses are parsed once, not on every request.
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _ip_address(value: object, policy: Segments) -> bool:
    network = _network(patterns.plain_text(policy))
    address = _address(str(value))
    if network is None or address is None:
        return False
    return address.version == network.version and address in network


def _arn_like(value: object, policy: Segments) -> bool:
    # Each of an ARN's six colon-separated parts is matched on its own, so a wildcard never
    # spans a colon between parts (the resource part, the last, keeps its own colons).
    text = _text(value)
    if text is None:
        return False
    actual = text.split(":", 5)
    expected = patterns.split_segments(policy, ":", 5)
    if len(actual) != 6 or len(expected) != 6:
        return False
    return all(patterns.wildcard_match(e, a) for e, a in zip(expected, actual, strict=True))


def _operators() -> dict[str, Operator]:
    table: dict[str, Operator] = {}

    def add(name: str, match: Matcher | None, negated_name: str | None = None) -> None:
        table[name.lower()] = Operator(name, match)
        if negated_name:
            table[negated_name.lower()] = Operator(negated_name, match, negated=True)

    add("StringEquals", _string_equals, "StringNotEquals")
    add("StringEqualsIgnoreCase", _string_equals_ignore_case, "StringNotEqualsIgnoreCase")
    add("StringLike", _string_like, "StringNotLike")
    add("NumericEquals", _numeric(operator.eq), "NumericNotEquals")
    add("NumericLessThan", _numeric(operator.lt))
    add("NumericLessThanEquals", _numeric(operator.le))
    add("NumericGreaterThan", _numeric(operator.gt))
    add("NumericGreaterThanEquals", _numeric(operator.ge))
    add("DateEquals", _date(operator.eq), "DateNotEquals")
    add("DateLessThan", _date(operator.lt))
    add("DateLessThanEquals", _date(operator.le))
    add("DateGreaterThan", _date(operator.gt))
    add("DateGreaterThanEquals", _date(operator.ge))
    add("Bool", _bool)
    add("BinaryEquals", _binary)
    add("IpAddress", _ip_address, "NotIpAddress")
    add("ArnEquals", _arn_like, "ArnNotEquals")
    add("ArnLike", _arn_like, "ArnNotLike")
    add("Null", None)
    return table


OPERATORS = _operators()


def find_operator(name: str) -> tuple[Operator, Qualifier, bool] | None:
    """``ForAnyValue:StringLikeIfExists`` -> (StringLike, "ForAnyValue", True)."""
    qualifier: Qualifier = None
    rest = name
    prefix, colon, after = name.partition(":")
    if colon:
        lowered = prefix.lower()
        if lowered == "forallvalues":
            qualifier = "ForAllValues"
        elif lowered == "foranyvalue":
            qualifier = "ForAnyValue"
        else:
            return None
        rest = after
    if_exists = rest.lower().endswith("ifexists") and rest.lower() != "null"
    base = rest[: -len("IfExists")] if if_exists else rest
    found = OPERATORS.get(base.lower())
    if found is None or (if_exists and found.match is None):
        return None
    return found, qualifier, if_exists
