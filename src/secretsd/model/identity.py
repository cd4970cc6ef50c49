"""Who is calling: the principal a request was signed by, as IAM names it.

Authentication (SigV4 in ``api``) turns an access key into a ``Caller``; authorization, the
audit trail and ``GetCallerIdentity`` read it. The account's root key and IAM users' keys
both end here, so nothing downstream asks which kind of key it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_NO_TAGS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    # arn:aws:iam::<account>:root, or arn:aws:iam::<account>:user<path><name>
    arn: str
    # The unique id IAM gives the principal (AIDA... for a user; the account id for root).
    user_id: str
    access_key_id: str
    # None for the account's root, which has no user name.
    user_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _NO_TAGS)

    @property
    def is_root(self) -> bool:
        return self.user_name is None


def root_caller(account_id: str, access_key_id: str) -> Caller:
    """The account's root: the key in ``DATA_DIR/credentials``, allowed everything."""
    return Caller(
        account_id=account_id,
        arn=f"arn:aws:iam::{account_id}:root",
        user_id=account_id,
        access_key_id=access_key_id,
    )
