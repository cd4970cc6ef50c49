"""Rotation as the console shows it, against a live server whose functions fail or wait."""

from __future__ import annotations

import html
import uuid
from urllib.parse import urlencode

import pytest

from tests.support.console import ConsoleClient, over_http, root_key
from tests.support.rotating import start_rotating_server
from tests.support.wait import wait_for


@pytest.fixture
def rotating_server(tmp_path):
    server = start_rotating_server(tmp_path)
    yield server
    server.gate.touch()
    server.stop()


def badge_of(client: ConsoleClient, name: str) -> str:
    body = client.get("/console/secrets?" + urlencode({"q": name})).body
    row = body[body.index(f">{name}</a>") :]
    start = row.index('class="badge badge-')
    return row[row.index(">", start) + 1 : row.index("</span>", start)]


def test_failing_and_in_progress_rotations_are_badged(rotating_server):
    sm = rotating_server.client()
    failing, waiting, plain = (f"{kind}/{uuid.uuid4().hex[:8]}" for kind in ("f", "w", "p"))
    for name in (failing, waiting, plain):
        sm.create_secret(Name=name, SecretString='{"api_key": "k"}')
    sm.rotate_secret(SecretId=failing, RotationLambdaARN="always-fails")
    sm.rotate_secret(SecretId=waiting, RotationLambdaARN="waits-for-gate")
    client = ConsoleClient(over_http(rotating_server.endpoint_url), rotating_server.endpoint_url)
    client.sign_in(*root_key(rotating_server.data_dir))

    wait_for(lambda: badge_of(client, failing) == "Failing", message="failing badge")
    assert badge_of(client, waiting) == "In progress"
    assert badge_of(client, plain) == "Not rotating"

    page = html.unescape(client.get("/console/secret?" + urlencode({"id": failing})).body)
    assert "Rotation failing since " in page
    assert "database refused: boom" in page  # the function's error, in the history
    assert 'class="step-failed"' in page  # the failed step, drawn red in the chart
    pending = page[page.index('id="timeline"') :]
    assert "AWSPENDING" in pending and "no value yet" in pending
