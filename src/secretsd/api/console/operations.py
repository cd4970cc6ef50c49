"""The console's one door to the service: every page and action calls ``ConsoleOperations``.

Each call names the signed-in ``Caller`` and goes through ``SecretsService.call`` with the
request members the API would send, so the console can do nothing a signed request of the
same caller could not. Reads run on a thread (the store may wait), writes go through the
server's group writer as the API's do.
"""

from __future__ import annotations

import asyncio
from typing import Any

from secretsd.api.app import READ_ONLY
from secretsd.model.identity import Caller
from secretsd.service import SecretsService
from secretsd.service.history import rotation_events
from secretsd.service.writer import GroupWriter

Body = dict[str, Any]
HISTORY_LIMIT = 200


class ConsoleOperations:
    def __init__(self, service: SecretsService, writer: GroupWriter) -> None:
        self.service = service
        self.writer = writer

    async def call(self, caller: Caller, operation: str, request: Body) -> Body:
        """Run ``operation`` as ``caller``. Authorization of the console's requests belongs
        here, and only here, when the service gains it."""
        if operation in READ_ONLY:
            return await asyncio.to_thread(self.service.call, operation, request)
        return await self.writer.call(operation, request)

    async def rotation_history(
        self, caller: Caller, secret_id: str, limit: int = HISTORY_LIMIT
    ) -> list[Body]:
        """The rotation events of a secret, oldest first; whoever may describe the secret
        may read its history, so DescribeSecret runs first, as ``caller``."""
        described = await self.call(caller, "DescribeSecret", {"SecretId": secret_id})
        return await asyncio.to_thread(rotation_events, self.service, described["ARN"], limit)
