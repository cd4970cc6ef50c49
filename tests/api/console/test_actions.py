"""The console's actions do what the same API requests do, and say so (or why not)."""

from __future__ import annotations

import html
import json
import uuid
from urllib.parse import urlencode

from secretsd.model import errors
from tests.api.console.test_security import make_secret, secret_path

DAY = 86400


def act(client, action: str, name: str, **fields: str):
    """Post the action's form from the secret's page; the page it redirects to."""
    csrf = client.get(secret_path(name)).csrf
    reply = client.post(f"/console/secret/{action}", {"csrf": csrf, "id": name, **fields})
    assert reply.status == 303, reply.body
    location = reply.header("location")
    assert location.startswith("/console/secret?id=")
    return client.get(location)


def flash(page) -> str:
    start = page.body.index('id="flash">') + len('id="flash">')
    return html.unescape(page.body[start : page.body.index("</p>", start)])


def test_put_a_new_value(client, console_server):
    name, _ = make_secret(console_server)
    page = act(client, "put-value", name, value='{"password": "new"}')
    assert flash(page).startswith("New value stored: version ")
    assert "AWSCURRENT" in flash(page)
    value = console_server.client().get_secret_value(SecretId=name)
    assert value["SecretString"] == '{"password": "new"}'
    assert flash(page).split("version ")[1].split(" ")[0] == value["VersionId"]
    # Shown once.
    assert 'id="flash"' not in client.get(secret_path(name)).body


def test_delete_with_a_recovery_window_then_restore(client, console_server):
    name, _ = make_secret(console_server)
    sm = console_server.client()
    page = act(client, "delete", name, days="7")
    assert flash(page).startswith("Scheduled for deletion on ")
    described = sm.describe_secret(SecretId=name)
    window = described["DeletedDate"]
    assert 'id="restore"' in page.body and 'id="rotate"' not in page.body
    listed = client.get("/console/secrets?" + urlencode({"q": name, "deleted": "1"})).body
    assert "Deleted" in listed
    assert f">{name}</a>" not in client.get("/console/secrets?" + urlencode({"q": name})).body
    page = act(client, "restore", name)
    assert flash(page) == "Restored: the deletion is cancelled."
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)
    assert window is not None


def test_a_refused_action_says_why(client, console_server):
    name, _ = make_secret(console_server)
    page = act(client, "delete", name, days="3")
    assert flash(page) == (
        "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
    )
    assert 'class="flash flash-error"' in page.body
    page = act(client, "rotate", name)
    assert flash(page) == errors.NO_ROTATION_FUNCTION
    assert "DeletedDate" not in console_server.client().describe_secret(SecretId=name)


def test_rotate_with_a_function_and_a_schedule_then_cancel(client, console_server):
    name, _ = make_secret(console_server, json.dumps({"api_key": "k0"}))
    sm = console_server.client()
    page = act(client, "rotate", name, function="secretsd-generic", schedule="rate(10 days)")
    assert flash(page).startswith("Rotation started: version ")
    described = sm.describe_secret(SecretId=name)
    assert described["RotationEnabled"] is True
    assert described["RotationRules"]["ScheduleExpression"] == "rate(10 days)"
    page = act(client, "cancel-rotation", name)
    assert flash(page).startswith("Rotation cancelled")
    assert sm.describe_secret(SecretId=name)["RotationEnabled"] is False


def test_an_unknown_secret_is_not_found(client):
    reply = client.get(secret_path(f"nope/{uuid.uuid4().hex}"))
    assert reply.status == 404
    assert errors.SECRET_NOT_FOUND in html.unescape(reply.body)


def test_search_by_name_and_by_tag(client, console_server):
    team = uuid.uuid4().hex[:8]
    tagged, _ = make_secret(console_server, Tags=[{"Key": "team", "Value": team}])
    other, _ = make_secret(console_server, Tags=[{"Key": "team", "Value": "x" + team}])
    by_tag = client.get("/console/secrets?" + urlencode({"tag": f"team={team}"})).body
    assert f">{tagged}</a>" in by_tag and f">{other}</a>" not in by_tag
    by_key = client.get("/console/secrets?" + urlencode({"tag": "team"})).body
    assert f">{tagged}</a>" in by_key and f">{other}</a>" in by_key
    by_name = client.get("/console/secrets?" + urlencode({"q": tagged})).body
    assert f">{tagged}</a>" in by_name and f">{other}</a>" not in by_name
    refused = client.get("/console/secrets?" + urlencode({"q": "<bad>"}))
    assert refused.status == 200 and "failed to satisfy constraint" in refused.body
    assert "<bad>" not in refused.body
