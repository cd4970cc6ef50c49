"""What storage indexes of a secret, so that lists and the scheduler never read documents.

Theory of operation. Every change to a secret carries an ``IndexRecord`` computed here from
the secret, and the store keeps it beside the document in the same transaction. ListSecrets,
BatchGetSecretValue by filter and the rotation scheduler query these records; they decode
only the documents of the secrets they return.

The record holds the filterable text already in the form ``listing.matches`` compares:
folded with Python's ``str.lower`` and split into words with Python's ``str.split``, so the
SQL that stores run needs no case or word rules of its own (SQLite's ``lower`` knows only
ASCII; PostgreSQL's depends on the database locale).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import listing
from .rotation_dates import rotation_attention
from .secret import Secret

# Kinds of attribute rows. "description-word" rows hold the words of the description,
# "word" rows the words an ``all`` filter looks at (``listing.all_words`` of the name, the
# description and the tags); the others one attribute each, as given and folded.
NAME = "name"
DESCRIPTION = "description"
DESCRIPTION_WORD = "description-word"
TAG_KEY = "tag-key"
TAG_VALUE = "tag-value"
WORD = "word"


@dataclass(frozen=True, slots=True)
class IndexRecord:
    name: str
    created: float
    last_changed: float
    # 0.0 until first read: ``listing.SORT_KEYS`` sorts a secret never read first.
    last_accessed: float
    deleted_date: float | None
    deletion_date: float | None
    # From when the scheduler has to look at the secret (``rotation_attention``).
    rotation_attention: float | None
    # (kind, as given, folded), without duplicates.
    attributes: tuple[tuple[str, str, str], ...]


def storable(text: str) -> str:
    """``text`` as both databases accept it: NUL and unpaired surrogates become U+FFFD.

    Safe for matching because no filter value can hold either character (``listing``'s
    value pattern) and neither replacement is whitespace, so no prefix, substring or word
    boundary changes.
    """
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").replace("\0", "\ufffd")


def index_record(secret: Secret) -> IndexRecord:
    rows: dict[tuple[str, str, str], None] = {}

    def add(kind: str, text: str) -> None:
        rows[(kind, storable(text), storable(text.lower()))] = None

    def add_words(kind: str, words: list[str]) -> None:
        for word in words:
            rows[(kind, storable(word), storable(word))] = None

    searched = [secret.name]
    add(NAME, secret.name)
    if secret.description:
        add(DESCRIPTION, secret.description)
        add_words(DESCRIPTION_WORD, listing.description_words(secret.description))
        searched.append(secret.description)
    for tag in secret.tags:
        add(TAG_KEY, tag["Key"])
        add(TAG_VALUE, tag["Value"])
        searched += (tag["Key"], tag["Value"])
    for text in searched:
        add_words(WORD, listing.all_words(text))
    return IndexRecord(
        name=secret.name,
        created=secret.created,
        last_changed=secret.last_changed,
        last_accessed=secret.last_accessed or 0.0,
        deleted_date=secret.deleted_date,
        deletion_date=secret.deletion_date,
        rotation_attention=rotation_attention(secret),
        attributes=tuple(rows),
    )
