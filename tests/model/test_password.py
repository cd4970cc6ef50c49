"""GetRandomPassword rules: properties over random options, errors, and the spread of draws."""

from __future__ import annotations

import random
import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.model import errors
from secretsd.model.password import password_arguments, random_password

# Written out here, not imported, so a wrong class in the module shows up as a failure.
CLASSES = {
    "upper": set(string.ascii_uppercase),
    "lower": set(string.ascii_lowercase),
    "digits": set("0123456789"),
    "punctuation": set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
}
EVERYTHING = set().union(*CLASSES.values())

options = st.fixed_dictionaries(
    {
        "password_length": st.integers(min_value=4, max_value=300),
        "exclude_characters": st.text(alphabet=sorted(EVERYTHING | {" "}), max_size=40),
        "exclude_numbers": st.booleans(),
        "exclude_punctuation": st.booleans(),
        "exclude_uppercase": st.booleans(),
        "exclude_lowercase": st.booleans(),
        "include_space": st.booleans(),
        "require_each_included_type": st.booleans(),
    }
)


def allowed(opts: dict) -> tuple[set[str], list[set[str]]]:
    """The characters a password may hold and the classes it must each touch."""
    flags = {
        "upper": opts["exclude_uppercase"],
        "lower": opts["exclude_lowercase"],
        "digits": opts["exclude_numbers"],
        "punctuation": opts["exclude_punctuation"],
    }
    excluded = set(opts["exclude_characters"])
    kept = [chars - excluded for name, chars in CLASSES.items() if not flags[name]]
    kept = [chars for chars in kept if chars]
    pool = set().union(*kept) if kept else set()
    if opts["include_space"] and " " not in excluded:
        pool.add(" ")
    return pool, kept


@settings(max_examples=300)
@given(options, st.randoms(use_true_random=False))
def test_passwords_follow_the_options(opts: dict, rng: random.Random) -> None:
    pool, required = allowed(opts)
    if not pool:
        with pytest.raises(errors.InvalidParameter):
            random_password(**opts, rng=rng)
        return
    password = random_password(**opts, rng=rng)
    assert len(password) == opts["password_length"]
    assert set(password) <= pool
    assert not set(password) & set(opts["exclude_characters"])
    if opts["require_each_included_type"]:
        for chars in required:
            assert set(password) & chars


@given(st.integers(min_value=4, max_value=4096))
def test_default_alphabet_any_length(length: int) -> None:
    password = random_password(password_length=length)
    assert len(password) == length
    assert set(password) <= EVERYTHING
    for chars in CLASSES.values():
        assert set(password) & chars


def test_defaults_are_32_characters_of_every_class() -> None:
    password = random_password()
    assert len(password) == 32
    for chars in CLASSES.values():
        assert set(password) & chars
    assert " " not in password


def test_space_is_drawn_when_included_and_never_otherwise() -> None:
    rng = random.Random(7)
    spaced = "".join(random_password(include_space=True, rng=rng) for _ in range(200))
    assert " " in spaced
    plain = "".join(random_password(rng=rng) for _ in range(200))
    assert " " not in plain


def test_space_alone_is_a_valid_alphabet() -> None:
    password = random_password(
        password_length=5,
        exclude_numbers=True,
        exclude_punctuation=True,
        exclude_uppercase=True,
        exclude_lowercase=True,
        include_space=True,
    )
    assert password == "     "


def test_required_types_need_enough_length() -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        random_password(password_length=3)
    assert caught.value.message == "Password length is too short based on the required types."
    # Without the requirement, a single character is fine.
    assert len(random_password(password_length=1, require_each_included_type=False)) == 1
    # Fewer included types lower the minimum.
    two = random_password(password_length=2, exclude_numbers=True, exclude_punctuation=True)
    assert set(two) & CLASSES["upper"] and set(two) & CLASSES["lower"]


def test_a_class_wholly_excluded_by_characters_is_not_required() -> None:
    password = random_password(password_length=3, exclude_characters="0123456789")
    assert not set(password) & CLASSES["digits"]
    for name in ("upper", "lower", "punctuation"):
        assert set(password) & CLASSES[name]


