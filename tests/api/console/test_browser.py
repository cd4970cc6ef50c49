"""The console in a real browser (headless Chromium): sign in, find, reveal, rotate."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.console import root_key
from tests.support.server import start_server
from tests.support.wait import wait_for

GENERIC = "secretsd-generic"


@pytest.fixture
def rotating_server(tmp_path):
    server = start_server(tmp_path / "data")
    yield server
    server.stop()


def rotated_once(sm, name: str) -> str:
    """Turn rotation on with the generic function and wait for its first rotation."""
    token = sm.rotate_secret(
        SecretId=name, RotationLambdaARN=GENERIC, RotationRules={"AutomaticallyAfterDays": 30}
    )["VersionId"]
    wait_for(
        lambda: (
            sm.describe_secret(SecretId=name)["VersionIdsToStages"].get(token) == ["AWSCURRENT"]
        ),
        message="the first rotation did not finish",
    )
    return token


def test_sign_in_find_reveal_rotate_and_see_the_new_history_row(rotating_server, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    sm = rotating_server.client()
    team = f"t{uuid.uuid4().hex[:6]}"
    name = f"browser/{uuid.uuid4().hex[:8]}"
    sm.create_secret(
        Name=name,
        SecretString=json.dumps({"api_key": "initial"}),
        Tags=[{"Key": "team", "Value": team}],
    )
    sm.create_secret(Name=f"other/{uuid.uuid4().hex[:8]}", SecretString="{}")
    rotated_once(sm, name)
    current = sm.get_secret_value(SecretId=name)["SecretString"]

    def find(css: str):
        """The first element matching ``css``, once the page has one."""
        return wait_for(
            lambda: next(iter(browser.find_elements(By.CSS_SELECTOR, css)), None),
            message=f"no {css} on {browser.current_url}",
        )

    def texts(css: str) -> list[str] | None:
        """The texts of the elements, or None while the page is being replaced."""
        try:
            return [e.text for e in browser.find_elements(By.CSS_SELECTOR, css)]
        except StaleElementReferenceException:
            return None

    # Sign in: the console sends a browser without a session to the sign-in page.
    browser.get(f"{rotating_server.endpoint_url}/console/")
    assert browser.current_url.endswith("/console/sign-in")
    key_id, secret = root_key(rotating_server.data_dir)
    find("#access_key_id").send_keys(key_id)
    find("#secret_access_key").send_keys(secret)
    find("#sign-in").click()
    wait_for(lambda: browser.current_url.endswith("/console/secrets"))
    assert key_id in find("#signed-in-as").text

    # Find it by tag, then by name.
    find("#search-tag").send_keys(f"team={team}")
    find("#search").click()
    wait_for(lambda: "tag=team" in browser.current_url)
    wait_for(lambda: texts("a.secret-link") == [name], message="tag search")
    find("#search-tag").clear()
    find("#search-name").send_keys("browser/")
    find("#search").click()
    wait_for(lambda: "q=browser" in browser.current_url)
    found = wait_for(lambda: texts("a.secret-link"), message="name search")
    assert name in found and all(t.startswith("browser/") for t in found)
    badge = browser.find_element(
        By.XPATH, f"//a[text()='{name}']/ancestor::tr//span[contains(@class,'badge')]"
    )
    assert badge.text == "OK"
    browser.find_element(By.LINK_TEXT, name).click()
    wait_for(lambda: (texts("#secret-name") or [""])[0].startswith(name))

    # The value stays hidden until Reveal.
    assert current not in browser.page_source
    assert find("#hidden-value").is_displayed()
    find("#reveal").click()
    assert find("#secret-value").text == current

    # Rotate now, and see the new attempt in the history once it succeeded.
    before = texts("#history tr.attempt")
    assert len(before) == 1
    find("#rotate").click()
    wait_for(lambda: "Rotation started" in (texts("#flash") or [""])[0])

    def new_row_succeeded() -> bool:
        browser.refresh()
        return texts("#history tr.attempt .outcome") == ["succeeded", "succeeded"]

    wait_for(new_row_succeeded, interval=0.2, message="the new history row")
    newest = find("#history tr.attempt")
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        assert step in newest.text
    # The chart draws every step of both attempts.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#step-chart rect")) == 8
    assert find("#rotation-badge").text == "OK"
    assert sm.get_secret_value(SecretId=name)["SecretString"] != current
    # Nothing was refused by the Content-Security-Policy: no inline script, no foreign asset.
    console_errors = [
        entry for entry in browser.get_log("browser") if entry.get("level") == "SEVERE"
    ]
    assert console_errors == []
