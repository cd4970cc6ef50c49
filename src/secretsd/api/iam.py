"""IAM and STS over the Query protocol, in front of ``IdentityService``.

The credential scope's service says which API a request is for (``iam`` or ``sts``). IAM
operations run on threads of their own, as they commit to the store; GetCallerIdentity
only reads the caller, on the loop.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from secretsd.api import query
from secretsd.model import errors
from secretsd.model.identity import Caller
from secretsd.service.identities import IdentityService

IAM_NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
NAMESPACES = {"iam": IAM_NAMESPACE, "sts": STS_NAMESPACE}
THREADS = 2


def service_of(action: str) -> str:
    """For a request that names no service (unsigned, --no-auth): STS's one operation."""
    return "sts" if action == "GetCallerIdentity" else "iam"


class QueryApi:
    def __init__(self, identities: IdentityService) -> None:
        self.identities = identities
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="secretsd-iam")

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def call(self, service: str, action: str, params: dict[str, Any], caller: Caller) -> Any:
        if service == "sts":
            if action != "GetCallerIdentity":
                raise errors.InvalidAction(
                    f"Could not find operation {action} for version 2011-06-15"
                )
            return {"UserId": caller.user_id, "Account": caller.account_id, "Arn": caller.arn}
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(
            self._threads, self.identities.call, action, params, caller
        )
        if action == "GetUserPolicy":
            # IAM returns policy documents URL-encoded; SDKs decode them.
            result = {**result, "PolicyDocument": quote(result["PolicyDocument"], safe="")}
        return result

    @staticmethod
    def render(service: str, action: str, result: dict[str, Any], request_id: str) -> bytes:
        return query.response_body(NAMESPACES[service], action, result, request_id)

    @staticmethod
    def render_error(
        service: str, error: errors.SecretsManagerError, request_id: str
    ) -> tuple[int, bytes]:
        return query.error_body(NAMESPACES[service], error, request_id)
