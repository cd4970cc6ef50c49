"""Console sign-ins on the audit trail, as CloudTrail records them: ``ConsoleLogin`` events
from ``signin.amazonaws.com``, successful or not, with the identity when it is known.

A refused sign-in names no identity (the key pair did not prove one) and carries the typed
key id only when it has a key id's shape, so a secret typed into the wrong field is never
recorded. The record is written before the answer is sent; when it can't be, the sign-in is
refused, as an API call would be.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from secretsd.model.identity import Caller
from secretsd.model.request import RequestFacts
from secretsd.service.audit import EVENT_VERSION, event_time, user_identity
from secretsd.service.audit_trail import AuditTrail
from secretsd.service.ids import UniqueIds

SIGNIN_HOST = "signin.amazonaws.com"
FAILED = "Failed authentication"
_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")


def loggable_key_id(typed: str) -> str | None:
    """``typed`` when it looks like an access key id, else None."""
    typed = typed.strip()
    return typed if _KEY_ID.fullmatch(typed) else None


class SignIns:
    def __init__(self, trail: AuditTrail | None) -> None:
        self.trail = trail
        self._ids = UniqueIds()

    def shape(
        self,
        caller: Caller | None,
        context: RequestFacts,
        *,
        method: str,
        typed_key_id: str = "",
        at: float,
    ) -> dict[str, Any]:
        assert self.trail is not None
        identity = user_identity(caller)
        if caller is None:
            typed = loggable_key_id(typed_key_id)
            if typed is not None:
                identity["accessKeyId"] = typed
        record: dict[str, Any] = {
            "eventVersion": EVENT_VERSION,
            "userIdentity": identity,
            "eventTime": event_time(at),
            "eventSource": SIGNIN_HOST,
            "eventName": "ConsoleLogin",
            "awsRegion": self.trail.region,
            "sourceIPAddress": context.source_ip,
            "userAgent": context.user_agent,
            "requestParameters": None,
            "responseElements": {"ConsoleLogin": "Success" if caller else "Failure"},
            # "AccessKey" or "SignInLink": how the identity was proved.
            "additionalEventData": {"SignInWith": method, "MFAUsed": "No"},
            "eventID": self._ids.next(),
            "readOnly": False,
            "eventType": "AwsConsoleSignIn",
            "managementEvent": True,
            "recipientAccountId": self.trail.account,
            "eventCategory": "Management",
        }
        if caller is None:
            record["errorMessage"] = FAILED
        return record

    async def record(
        self,
        caller: Caller | None,
        context: RequestFacts,
        *,
        method: str,
        typed_key_id: str = "",
    ) -> None:
        """Put the sign-in on the trail; AuditUnavailable when it can't be."""
        if self.trail is None:
            return
        record = self.shape(
            caller, context, method=method, typed_key_id=typed_key_id, at=self.trail.clock()
        )
        await asyncio.to_thread(self.trail.record_blocking, record)
