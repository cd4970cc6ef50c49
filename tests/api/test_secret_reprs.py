"""Secrets kept out of reprs, and sessions named as what they are on the audit trail."""

from __future__ import annotations

from secretsd.api.console.http import Request, Response
from secretsd.model.identity import Caller
from secretsd.model.request import RequestFacts
from secretsd.service.audit import user_identity
from secretsd.service.identities import _Known
from secretsd.service.sessions import SessionKeys

CONTEXT = RequestFacts("req-1", "192.0.2.7", "test", secure_transport=True)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_a_known_key_does_not_show_its_secret() -> None:
    caller = Caller("123456789012", "arn:aws:iam::123456789012:user/a", "AIDA1", "AKIA1", "a")
    known = _Known(1, b"{}", SECRET, caller)
    assert SECRET not in repr(known)


def test_a_console_request_and_response_do_not_show_tokens_or_values() -> None:
    request = Request(
        method="POST",
        path="/sign-in",
        query={"token": "link-token-123"},
        cookies={"secretsd_console": "session-id-456"},
        form={"secret_access_key": SECRET, "csrf": "csrf-789"},
        secure=True,
        origin=None,
        host=None,
        context=CONTEXT,
    )
    shown = repr(request)
    for secret in ("link-token-123", "session-id-456", SECRET, "csrf-789"):
        assert secret not in shown
    response = Response(200, b"value-abc", headers=[("set-cookie", "secretsd_console=xyz")])
    assert "value-abc" not in repr(response) and "xyz" not in repr(response)


def test_a_session_is_recorded_as_an_assumed_role() -> None:
    sessions = SessionKeys("123456789012")
    key_id, secret = sessions.issue("rotator", "rotation-1", ())
    found = sessions.lookup(key_id)
    assert found is not None
    assert secret not in repr(found[1])
    assert user_identity(found[1])["type"] == "AssumedRole"
