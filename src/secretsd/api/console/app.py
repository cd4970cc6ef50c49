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
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from secretsd.api.app import request_context
from secretsd.model.identity import Caller
from secretsd.service.audit_trail import AuditUnavailable
from secretsd.service.ids import UniqueIds

from . import actions
from .http import BadRequest, Request, Response, read_request, redirect, send_response
from .operations import ConsoleOperations
from .pages import STATIC_TYPES, Pages
from .secret_pages import SecretPages
from .sessions import KeyCheck, Session, Sessions, SignInLinks
from .signins import SignIns, loggable_key_id

log = logging.getLogger("secretsd.console")

COOKIE = "secretsd_console"
WRONG_KEY = "The access key ID or the secret access key is wrong."
BAD_LINK = "This sign-in link can't be used: it was used already, or it has expired."
BAD_FORM = (
    "The form could not be accepted: it did not come from this console, or your session "
    "changed since it was shown. Load the page again and retry."
)
ENDED = "Your session has ended. Sign in again."
USER_AGENT = "secretsd-console"

Handler = Callable[[Request], Awaitable[Response]]
PageHandler = Callable[[Request, Session], Awaitable[Response]]


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
        self.request_ids = UniqueIds()
        self.pages = Pages(prefix)
        self.signins = SignIns(operations.audit)
        secrets = SecretPages(operations, self.pages, prefix=prefix, clock=clock)
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/"): self.home,
            ("GET", "/sign-in"): self.sign_in_form,
            ("POST", "/sign-in"): self.sign_in,
            ("GET", "/sign-in/link"): self.link_form,
            ("POST", "/sign-in/link"): self.sign_in_with_link,
            ("POST", "/sign-out"): self.sign_out,
            ("GET", "/secrets"): self._protected(secrets.secrets),
            ("GET", "/secret"): self._protected(secrets.secret),
            ("POST", "/secret/reveal"): self._protected(secrets.reveal),
        }
        for path in actions.ACTIONS:
            self.routes["POST", path] = self._protected(secrets.act)

    def sign_in_link(self, base_url: str, caller: Any) -> str:
        """A one-time sign-in link for ``caller`` (``secretsd up`` prints one)."""
        token = self.links.mint(caller)
        return f"{base_url}{self.prefix}/sign-in/link?{urlencode({'token': token})}"

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        cache = False
        try:
            context = request_context(scope, self.request_ids.next())
            # The audit trail tells the console's calls from an SDK's by their user agent.
            context = replace(context, user_agent=f"{USER_AGENT} {context.user_agent}".strip())
            request = await read_request(scope, receive, self.prefix, context)
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
        typed = request.form.get("access_key_id", "")
        refused = await self._audit(request, caller, "AccessKey", typed)
        if refused is not None:
            return refused
        if caller is None:
            shown = loggable_key_id(typed) or "(not an access key id)"
            log.warning("console sign-in refused", extra={"access_key_id": shown})
            return await self.sign_in_form(request, WRONG_KEY)
        return self._start(request, session, caller)

    async def _audit(
        self, request: Request, caller: Caller | None, method: str, typed: str = ""
    ) -> Response | None:
        """Put the sign-in on the audit trail; the refusal to send when it can't be."""
        try:
            await self.signins.record(caller, request.context, method=method, typed_key_id=typed)
        except AuditUnavailable as exc:
            return self.message(500, "Refused", exc.message)
        return None

    def _start(self, request: Request, previous: Session, caller: Caller) -> Response:
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
        refused = await self._audit(request, caller, "SignInLink")
        if refused is not None:
            return refused
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

    def message(
        self, status: int, heading: str, text: str, session: Session | None = None
    ) -> Response:
        return self.pages.message(status, heading, text, session)

    def static(self, name: str) -> Response:
        content = self.pages.static.get(name)
        if content is None:
            return self.message(404, "Not found", "There is no such file.")
        return Response(200, content, STATIC_TYPES[name])

    def _protected(self, handler: PageHandler) -> Handler:
        async def checked(request: Request) -> Response:
            session = await self._signed_in(request)
            if isinstance(session, Response):
                return session
            return await handler(request, session)

        return checked