def test_everything_excluded_is_an_error() -> None:
    with pytest.raises(errors.InvalidParameter):
        random_password(
            exclude_numbers=True,
            exclude_punctuation=True,
            exclude_uppercase=True,
            exclude_lowercase=True,
        )
    with pytest.raises(errors.InvalidParameter):
        random_password(exclude_characters="".join(sorted(EVERYTHING)))


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (0, "Member must have value greater than or equal to 1"),
        (-5, "Member must have value greater than or equal to 1"),
        (4097, "Member must have value less than or equal to 4096"),
    ],
)
def test_length_out_of_range(length: int, text: str) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        random_password(password_length=length)
    assert caught.value.code == "ValidationException"
    assert f"Value '{length}' at 'passwordLength'" in caught.value.message
    assert text in caught.value.message


def test_exclude_characters_too_long() -> None:
    with pytest.raises(errors.ValidationError) as caught:
        random_password(exclude_characters="a" * 4097)
    assert "excludeCharacters" in caught.value.message


def test_every_character_turns_up_and_none_dominates() -> None:
    """Across many seeded draws each of the 94 characters appears, none far off its share.

    The seed is fixed, so the counts are the same on every run: the bounds below are wide
    (a fair draw lands within them with overwhelming probability) yet catch a class that
    is never drawn or drawn several times too often.
    """
    rng = random.Random(20240229)
    counts = Counter("".join(random_password(rng=rng) for _ in range(3000)))
    assert set(counts) == EVERYTHING
    total = sum(counts.values())
    # Required characters tilt small classes up (digits most), so allow a wide band.
    for char, seen in counts.items():
        share = seen / total
        assert 0.3 / 94 < share < 3.0 / 94, (char, share)


def test_request_members_map_to_arguments() -> None:
    body = {
        "PasswordLength": 20,
        "ExcludeCharacters": "abc",
        "ExcludeNumbers": True,
        "ExcludePunctuation": False,
        "ExcludeUppercase": False,
        "ExcludeLowercase": False,
        "IncludeSpace": True,
        "RequireEachIncludedType": False,
    }
    arguments = password_arguments(body)
    assert arguments == {
        "password_length": 20,
        "exclude_characters": "abc",
        "exclude_numbers": True,
        "exclude_punctuation": False,
        "exclude_uppercase": False,
        "exclude_lowercase": False,
        "include_space": True,
        "require_each_included_type": False,
    }
    password = random_password(**arguments)
    assert len(password) == 20
    assert not set(password) & set("abc0123456789")


def test_missing_and_null_members_keep_defaults() -> None:
    assert password_arguments({}) == {}
    assert password_arguments({"PasswordLength": None, "IncludeSpace": None}) == {}
    assert password_arguments({"PasswordLength": 12.0}) == {"password_length": 12}


@pytest.mark.parametrize(
    "body",
    [
        {"PasswordLength": "32"},
        {"PasswordLength": True},
        {"PasswordLength": 3.5},
        {"PasswordLength": float("inf")},
        {"PasswordLength": float("nan")},
        {"ExcludeCharacters": 5},
        {"ExcludeNumbers": "true"},
        {"RequireEachIncludedType": 1},
        {"IncludeSpace": []},
    ],
)
def test_wrong_types_are_serialization_errors(body: dict) -> None:
    with pytest.raises(errors.SerializationError) as caught:
        password_arguments(body)
    assert caught.value.code == "SerializationException"


def test_required_characters_land_anywhere() -> None:
    """The required characters are shuffled in, not left at the front in class order."""
    rng = random.Random(11)
    firsts = {random_password(password_length=8, rng=rng)[0] for _ in range(400)}
    for chars in CLASSES.values():
        assert firsts & chars


def test_draws_come_from_the_given_source() -> None:
    one = random_password(rng=random.Random(5))
    assert one == random_password(rng=random.Random(5))
    assert one != random_password(rng=random.Random(6))
