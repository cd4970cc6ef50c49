"""Policy strings: variables, escapes and defaults, and wildcards split by ARN part."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.model.policy.patterns import (
    Escaped,
    Variable,
    parse_template,
    plain_text,
    split_segments,
    wildcard_match,
)

CONTEXT = {"aws:username": "app", "aws:principaltag/team": "web", "aws:tagkeys": ["a", "b"]}


def resolve(source: str) -> str | None:
    segments = parse_template(source, variables=True).resolve(CONTEXT.get)
    return None if segments is None else plain_text(segments)


@pytest.mark.parametrize(
    ("source", "resolved"),
    [
        ("plain", "plain"),
        ("home/${aws:username}/*", "home/app/*"),
        ("${AWS:UserName}", "app"),  # key names ignore case
        ("${aws:PrincipalTag/team}-${aws:username}", "web-app"),
        ("${aws:PrincipalTag/missing}", None),
        ("${aws:PrincipalTag/missing, 'shared'}", "shared"),
        ("${ aws:PrincipalTag/missing , 'it''s' }", "it's"),
        ("${aws:username, 'unused'}", "app"),
        ("${aws:TagKeys}", None),  # a multivalued key is no variable value
        ("${*}${?}${$}", "*?$"),
        ("unclosed ${aws:username", "unclosed ${aws:username"),
        ("${}", "${}"),
        ("${not a key}", "${not a key}"),
    ],
)
def test_resolution(source: str, resolved: str | None) -> None:
    assert resolve(source) == resolved


def test_parts() -> None:
    template = parse_template("a${*}b${aws:username, 'x'}", variables=True)
    assert template.parts == ("a", Escaped("*"), "b", Variable("aws:username", "x"))
    assert parse_template("a${aws:username}", variables=False).parts == ("a${aws:username}",)


@given(st.text(alphabet="ab$*?{}:/", max_size=12))
def test_text_without_variables_is_itself(source: str) -> None:
    template = parse_template(source, variables=False)
    segments = template.resolve(CONTEXT.get)
    assert segments is not None and plain_text(segments) == source


def test_substituted_and_escaped_characters_are_no_wildcards() -> None:
    starry = parse_template("${aws:username}", variables=True).resolve({"aws:username": "a*"}.get)
    assert starry is not None
    assert wildcard_match(starry, "a*") and not wildcard_match(starry, "abc")
    escaped = parse_template("a${?}", variables=True).resolve(CONTEXT.get)
    assert escaped is not None
    assert wildcard_match(escaped, "a?") and not wildcard_match(escaped, "ab")


def test_arn_parts_split_at_most_five_times() -> None:
    segments = parse_template("arn:aws:lambda:*:1:function:f:alias", variables=False).resolve(
        CONTEXT.get
    )
    assert segments is not None
    parts = [plain_text(p) for p in split_segments(segments, ":", 5)]
    assert parts == ["arn", "aws", "lambda", "*", "1", "function:f:alias"]
