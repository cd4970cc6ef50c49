"""GetRandomPassword: length, character classes, exclusions."""

from __future__ import annotations

import string

import pytest

from tests.api.test_ops_helpers import expect_error

UPPER = set(string.ascii_uppercase)
LOWER = set(string.ascii_lowercase)
DIGITS = set(string.digits)
PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
EVERY = UPPER | LOWER | DIGITS | PUNCTUATION
# Long enough that a class left out by chance is out of the question (< 1e-18).
LONG = 4096


def password(sm, **kwargs) -> str:
    return sm.get_random_password(**kwargs)["RandomPassword"]


def test_default_is_32_characters_of_every_class(sm):
    for _ in range(20):
        value = password(sm)
        assert len(value) == 32
        chars = set(value)
        assert chars <= EVERY
        for cls in (UPPER, LOWER, DIGITS, PUNCTUATION):
            assert chars & cls, value


def test_default_alphabet_is_exactly_letters_digits_and_punctuation(sm):
    assert set(password(sm, PasswordLength=LONG)) == EVERY


@pytest.mark.parametrize("length", [1, 4, 100, LONG])
def test_length(sm, length):
    kwargs = {} if length >= 4 else {"RequireEachIncludedType": False}
    assert len(password(sm, PasswordLength=length, **kwargs)) == length


@pytest.mark.parametrize("length", [0, LONG + 1])
def test_length_outside_1_to_4096_is_refused(shared_server, length):
    loose = shared_server.client(parameter_validation=False)
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.get_random_password(PasswordLength=length)


@pytest.mark.parametrize(
    ("flag", "excluded"),
    [
        ("ExcludeNumbers", DIGITS),
        ("ExcludePunctuation", PUNCTUATION),
        ("ExcludeUppercase", UPPER),
        ("ExcludeLowercase", LOWER),
    ],
)
def test_excluding_a_class(sm, flag, excluded):
    chars = set(password(sm, PasswordLength=LONG, **{flag: True}))
    assert chars == EVERY - excluded


def test_include_space(sm):
    chars = set(password(sm, PasswordLength=LONG, IncludeSpace=True))
    assert chars == EVERY | {" "}


def test_exclude_characters(sm):
    banned = "/@\"'\\:aZ0"
    chars = set(password(sm, PasswordLength=LONG, ExcludeCharacters=banned))
    assert chars == EVERY - set(banned)


def test_require_each_included_type_holds_for_short_passwords(sm):
    for _ in range(50):
        chars = set(password(sm, PasswordLength=4))
        for cls in (UPPER, LOWER, DIGITS, PUNCTUATION):
            assert chars & cls


def test_require_each_included_type_respects_exclusions(sm):
    for _ in range(30):
        chars = set(password(sm, PasswordLength=3, ExcludePunctuation=True))
        assert chars & UPPER and chars & LOWER and chars & DIGITS
        assert not chars & PUNCTUATION


def test_only_digits(sm):
    value = password(
        sm, PasswordLength=64, ExcludePunctuation=True, ExcludeUppercase=True, ExcludeLowercase=True
    )
    assert set(value) <= DIGITS and len(value) == 64


def test_nothing_left_to_draw_from_is_refused(sm):
    with expect_error("InvalidParameterException"):
        password(
            sm,
            ExcludeNumbers=True,
            ExcludePunctuation=True,
            ExcludeUppercase=True,
            ExcludeLowercase=True,
        )


def test_passwords_do_not_repeat(sm):
    drawn = {password(sm) for _ in range(50)}
    assert len(drawn) == 50
