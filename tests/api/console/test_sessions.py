"""Session and sign-in link lifetimes, driven through the console in process with a clock
the test moves (the same requests as over HTTP, without waiting half an hour)."""

from __future__ import annotations

import pytest

from secretsd.api.console import ConsoleApp, ConsoleOperations, KeyCheck, Sessions, SignInLinks
from secretsd.api.console.sessions import ANONYMOUS_SECONDS, LINK_SECONDS
from secretsd.model.identity import root_caller
from secretsd.service import SecretsService
from secretsd.service.writer import GroupWriter
from secretsd.store import open_storage
from tests.support.console import ConsoleClient, in_process

KEY_ID, SECRET = "AKIAEXAMPLE000000000", "s3cr3t-access-key"
IDLE, LIFETIME = 1800.0, 8 * 3600.0
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys() -> dict:
    """The server's keys: access key id -> (secret, caller); tests may remove one."""
    return {KEY_ID: (SECRET, root_caller("123456789012", KEY_ID))}


@pytest.fixture
def console(tmp_path, clock, keys):
    storage = open_storage(tmp_path / "data", env={}, mode="create")
    service = SecretsService(storage, clock=clock)
    writer = GroupWriter(service)
    app = ConsoleApp(
        ConsoleOperations(service, writer),
        KeyCheck(keys.get),
        sessions=Sessions(clock=clock, idle_seconds=IDLE, lifetime_seconds=LIFETIME),
        links=SignInLinks(clock=clock),
        clock=clock,
    )
    yield app
    writer.close()
    storage.close()


def signed_in(app) -> ConsoleClient:
    client = ConsoleClient(in_process(app))
    assert client.sign_in(KEY_ID, SECRET).status == 303
    assert client.get("/console/secrets").status == 200
    return client


def test_a_session_ends_after_the_idle_time(console, clock):
    client = signed_in(console)
    clock.advance(IDLE - 1)
    assert client.get("/console/secrets").status == 200
    clock.advance(IDLE - 1)  # activity moved the end
    assert client.get("/console/secrets").status == 200
    clock.advance(IDLE)
    reply = client.get("/console/secrets")
    assert reply.status == 303
    assert reply.header("location") == "/console/sign-in?ended=1"
    assert "max-age=0" in reply.header("set-cookie").lower()
    assert "Your session has ended" in client.get(reply.header("location")).body


def test_a_session_ends_at_its_lifetime_however_active(console, clock):
    client = signed_in(console)
    while clock.now + IDLE / 2 < T0 + LIFETIME:
        clock.advance(IDLE / 2)
        assert client.get("/console/secrets").status == 200
    clock.advance(IDLE / 2)
    assert client.get("/console/secrets").status == 303


def test_the_cookie_expires_with_the_session(console, clock):
    client = ConsoleClient(in_process(console))
    page = client.get("/console/sign-in")
    assert f"Max-Age={int(ANONYMOUS_SECONDS) + 1}" in page.header("set-cookie")
    reply = client.post(
        "/console/sign-in",
        {"csrf": page.csrf, "access_key_id": KEY_ID, "secret_access_key": SECRET},
    )
    # The browser keeps it for the lifetime; the idle limit is the server's to enforce.
    assert f"Max-Age={int(LIFETIME) + 1}" in reply.header("set-cookie")


def test_an_unused_sign_in_form_expires(console, clock):
    client = ConsoleClient(in_process(console))
    page = client.get("/console/sign-in")
    clock.advance(ANONYMOUS_SECONDS)
    reply = client.post(
        "/console/sign-in",
        {"csrf": page.csrf, "access_key_id": KEY_ID, "secret_access_key": SECRET},
    )
    assert reply.status == 403


def test_a_sign_in_link_expires(console, clock):
    caller = root_caller("123456789012", KEY_ID)
    stale = console.sign_in_link("", caller).split("token=")[1]
    clock.advance(LINK_SECONDS - 1)
    fresh = console.sign_in_link("", caller).split("token=")[1]
    clock.advance(1)
    for token, status in ((stale, 401), (fresh, 303), (fresh, 401)):
        client = ConsoleClient(in_process(console))
        page = client.get(f"/console/sign-in/link?token={token}")
        reply = client.post("/console/sign-in/link", {"csrf": page.csrf, "token": token})
        assert reply.status == status, token
        expected = 200 if status == 303 else 303
        assert client.get("/console/secrets").status == expected


def test_the_cookie_is_secure_over_tls(console):
    client = ConsoleClient(in_process(console, scheme="https"), "https://console.test")
    reply = client.sign_in(KEY_ID, SECRET)
    assert reply.status == 303
    assert "secure" in [a.strip().lower() for a in reply.header("set-cookie").split(";")]


def test_a_session_ends_with_its_key(console, keys):
    client = signed_in(console)
    del keys[KEY_ID]
    reply = client.get("/console/secrets")
    assert reply.status == 303 and reply.header("location") == "/console/sign-in?ended=1"
    keys[KEY_ID] = (SECRET, root_caller("123456789012", KEY_ID))
    assert client.get("/console/secrets").status == 303  # the session itself is gone


def test_loading_the_sign_in_page_over_and_over_evicts_no_signed_in_session(clock):
    sessions = Sessions(clock=clock, max_sessions=3)
    signed_in = sessions.open(root_caller("123456789012", KEY_ID))
    anonymous = [sessions.open() for _ in range(10)]
    assert sessions.get(signed_in.id) is signed_in
    assert [sessions.get(s.id) is not None for s in anonymous] == [False] * 7 + [True] * 3
