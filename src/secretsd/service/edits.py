"""What an operation changed, for the one commit that follows it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from secretsd.model.index import index_record
from secretsd.model.secret import Secret
from secretsd.store.base import Change


@dataclass
class Edit:
    """What an operation changed: values to add or drop, and whether to commit at all."""

    changed: bool = False
    put_values: dict[str, bytes] = field(default_factory=dict, repr=False)  # secret values
    drop_values: list[str] = field(default_factory=list)


def secret_change(
    secret: Secret,
    revision: int | None,
    put_values: Mapping[str, bytes] | None = None,
    drop_values: Sequence[str] = (),
) -> Change:
    """The change that stores ``secret`` as it is now: its document and its index record."""
    return Change(
        secret.arn,
        secret.name,
        revision,
        secret.to_document(),
        put_values or {},
        drop_values,
        index=index_record(secret),
    )
