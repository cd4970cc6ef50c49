"""Short-lived keys that secretsd issues to its own callers (rotation functions).

A session is what AWS gives a Lambda function through its execution role: a key pair that
acts as ``arn:aws:sts::<account>:assumed-role/<role>/<session>`` with the role's policies
and nothing more. Sessions live in this process's memory only: they are handed to a
function this process invokes, which calls this process back, and they are revoked when
the invocation ends. Nothing about them is stored.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Sequence

from secretsd.model.identity import Caller

_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


class SessionKeys:
    def __init__(self, account: str) -> None:
        self.account = account
        self._keys: dict[str, tuple[str, Caller]] = {}
        self._lock = threading.Lock()

    def issue(self, role: str, session: str, policies: Sequence[object]) -> tuple[str, str]:
        """A new key pair acting as ``role`` with ``policies``: (access key id, secret)."""
        key_id = "ASIA" + "".join(secrets.choice(_ALPHABET) for _ in range(16))
        secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
        role_id = "AROA" + secrets.token_hex(8).upper()
        caller = Caller(
            account_id=self.account,
            arn=f"arn:aws:sts::{self.account}:assumed-role/{role}/{session}",
            user_id=f"{role_id}:{session}",
            access_key_id=key_id,
            user_name=session,
            role=role,
            policies=tuple(policies),
        )
        with self._lock:
            self._keys[key_id] = (secret, caller)
        return key_id, secret

    def revoke(self, access_key_id: str) -> None:
        with self._lock:
            self._keys.pop(access_key_id, None)

    def lookup(self, access_key_id: str) -> tuple[str, Caller] | None:
        return self._keys.get(access_key_id)
