"""What an operation changed, for the one commit that follows it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Edit:
    """What an operation changed: values to add or drop, and whether to commit at all."""

    changed: bool = False
    put_values: dict[str, bytes] = field(default_factory=dict, repr=False)  # secret values
    drop_values: list[str] = field(default_factory=list)
