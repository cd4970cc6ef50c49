"""The client's exceptions: one hierarchy, and the one internal signal sources use.

Every message names secrets and sources, never a secret value: exceptions end up in logs.
"""

from __future__ import annotations

NOT_FOUND_CODE = "ResourceNotFoundException"


class ClientError(Exception):
    """Base of every error the client library raises."""


class SecretNotFound(ClientError):
    """A source answered definitely that the secret, version or stage does not exist."""

    def __init__(self, secret_id: str, detail: str, source: str) -> None:
        super().__init__(f"secret {secret_id!r} not found ({source}): {detail}")
        self.secret_id = secret_id
        self.source = source


class RequestRefused(ClientError):
    """A source answered definitely with another error (access denied, marked for deletion,
    decryption failure): asking the next source would only hide it."""

    def __init__(self, secret_id: str, code: str, detail: str, source: str) -> None:
        super().__init__(f"{code} for secret {secret_id!r} ({source}): {detail}")
        self.secret_id = secret_id
        self.code = code
        self.source = source


class AgentRefused(ClientError):
    """The agent refused this client (HTTP 403: the SSRF token is missing or wrong): a
    configuration error, raised rather than silently reading from the next source.
    ``SecretsClient(fall_back_when_refused=True)`` passes the request on instead."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"the agent at {url} refused this client ({reason}); "
            "check the SSRF token (token=, else AWS_TOKEN)"
        )
        self.url = url
        self.reason = reason


class SourceUnavailable(ClientError):
    """No source could answer; ``reasons`` maps each source tried to why it could not."""

    def __init__(self, secret_id: str, reasons: dict[str, str]) -> None:
        listed = "; ".join(f"{source}: {why}" for source, why in reasons.items())
        super().__init__(f"no source could read secret {secret_id!r} ({listed})")
        self.secret_id = secret_id
        self.reasons = dict(reasons)


class Unavailable(Exception):
    """Internal: this source cannot answer now; the client asks the next one."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(Unavailable):
    """Internal: the agent refused this client's token (see AgentRefused)."""
