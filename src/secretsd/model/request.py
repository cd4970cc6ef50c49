"""What a request says about its connection, for authorization and the audit trail.

The wire layer fills it from the connection (ASGI scope) before an operation runs:
``aws:SourceIp``, ``aws:SecureTransport`` and the audit record's ``sourceIPAddress`` and
``userAgent`` all come from here, so a condition and the audit log see the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestFacts:
    request_id: str
    source_ip: str
    user_agent: str
    # True when the request arrived over TLS (aws:SecureTransport).
    secure_transport: bool


INTERNAL = RequestFacts(
    request_id="", source_ip="127.0.0.1", user_agent="secretsd", secure_transport=True
)
