"""GetRandomPassword: the service's password rules as a pure function.

Theory of operation. The alphabet is the union of the included character classes (upper,
lower, digits, punctuation, and space when asked for), minus ``ExcludeCharacters``. A class
whose every character is excluded counts as not included, so it is never required. When
``RequireEachIncludedType`` holds (the default), one character is drawn from each included
class other than space (the service promises "at least one upper and lowercase letter, one
number, and one punctuation"), the rest are drawn from the whole alphabet, and the result is
shuffled so the required characters sit at random places. Every draw goes through the
injected ``rng`` (``secrets.SystemRandom()`` unless a test passes a seeded one);
``choice`` picks by index without a modulo, so no character is favoured.

Errors: shape constraints of the service model (length 1-4096, ``ExcludeCharacters`` at most
4096 characters) are ``ValidationException``; a request that cannot be satisfied is
``InvalidParameterException``. Messages never contain a generated password.
"""

from __future__ import annotations

import math
import secrets
import string
from collections.abc import Mapping
from typing import Any, Protocol

from . import errors

UPPERCASE = string.ascii_uppercase
LOWERCASE = string.ascii_lowercase
DIGITS = string.digits
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
SPACE = " "

MIN_LENGTH = 1
MAX_LENGTH = 4096
DEFAULT_LENGTH = 32
MAX_EXCLUDE_CHARACTERS = 4096

TOO_SHORT = "Password length is too short based on the required types."
NOTHING_LEFT = (
    "The password can't be generated because every character type is excluded or all of "
    "its characters are listed in ExcludeCharacters."
)


class RandomSource(Protocol):
    def choice(self, seq: str) -> str: ...

    def shuffle(self, x: list[str]) -> None: ...


def random_password(
    *,
    password_length: int = DEFAULT_LENGTH,
    exclude_characters: str = "",
    exclude_numbers: bool = False,
    exclude_punctuation: bool = False,
    exclude_uppercase: bool = False,
    exclude_lowercase: bool = False,
    include_space: bool = False,
    require_each_included_type: bool = True,
    rng: RandomSource | None = None,
) -> str:
    """A password following GetRandomPassword's rules (arguments in snake_case)."""
    if password_length < MIN_LENGTH:
        raise errors.constraint(
            "passwordLength",
            f"Member must have value greater than or equal to {MIN_LENGTH}",
            password_length,
        )
    if password_length > MAX_LENGTH:
        raise errors.constraint(
            "passwordLength",
            f"Member must have value less than or equal to {MAX_LENGTH}",
            password_length,
        )
    if len(exclude_characters) > MAX_EXCLUDE_CHARACTERS:
        raise errors.constraint(
            "excludeCharacters",
            f"Member must have length less than or equal to {MAX_EXCLUDE_CHARACTERS}",
        )
    excluded = set(exclude_characters)
    wanted = [
        (UPPERCASE, not exclude_uppercase),
        (LOWERCASE, not exclude_lowercase),
        (DIGITS, not exclude_numbers),
        (PUNCTUATION, not exclude_punctuation),
    ]
    classes = ["".join(c for c in chars if c not in excluded) for chars, keep in wanted if keep]
    required = [chars for chars in classes if chars]
    if include_space and SPACE not in excluded:
        classes.append(SPACE)
    alphabet = "".join(classes)
    if not alphabet:
        raise errors.InvalidParameter(NOTHING_LEFT)
    if not require_each_included_type:
        required = []
    if password_length < len(required):
        raise errors.InvalidParameter(TOO_SHORT)

    source: RandomSource = rng if rng is not None else secrets.SystemRandom()
    chosen = [source.choice(chars) for chars in required]
    chosen += [source.choice(alphabet) for _ in range(password_length - len(chosen))]
    source.shuffle(chosen)
    return "".join(chosen)


_BOOLEAN_MEMBERS = {
    "ExcludeNumbers": "exclude_numbers",
    "ExcludePunctuation": "exclude_punctuation",
    "ExcludeUppercase": "exclude_uppercase",
    "ExcludeLowercase": "exclude_lowercase",
    "IncludeSpace": "include_space",
    "RequireEachIncludedType": "require_each_included_type",
}


def _is_integral(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    return isinstance(value, int)


def password_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """Read a GetRandomPassword request body into keyword arguments for ``random_password``.

    Wrong JSON types are SerializationException, as for every other operation; members
    left out (or null) keep the service's defaults.
    """
    arguments: dict[str, Any] = {}
    length = body.get("PasswordLength")
    if length is not None:
        if not _is_integral(length):
            raise errors.SerializationError("Expected an integer for PasswordLength.")
        arguments["password_length"] = int(length)
    exclude = body.get("ExcludeCharacters")
    if exclude is not None:
        if not isinstance(exclude, str):
            raise errors.SerializationError("Expected a string for ExcludeCharacters.")
        arguments["exclude_characters"] = exclude
    for member, name in _BOOLEAN_MEMBERS.items():
        value = body.get(member)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise errors.SerializationError(f"Expected a boolean for {member}.")
        arguments[name] = value
    return arguments
