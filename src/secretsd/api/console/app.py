"""The console's ASGI application: sign-in, the pages, the static files.

Mounted by the API shell under its prefix (``/console``). Every page but sign-in needs a
signed-in session; every POST needs the session's CSRF token in its form and, when the
browser sends an Origin, this server's origin. Pages read and act through
``ConsoleOperations`` only, as the signed-in caller; an action answers with a redirect to
the secret's page (post/redirect/get) and a message shown there once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from secretsd.model import errors

from . import actions
from .http import BadRequest, Request, Response, read_request, redirect, send_response
from .operations import ConsoleOperations
from .pages import STATIC_TYPES, Pages
from .rotation_view import attempts, badge, chart, failing_since, pending_version
from .sessions import KeyCheck, Session, Sessions, SignInLinks
from .views import schedule, timeline, when

log = logging.getLogger("secretsd.console")

COOKIE = "secretsd_console"
PAGE_SIZE = 50
WRONG_KEY = "The access key ID or the secret access key is wrong."
BAD_LINK = "This sign-in link can't be used: it was used already, or it has expired."
BAD_FORM = (
    "The form could not be accepted: it did not come from this console, or your session "
    "changed since it was shown. Load the page again and retry."
)
ENDED = "Your session has ended. Sign in again."

Handler = Callable[[Request], Awaitable[Response]]
# Only what has the shape of a key id is logged: a secret pasted into the wrong field is not.
_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")


def _loggable(request: Request) -> str:
    typed = request.form.get("access_key_id", "").strip()
    return typed if _KEY_ID.fullmatch(typed) else "(not an access key id)"


class ConsoleApp:
    def __init__(
        self,
        operations: ConsoleOperations,
        check_key: KeyCheck,
        *,
        sessions: Sessions | None = None,
        links: SignInLinks | None = None,
        prefix: str = "/console",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.operations = operations
        self.check_key = check_key
        self.sessions = sessions if sessions is not None else Sessions(clock=clock)
        self.links = links if links is not None else SignInLinks(clock=clock)
        self.prefix = prefix
        self.clock = clock
        self.pages = Pages(prefix)
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/"): self.home,
            ("GET", "/sign-in"): self.sign_in_form,
            ("POST", "/sign-in"): self.sign_in,
            ("GET", "/sign-in/link"): self.link_form,
            ("POST", "/sign-in/link"): self.sign_in_with_link,
            ("POST", "/sign-out"): self.sign_out,
            ("GET", "/secrets"): self.secrets_page,
            ("GET", "/secret"): self.secret_page,
            ("POST", "/secret/reveal"): self.reveal,
        }
        for path in actions.ACTIONS:
            self.routes["POST", path] = self.act

    def sign_in_link(self, base_url: str, caller: Any) -> str:
        """A one-time sign-in link for ``caller`` (``secretsd up`` prints one)."""
        token = self.links.mint(caller)
        return f"{base_url}{self.prefix}/sign-in/link?{urlencode({'token': token})}"

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        cache = False
        try:
            request = await read_request(scope, receive, self.prefix)
            if request.method == "GET" and request.path.startswith("/static/"):
                response = self.static(request.path.removeprefix("/static/"))
                cache = response.status == 200
            else:
                handler = self.routes.get((request.method, request.path))
                if handler is not None:
                    response = await handler(request)
                elif any(path == request.path for _, path in self.routes):
                    response = self.message(405, "Method not allowed", "Not with this method.")
                else:
                    response = self.message(404, "Not found", "There is no such page.")
        except BadRequest as exc:
            response = self.message(exc.status, "Bad request", exc.message)
        except Exception:
            log.exception("console error")
            response = self.message(500, "Internal error", "An internal error occurred.")
        await send_response(send, response, cache=cache)

    # -- sessions ----------------------------------------------------------------------

    def _cookie(self, response: Response, request: Request, session: Session) -> Response:
        seconds = int(self.sessions.cookie_seconds(session)) + 1
        response.set_cookie(
            COOKIE, session.id, path=self.prefix, max_age=seconds, secure=request.secure
        )
        return response

    def _forget(self, response: Response, request: Request) -> Response:
        response.set_cookie(COOKIE, "", path=self.prefix, max_age=0, secure=request.secure)
        return response

    async def _signed_in(self, request: Request) -> Session | Response:
        """The signed-in session, or the response that sends the browser to sign in; for a
        POST, also the refusal of a form without this session's CSRF token."""
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is not None and session.caller is not None:
            # The key as it stands now: deactivated keys end their sessions, changed
            # policies apply at once. The lookup may need the store: off the loop.
            current = await asyncio.to_thread(self.check_key.current, session.caller)
            if current is None:
                self.sessions.close(session)
                session = None
            else:
                session.caller = current
        if session is None or session.caller is None:
            ended = COOKIE in request.cookies and request.cookies[COOKIE] != ""
            target = f"{self.prefix}/sign-in" + ("?ended=1" if ended else "")
            return self._forget(redirect(target), request) if ended else redirect(target)
        if request.method == "POST" and not self._form_ok(request, session):
            return self.message(403, "Refused", BAD_FORM, session)
        return session

    @staticmethod
    def _form_ok(request: Request, session: Session) -> bool:
        return request.same_origin() and session.check_csrf(request.form.get("csrf"))

    def _anonymous(self, request: Request) -> Session:
        session = self.sessions.get(request.cookies.get(COOKIE))
        return session if session is not None else self.sessions.open()

    # -- sign-in -----------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return redirect(f"{self.prefix}/secrets")

    async def sign_in_form(self, request: Request, error: str | None = None) -> Response:
        session = self._anonymous(request)
        if session.caller is not None:
            return redirect(f"{self.prefix}/secrets")
        if error is None and request.query.get("ended"):
            error = ENDED
        body = self.pages.render(
            "sign_in.html",
            csrf=session.csrf,
            error=error,
            access_key_id=request.form.get("access_key_id", ""),
        )
        status = 401 if error and error != ENDED else 200
        return self._cookie(Response(status, body), request, session)

    async def sign_in(self, request: Request) -> Response:
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None or not self._form_ok(request, session):
            return self.message(403, "Refused", BAD_FORM)
        caller = await asyncio.to_thread(
            self.check_key,
            request.form.get("access_key_id", "").strip(),
            request.form.get("secret_access_key", "").strip(),
        )
        if caller is None:
            log.warning("console sign-in refused", extra={"access_key_id": _loggable(request)})
            return await self.sign_in_form(request, WRONG_KEY)
        return self._start(request, session, caller)

    def _start(self, request: Request, previous: Session, caller: Any) -> Response:
        session = self.sessions.sign_in(previous, caller)
        log.info("console sign-in", extra={"access_key_id": caller.access_key_id})
        return self._cookie(redirect(f"{self.prefix}/secrets"), request, session)

    async def link_form(self, request: Request) -> Response:
        session = self._anonymous(request)
        body = self.pages.render(
            "sign_in_link.html", csrf=session.csrf, token=request.query.get("token", "")
        )
        return self._cookie(Response(200, body), request, session)

    async def sign_in_with_link(self, request: Request) -> Response:
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None or not self._form_ok(request, session):
            return self.message(403, "Refused", BAD_FORM)
        caller = self.links.redeem(request.form.get("token"))
        if caller is None:
            return await self.sign_in_form(request, BAD_LINK)
        return self._start(request, session, caller)

    async def sign_out(self, request: Request) -> Response:
        session = await self._signed_in(request)
        if isinstance(session, Response):
            return session
        self.sessions.close(session)
        return self._forget(redirect(f"{self.prefix}/sign-in"), request)

    # -- pages -------------------------------------------------------------------------

    def _render(self, status: int, template: str, session: Session, **context: Any) -> Response:
        flash, session.flash = session.flash, None
        body = self.pages.render(
            template, caller=session.caller, csrf=session.csrf, flash=flash, **context
        )
        return Response(status, body)

    def message(
        self, status: int, heading: str, text: str, session: Session | None = None
    ) -> Response:
        caller = session.caller if session is not None else None
        csrf = session.csrf if session is not None else ""
        body = self.pages.render(
            "message.html", heading=heading, message=text, caller=caller, csrf=csrf
        )
        return Response(status, body)

    def static(self, name: str) -> Response:
        content = self.pages.static.get(name)
        if content is None:
            return self.message(404, "Not found", "There is no such file.")
        return Response(200, content, STATIC_TYPES[name])

    async def secrets_page(self, request: Request) -> Response:
        session = await self._signed_in(request)
        if isinstance(session, Response):
            return session
        assert session.caller is not None
        q, tag = request.query.get("q", "").strip(), request.query.get("tag", "").strip()
        deleted = request.query.get("deleted") == "1"
        body = actions.list_request(q, tag, deleted, request.query.get("page"), PAGE_SIZE)
        error, rows, following = None, [], None
        try:
            listed = await self.operations.call(session.caller, "ListSecrets", body)
        except errors.SecretsManagerError as exc:
            error = exc.message
        else:
            rows = [await self._row(session, entry) for entry in listed["SecretList"]]
            if "NextToken" in listed:
                following = {"q": q, "tag": tag, "page": listed["NextToken"]}
                if deleted:
                    following["deleted"] = "1"
        return self._render(
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

    async def _row(self, session: Session, entry: dict[str, Any]) -> dict[str, Any]:
        assert session.caller is not None
        history = None
        if entry.get("RotationEnabled") and pending_version(
            entry.get("SecretVersionsToStages") or {}
        ):
            # Only a rotation under way can be failing: its last attempt says which.
            events = await self.operations.rotation_history(session.caller, entry["ARN"], 20)
            history = attempts(events)
        return {
            "name": entry["Name"],
            "badge": badge(entry, history, self.clock()),
            "description": entry.get("Description", ""),
            "tags": entry.get("Tags") or [],
            "last_changed": entry.get("LastChangedDate"),
            "next_rotation": entry.get("NextRotationDate"),
        }

    async def secret_page(self, request: Request) -> Response:
        session = await self._signed_in(request)
        if isinstance(session, Response):
            return session
        return await self._secret(session, request.query.get("id", ""))

    async def _secret(self, session: Session, secret_id: str, **extra: Any) -> Response:
        caller = session.caller
        assert caller is not None
        try:
            described = await self.operations.call(
                caller, "DescribeSecret", {"SecretId": secret_id}
            )
            listed = await self.operations.call(
                caller,
                "ListSecretVersionIds",
                {"SecretId": described["ARN"], "IncludeDeprecated": True, "MaxResults": 100},
            )
            history = attempts(await self.operations.rotation_history(caller, described["ARN"]))
        except errors.SecretsManagerError as exc:
            status = 404 if isinstance(exc, errors.ResourceNotFound) else exc.status
            return self.message(status, "Can't show this secret", exc.message, session)
        now = self.clock()
        stages = described.get("VersionIdsToStages", {})
        return self._render(
            200,
            "secret.html",
            session,
            secret=described,
            badge=badge(described, history, now),
            failing=failing_since(history),
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

    async def reveal(self, request: Request) -> Response:
        session = await self._signed_in(request)
        if isinstance(session, Response):
            return session
        assert session.caller is not None
        secret_id = request.form.get("id", "")
        try:
            value = await self.operations.call(
                session.caller, "GetSecretValue", {"SecretId": secret_id}
            )
        except errors.SecretsManagerError as exc:
            return await self._secret(session, secret_id, reveal_error=exc.message)
        return await self._secret(session, secret_id, revealed=value)

    async def act(self, request: Request) -> Response:
        session = await self._signed_in(request)
        if isinstance(session, Response):
            return session
        assert session.caller is not None
        secret_id = request.form.get("id", "")
        try:
            operation, body, describe = actions.ACTIONS[request.path](request.form)
            result = await self.operations.call(session.caller, operation, body)
        except errors.SecretsManagerError as exc:
            session.flash = ("error", exc.message)
        else:
            session.flash = ("ok", describe(result))
        return redirect(self.secret_url(secret_id))
