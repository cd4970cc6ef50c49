"""The pages of the secrets: the list, one secret, Reveal and the actions.

Each handler gets a signed-in session whose form (for a POST) has already been checked, and
reads or acts only through ``ConsoleOperations``, as the session's caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from secretsd.model import errors

from . import actions
from .http import Request, Response, redirect
from .operations import ConsoleOperations
from .pages import Pages
from .rotation_view import attempts, badge, chart
from .sessions import Session
from .views import schedule, timeline, when

PAGE_SIZE = 50


class SecretPages:
    def __init__(
        self,
        operations: ConsoleOperations,
        pages: Pages,
        *,
        prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.operations = operations
        self.pages = pages
        self.prefix = prefix
        self.clock = clock

    async def _call(
        self, request: Request, session: Session, operation: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        assert session.caller is not None
        return await self.operations.call(session.caller, request.context, operation, body)

    async def _allowed(
        self,
        request: Request,
        session: Session,
        operation: str,
        body: dict[str, Any],
        otherwise: dict[str, Any],
    ) -> dict[str, Any]:
        """The answer, or ``otherwise`` when the caller may not ask."""
        try:
            return await self._call(request, session, operation, body)
        except errors.NotAuthorized:
            return otherwise

    async def secrets(self, request: Request, session: Session) -> Response:
        q, tag = request.query.get("q", "").strip(), request.query.get("tag", "").strip()
        deleted = request.query.get("deleted") == "1"
        body = actions.list_request(q, tag, deleted, request.query.get("page"), PAGE_SIZE)
        error, rows, following = None, [], None
        try:
            listed = await self._call(request, session, "ListSecrets", body)
            rows = [await self._row(request, session, entry) for entry in listed["SecretList"]]
        except errors.SecretsManagerError as exc:
            error, rows = exc.message, []
        else:
            if "NextToken" in listed:
                following = {"q": q, "tag": tag, "page": listed["NextToken"]}
                if deleted:
                    following["deleted"] = "1"
        return self.pages.page(
            200,
            "secrets.html",
            session,
            q=q,
            tag=tag,
            deleted=deleted,
            rows=rows,
            error=error,
            next_page=following,
        )

    async def _row(
        self, request: Request, session: Session, entry: dict[str, Any]
    ) -> dict[str, Any]:
        # Listed, but perhaps not to be described by this caller.
        rotation = await self._allowed(
            request, session, "DescribeRotation", {"SecretId": entry["ARN"]}, {}
        )
        return {
            "name": entry["Name"],
            "badge": badge(entry, rotation),
            "description": entry.get("Description", ""),
            "tags": entry.get("Tags") or [],
            "last_changed": entry.get("LastChangedDate"),
            "next_rotation": entry.get("NextRotationDate"),
        }

    async def secret(self, request: Request, session: Session) -> Response:
        return await self._secret(request, session, request.query.get("id", ""))

    async def _secret(
        self, request: Request, session: Session, secret_id: str, **extra: Any
    ) -> Response:
        try:
            described = await self._call(
                request, session, "DescribeSecret", {"SecretId": secret_id}
            )
            arn = described["ARN"]
            # A caller allowed to describe the secret but not these sees the page without
            # them: the badge says "Not shown", the timeline has the staged versions only.
            rotation = await self._allowed(
                request, session, "DescribeRotation", {"SecretId": arn}, {}
            )
            listed = await self._allowed(
                request,
                session,
                "ListSecretVersionIds",
                {"SecretId": arn, "IncludeDeprecated": True, "MaxResults": 100},
                {"Versions": []},
            )
            assert session.caller is not None
            events = await self.operations.rotation_history(session.caller, request.context, arn)
        except errors.SecretsManagerError as exc:
            status = 404 if isinstance(exc, errors.ResourceNotFound) else exc.status
            return self.pages.message(status, "Can't show this secret", exc.message, session)
        history = attempts(events)
        now = self.clock()
        stages = described.get("VersionIdsToStages", {})
        return self.pages.page(
            200,
            "secret.html",
            session,
            secret=described,
            badge=badge(described, rotation),
            rotation=rotation,
            timeline=timeline(listed["Versions"], stages),
            schedule=schedule(described, now),
            history=history[::-1],
            chart=chart(history, lambda at: when(at)[5:19]),
            now=now,
            self_url=self.secret_url(described["Name"]),
            revealed=extra.get("revealed"),
            reveal_error=extra.get("reveal_error"),
        )

    def secret_url(self, secret_id: str) -> str:
        return f"{self.prefix}/secret?{urlencode({'id': secret_id})}"

    async def reveal(self, request: Request, session: Session) -> Response:
        secret_id = request.form.get("id", "")
        try:
            value = await self._call(request, session, "GetSecretValue", {"SecretId": secret_id})
        except errors.SecretsManagerError as exc:
            return await self._secret(request, session, secret_id, reveal_error=exc.message)
        return await self._secret(request, session, secret_id, revealed=value)

    async def act(self, request: Request, session: Session) -> Response:
        secret_id = request.form.get("id", "")
        try:
            operation, body, describe = actions.ACTIONS[request.path](request.form)
            result = await self._call(request, session, operation, body)
        except errors.SecretsManagerError as exc:
            session.flash = ("error", exc.message)
        else:
            session.flash = ("ok", describe(result))
        return redirect(self.secret_url(secret_id))
