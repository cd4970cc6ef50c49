"""Templates and static files of the console, loaded from the package.

Jinja2 escapes every value put into a page (autoescape on for every template, ``.svg``
included), so no text from a secret, a tag, an error message or a form can become markup.
Templates that refer to a name they were not given fail loudly (StrictUndefined).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2

from .http import Response
from .rotation_view import STEPS, format_ms
from .sessions import Session
from .views import when

STATIC_TYPES = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


class Pages:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("secretsd.api.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.globals.update(prefix=prefix, when=when, format_ms=format_ms, steps=STEPS)
        package = resources.files("secretsd.api.console") / "static"
        self.static = {name: (package / name).read_bytes() for name in STATIC_TYPES}

    def render(self, template: str, **context: Any) -> bytes:
        context.setdefault("caller", None)
        context.setdefault("csrf", "")
        context.setdefault("flash", None)
        return self._env.get_template(template).render(**context).encode()

    def page(self, status: int, template: str, session: Session, **context: Any) -> Response:
        """A page for a signed-in session, with its message shown once."""
        flash, session.flash = session.flash, None
        body = self.render(
            template, caller=session.caller, csrf=session.csrf, flash=flash, **context
        )
        return Response(status, body)

    def message(
        self, status: int, heading: str, text: str, session: Session | None = None
    ) -> Response:
        caller = session.caller if session is not None else None
        csrf = session.csrf if session is not None else ""
        body = self.render("message.html", heading=heading, message=text, caller=caller, csrf=csrf)
        return Response(status, body)
