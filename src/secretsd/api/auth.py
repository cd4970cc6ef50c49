"""Authentication: a signed request in, the ``Caller`` it was signed by out.

The root keys (``DATA_DIR/credentials``) are held in memory and answered at once: the root
path costs what it cost before users existed. Any other key is looked up through
``IdentityService.authenticate`` (an IAM user's key in the store, or a session secretsd
issued), on every request. Where the store's reads may block (PostgreSQL), that lookup must
not run on the event loop: called with ``inline=True``, a lookup that would need the store
raises ``NeedsThread`` and the shell calls again from a thread.

JSON 1.1 requests (Secrets Manager) must be scoped to this endpoint's region and
``secretsmanager``; Query requests to ``iam`` or ``sts``, in any region, as IAM is global.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from secretsd.api.credentials import Keyring
from secretsd.api.sigv4 import SigV4Verifier
from secretsd.model.identity import Caller, root_caller
from secretsd.service.identities import IdentityService

Headers = Sequence[tuple[bytes, bytes]]
QUERY_SERVICES = ("iam", "sts")


class NeedsThread(Exception):
    """The key is not a root key, and looking it up may block: call again off the loop."""


class Authenticator:
    def __init__(
        self,
        root_keys: Keyring,
        identities: IdentityService | None,
        *,
        account: str,
        region: str,
        store_may_block: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._root = {
            key.access_key_id: (key.secret_access_key, root_caller(account, key.access_key_id))
            for key in root_keys.keys
        }
        self._identities = identities
        self._may_block = store_may_block

        def on_loop(access_key_id: str) -> tuple[str, Caller] | None:
            found = self._root.get(access_key_id)
            if found is not None or identities is None:
                return found
            if store_may_block:
                raise NeedsThread
            return identities.authenticate(access_key_id)

        def anywhere(access_key_id: str) -> tuple[str, Caller] | None:
            found = self._root.get(access_key_id)
            if found is not None or identities is None:
                return found
            return identities.authenticate(access_key_id)

        def verifier(lookup, region: str | None, services: tuple[str, ...]) -> SigV4Verifier:
            return SigV4Verifier(lookup, region=region, clock=clock, services=services)

        self._verifiers = {
            (False, True): verifier(on_loop, region, ("secretsmanager",)),
            (False, False): verifier(anywhere, region, ("secretsmanager",)),
            (True, True): verifier(on_loop, None, QUERY_SERVICES),
            (True, False): verifier(anywhere, None, QUERY_SERVICES),
        }

    def authenticate(
        self,
        method: str,
        path: str,
        query: str,
        headers: Headers,
        body: bytes,
        *,
        query_protocol: bool = False,
        inline: bool = False,
    ) -> tuple[Caller, str]:
        """The caller and the credential scope's service; raises the AuthError AWS would."""
        verified = self._verifiers[(query_protocol, inline)].verify(
            method, path, query, headers, body
        )
        caller = verified.credential
        assert isinstance(caller, Caller)
        return caller, verified.service
