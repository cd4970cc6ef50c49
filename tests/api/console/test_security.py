"""The console's security properties over plain HTTP against a live server."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode, urlsplit

import pytest

from secretsd.api.console.http import CONTENT_SECURITY_POLICY
from tests.api.console.conftest import sign_in_link
from tests.api.test_tls import self_signed
from tests.support.console import ConsoleClient, over_http, root_key
from tests.support.server import start_server
from tests.support.wait import wait_for


def new_client(server) -> ConsoleClient:
    return ConsoleClient(over_http(server.endpoint_url), server.endpoint_url)


def secret_path(name: str) -> str:
    return "/console/secret?" + urlencode({"id": name})


def make_secret(server, value: str | None = None, **extra) -> tuple[str, str]:
    name = f"console/{uuid.uuid4().hex[:10]}"
    value = value or json.dumps({"password": f"v-{uuid.uuid4().hex}"})
    server.client().create_secret(Name=name, SecretString=value, **extra)
    return name, value


def test_the_session_cookie_is_httponly_strict_and_scoped_to_the_console(console_server):
    reply = new_client(console_server).get("/console/sign-in")
    assert reply.status == 200
    (cookie,) = reply.all("set-cookie")
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/console" in attributes
    assert any(a.startswith("max-age=") and int(a[8:]) > 0 for a in attributes)
    # Plain HTTP: a Secure cookie would never come back (TLS is covered in process).
    assert "secure" not in attributes


def test_signing_in_issues_a_new_session_id(console_server):
    client = new_client(console_server)
    client.get("/console/sign-in")
    anonymous = client.cookie
    reply = client.sign_in(*root_key(console_server.data_dir))
    assert reply.status == 303 and reply.header("location") == "/console/secrets"
    assert client.cookie and client.cookie != anonymous
    cookie = reply.header("set-cookie").lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


@pytest.mark.parametrize(
    "target", ["/console/sign-in", "/console/secrets", "/console/static/console.css", "/console/x"]
)
def test_every_page_has_the_strict_csp_and_refuses_frames(client, target):
    reply = client.get(target)
    assert reply.header("content-security-policy") == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert reply.header("x-frame-options") == "DENY"
    assert reply.header("x-content-type-options") == "nosniff"


def test_pages_load_no_inline_script_and_nothing_from_other_hosts(client, console_server):
    name, _ = make_secret(console_server)
    for target in ("/console/secrets", secret_path(name)):
        body = client.get(target).body
        assert "<script>" not in body and " style=" not in body and "onclick" not in body
        assert "http://" not in body.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in body


@pytest.mark.parametrize(
    "key_id, secret",
    [("right", "wrong"), ("AKIAUNKNOWN000000000", "right"), ("", ""), ("right", "")],
)
def test_a_wrong_key_is_refused(console_server, key_id, secret):
    real_id, real_secret = root_key(console_server.data_dir)
    key_id = real_id if key_id == "right" else key_id
    secret = real_secret if secret == "right" else secret + real_secret[:-1]
    client = new_client(console_server)
    reply = client.sign_in(key_id, secret)
    assert reply.status == 401
    assert "The access key ID or the secret access key is wrong." in reply.body
    assert client.get("/console/secrets").status == 303


def test_pages_need_a_session(console_server):
    client = new_client(console_server)
    for target in ("/console/secrets", "/console/secret?id=x", "/console/"):
        reply = client.get(target)
        assert reply.status == 303
        assert reply.header("location") in ("/console/sign-in", "/console/secrets")
    reply = client.post("/console/secret/put-value", {"id": "x", "value": "y"})
    assert reply.status == 303 and reply.header("location") == "/console/sign-in"


def test_a_form_without_the_session_csrf_token_is_refused(client, console_server):
    name, _ = make_secret(console_server)
    sm = console_server.client()
    before = sm.list_secret_version_ids(SecretId=name)["Versions"]
    other = new_client(console_server)
    other.sign_in(*root_key(console_server.data_dir))
    foreign = other.get("/console/secrets").csrf
    for csrf in (None, "", "x" * 43, foreign):
        form = {"id": name, "value": "planted"}
        if csrf is not None:
            form["csrf"] = csrf
        reply = client.post("/console/secret/put-value", form)
        assert reply.status == 403, csrf
        assert "did not come from this console" in reply.body
    assert sm.list_secret_version_ids(SecretId=name)["Versions"] == before


def test_a_form_from_another_origin_is_refused(client, console_server):
    name, _ = make_secret(console_server)
    csrf = client.get(secret_path(name)).csrf
    reply = client.post(
        "/console/secret/reveal", {"id": name, "csrf": csrf}, Origin="http://evil.example"
    )
    assert reply.status == 403
    assert client.post("/console/secret/reveal", {"id": name, "csrf": csrf}).status == 200


def test_the_sign_in_form_needs_its_csrf_token_too(console_server):
    client = new_client(console_server)
    client.get("/console/sign-in")
    key_id, secret = root_key(console_server.data_dir)
    reply = client.post("/console/sign-in", {"access_key_id": key_id, "secret_access_key": secret})
    assert reply.status == 403
    assert client.get("/console/secrets").status == 303


def test_no_secret_value_in_any_page_until_revealed(client, console_server):
    marker = f"value-{uuid.uuid4().hex}"
    name, _ = make_secret(
        console_server, json.dumps({"password": marker}), Tags=[{"Key": "team", "Value": "a"}]
    )
    pages = [
        "/console/secrets",
        "/console/secrets?" + urlencode({"q": name}),
        "/console/secrets?" + urlencode({"tag": "team=a"}),
        secret_path(name),
    ]
    for target in pages:
        reply = client.get(target)
        assert reply.status == 200, target
        assert marker not in reply.body, target
    csrf = client.get(secret_path(name)).csrf
    revealed = client.post("/console/secret/reveal", {"id": name, "csrf": csrf})
    assert revealed.status == 200
    assert revealed.header("cache-control") == "no-store"
    assert marker in revealed.body
    # Revealing is not remembered: the next page hides it again.
    assert marker not in client.get(secret_path(name)).body


def test_text_from_secrets_is_escaped(client, console_server):
    description = '<script>alert("x")</script>'
    name, _ = make_secret(
        console_server,
        Description=description,
        Tags=[{"Key": "k<b>", "Value": "v&'\""}],
    )
    body = client.get(secret_path(name)).body
    assert description not in body and "&lt;script&gt;" in body
    assert "k<b>" not in body and "k&lt;b&gt;" in body
    listing = client.get("/console/secrets?" + urlencode({"q": name})).body
    assert description not in listing


def test_a_one_time_link_signs_in_once(console_server):
    link = sign_in_link(console_server)
    target = urlsplit(link)
    path = f"{target.path}?{target.query}"
    client = new_client(console_server)
    page = client.get(path)
    assert page.status == 200
    token = dict(pair.split("=", 1) for pair in target.query.split("&"))["token"]
    reply = client.post("/console/sign-in/link", {"csrf": page.csrf, "token": token})
    assert reply.status == 303 and reply.header("location") == "/console/secrets"
    assert client.get("/console/secrets").status == 200
    again = new_client(console_server)
    page = again.get(path)
    reply = again.post("/console/sign-in/link", {"csrf": page.csrf, "token": token})
    assert reply.status == 401
    assert "used already, or it has expired" in reply.body
    assert again.get("/console/secrets").status == 303


def test_signing_out_ends_the_session(console_server):
    client = new_client(console_server)
    client.sign_in(*root_key(console_server.data_dir))
    session = client.cookie
    csrf = client.get("/console/secrets").csrf
    reply = client.post("/console/sign-out", {"csrf": csrf})
    assert reply.status == 303
    client.cookie = session  # a copy of the old cookie is worth nothing now
    assert client.get("/console/secrets").status == 303


def test_a_refused_sign_in_logs_no_secret(console_server):
    key_id, secret = root_key(console_server.data_dir)
    client = new_client(console_server)
    # The secret typed into the key id field, and the right id with a wrong secret.
    assert client.sign_in(secret, secret).status == 401
    assert client.sign_in(key_id, secret[::-1]).status == 401
    wait_for(lambda: console_server.log_text().count("console sign-in refused") >= 2)
    text = console_server.log_text()
    log = text[text.index("listening on") :]  # before it, the new key is shown on purpose
    assert secret not in log and secret[::-1] not in log
    assert key_id in log


def test_the_cookie_is_secure_over_https(tmp_path):
    cert, key = self_signed(tmp_path)
    server = start_server(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert server.endpoint_url.startswith("https://")
        client = ConsoleClient(over_http(server.endpoint_url, cert), server.endpoint_url)
        page = client.get("/console/sign-in")
        assert "secure" in [a.strip().lower() for a in page.header("set-cookie").split(";")]
        reply = client.sign_in(*root_key(server.data_dir))
        assert reply.status == 303
        assert "secure" in [a.strip().lower() for a in reply.header("set-cookie").split(";")]
        assert client.get("/console/secrets").status == 200
    finally:
        server.stop()
