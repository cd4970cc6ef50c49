"""Who is calling: the principal a request was signed by, as IAM names it.

Authentication (SigV4 in ``api``) turns an access key into a ``Caller``; authorization, the
audit trail and ``GetCallerIdentity`` read it. The account's root key, IAM users' keys and
the short-lived keys secretsd hands its own rotation functions all end here, so nothing
downstream asks which kind of key it was.

A caller carries the identity policies that applied when its key was looked up: the
authorization of that request evaluates exactly those, whatever changes meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

_NO_TAGS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    # arn:aws:iam::<account>:root, arn:aws:iam::<account>:user<path><name>, or for a
    # session, arn:aws:sts::<account>:assumed-role/<role>/<session>
    arn: str
    # The unique id IAM gives the principal (AIDA... for a user; the account id for root;
    # <role id>:<session> for a session).
    user_id: str
    access_key_id: str
    # None for the account's root, which has no user name; the session name of a session.
    user_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _NO_TAGS)
    # The role a session acts as; None for root and IAM users.
    role: str | None = None
    # Parsed policies (``model.policy.Policy``), opaque here.
    policies: Sequence[object] = field(default=(), repr=False, compare=False)

    @property
    def is_root(self) -> bool:
        return self.user_name is None

    @property
    def type(self) -> str:
        """CloudTrail's userIdentity.type: Root, IAMUser or AssumedRole."""
        if self.user_name is None:
            return "Root"
        return "IAMUser" if self.role is None else "AssumedRole"


def root_caller(account_id: str, access_key_id: str) -> Caller:
    """The account's root: the key in ``DATA_DIR/credentials``, allowed everything."""
    return Caller(
        account_id=account_id,
        arn=f"arn:aws:iam::{account_id}:root",
        user_id=account_id,
        access_key_id=access_key_id,
    )
