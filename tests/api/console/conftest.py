"""Fixtures of the console tests: a live server, a signed-in client, a headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.console import ConsoleClient, over_http, root_key
from tests.support.server import ServerProcess, start_server

REQUIRE_BROWSER = os.environ.get("SECRETSD_REQUIRE_BROWSER") == "1"
CHROMIUM = ("chromium", "chromium-browser")
CHROMEDRIVER = "chromedriver"
LINK = re.compile(r"console sign-in link[^:]*: (http://\S+)")


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    server = start_server(tmp_path_factory.mktemp("console") / "data", "--console-sign-in-link")
    yield server
    server.stop()


def sign_in_link(server: ServerProcess) -> str:
    match = LINK.search(server.log_text())
    assert match, f"no sign-in link in the server's output:\n{server.log_text()}"
    return match.group(1)


@pytest.fixture
def client(console_server: ServerProcess) -> ConsoleClient:
    """A client signed in with the server's root key."""
    client = ConsoleClient(over_http(console_server.endpoint_url), console_server.endpoint_url)
    reply = client.sign_in(*root_key(console_server.data_dir))
    assert reply.status == 303, reply.body
    return client


def _find_browser() -> tuple[str, str] | None:
    binary = next((path for name in CHROMIUM if (path := shutil.which(name))), None)
    driver = shutil.which(CHROMEDRIVER)
    return (binary, driver) if binary and driver else None


@pytest.fixture
def browser(tmp_path_factory: pytest.TempPathFactory):
    """Debian's headless Chromium under selenium; skipped (failed under
    SECRETSD_REQUIRE_BROWSER=1) when chromium or chromedriver is missing."""
    found = _find_browser()
    if found is None:
        message = (
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
        if REQUIRE_BROWSER:
            pytest.fail(f"{message}; SECRETSD_REQUIRE_BROWSER=1 requires them")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = found
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.implicitly_wait(0)
    driver.screenshots_dir = tmp_path_factory.mktemp("console-screenshots")
    yield driver
    driver.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """When a browser test fails, save what the browser showed and say where."""
    outcome = yield
    report = outcome.get_result()
    driver = getattr(item, "funcargs", {}).get("browser")
    if report.when != "call" or not report.failed or driver is None:
        return
    folder = Path(driver.screenshots_dir)
    screenshot = folder / f"{item.name}.png"
    source = folder / f"{item.name}.html"
    try:
        driver.save_screenshot(str(screenshot))
        source.write_text(driver.page_source)
        saved = f"screenshot: {screenshot}\npage source: {source}\nURL: {driver.current_url}"
    except Exception as exc:  # the browser itself may be what failed
        saved = f"no screenshot could be taken: {exc!r}"
    report.longrepr = f"{report.longrepr}\n\n{saved}"
