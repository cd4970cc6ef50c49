"""The console's one door to the service: every page and action calls ``ConsoleOperations``.

Each call names the signed-in ``Caller`` and the request's context, and goes through
``SecretsService.call`` with the request members the API would send, authorized by the
caller's policies (and the secret's resource policy) as a signed request of the same caller
would be: the console can do nothing that request could not. Reads run on a thread (the store may
wait), writes go through the server's group writer as the API's do, and each call is on the
audit trail before its page is sent, as an API call is: refused before it runs while the
trail is failing, and refused after it ran if its record can't be written.
"""

from __future__ import annotations

import asyncio
from typing import Any

from secretsd.api.app import READ_ONLY
from secretsd.model import errors
from secretsd.model.identity import Caller
from secretsd.model.request import RequestFacts
from secretsd.service import SecretsService
from secretsd.service.audit import ApiCall
from secretsd.service.audit_trail import AuditTrail, AuditUnavailable
from secretsd.service.authorization import origin_of
from secretsd.service.history import rotation_events
from secretsd.service.writer import GroupWriter

Body = dict[str, Any]
HISTORY_LIMIT = 200


class ConsoleOperations:
    def __init__(
        self, service: SecretsService, writer: GroupWriter, audit: AuditTrail | None = None
    ) -> None:
        self.service = service
        self.writer = writer
        self.audit = audit

    async def call(
        self, caller: Caller, context: RequestFacts, operation: str, request: Body
    ) -> Body:
        """Run ``operation`` as ``caller``, authorized by the service as the same caller's
        API request from the same address would be."""
        origin = origin_of(context)
        if self.audit is not None and self.audit.failing:
            failure: errors.SecretsManagerError = AuditUnavailable()
            await self._record(caller, context, operation, request, None, failure)
            raise failure
        result = None
        try:
            if operation in READ_ONLY:
                result = await asyncio.to_thread(
                    self.service.call, operation, request, caller, origin
                )
            else:
                result = await self.writer.call(operation, request, caller, origin)
        except errors.SecretsManagerError as exc:
            await self._record(caller, context, operation, request, None, exc)
            raise
        await self._record(caller, context, operation, request, result, None)
        return result

    async def _record(
        self,
        caller: Caller,
        context: RequestFacts,
        operation: str,
        request: Body,
        result: Body | None,
        failure: errors.SecretsManagerError | None,
    ) -> None:
        if self.audit is None:
            return
        # Raises AuditUnavailable when the record can't be written: the page is refused.
        await self.audit.record(
            ApiCall(
                "secretsmanager",
                operation,
                caller,
                context,
                operation in READ_ONLY,
                request,
                result,
                failure.code if failure is not None else None,
                failure.message if failure is not None else None,
            )
        )

    async def rotation_history(
        self, caller: Caller, context: RequestFacts, secret_id: str, limit: int = HISTORY_LIMIT
    ) -> list[Body]:
        """The rotation events of a secret, oldest first; whoever may describe the secret
        may read its history, so DescribeSecret runs first, as ``caller``."""
        described = await self.call(caller, context, "DescribeSecret", {"SecretId": secret_id})
        return await asyncio.to_thread(rotation_events, self.service, described["ARN"], limit)
