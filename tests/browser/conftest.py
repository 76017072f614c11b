"""Browser fixtures: Debian's Chromium driven by Playwright against real `python -m autobots serve` processes.

The servers mirror `tests/e2e/conftest.py` (a `local`-auth one and an `apikey` one, each with a SQLite file of its
own: these tests run once, in the SQLite pass). One Chromium serves this package's tests and stops after them:
Playwright's sync API keeps an event loop running while it is open, which would break every asyncio test that
runs later in the same pytest session. Each test gets a fresh
browser context (its own localStorage, so no key carries over) and page. Playwright's `launch` gives the browser a
new, empty profile directory of its own. Each test's screenshots go to `test-artifacts/browser/<test name>/`.

Without /usr/bin/chromium (`scripts/setup-browser.sh` installs it) the browser tests skip, or fail when
AUTOBOTS_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.pages import Shots
from tests.support.servers import (
    ServerProcess,
    create_api_keys,
    database_for,
    launch_server,
    stop_and_check,
    wait_ready,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
DESKTOP = {"width": 1280, "height": 900}
EXPECT_TIMEOUT_MS = 20_000
# One run worker per server (not one per core): the page's runs are small, and fewer processes start sooner.
RUN_WORKERS = "1"


@pytest.fixture(scope="package")
def browser_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="package")
def launched(browser_root: Path) -> Iterator[dict[str, ServerProcess]]:
    """Both servers, launched together so that their imports overlap."""
    servers = {
        "local": launch_server(browser_root / "local", database_for(browser_root, "local", False),
                               AUTOBOTS_RUN_WORKERS=RUN_WORKERS),
        "apikey": launch_server(browser_root / "apikey", database_for(browser_root, "apikey", False),
                                AUTOBOTS_AUTH_MODE="apikey", AUTOBOTS_RUN_WORKERS=RUN_WORKERS),
    }
    try:
        yield servers
    finally:
        for server in servers.values():
            stop_and_check(server)


@pytest.fixture(scope="package")
def local_server(launched: dict[str, ServerProcess]) -> ServerProcess:
    """A `local`-auth server on loopback: no key needed."""
    return wait_ready(launched["local"])


@pytest.fixture(scope="package")
def apikey_server(launched: dict[str, ServerProcess]) -> ServerProcess:
    """A server that requires `Authorization: Bearer <key>`."""
    return wait_ready(launched["apikey"])


@pytest.fixture(scope="package")
def api_keys(apikey_server: ServerProcess) -> dict[str, str]:
    """Keys for alice and bob, made with `python -m autobots users add NAME` (the key is the last line)."""
    return create_api_keys(apikey_server, "alice", "bob")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Debian Chromium for these tests (skipped, or failed under AUTOBOTS_REQUIRE_BROWSER=1, when
    /usr/bin/chromium is missing)."""
    if not CHROMIUM.exists():
        message = f"browser tests need Debian's Chromium at {CHROMIUM} (scripts/setup-browser.sh installs it)"
        if os.environ.get("AUTOBOTS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message}, and AUTOBOTS_REQUIRE_BROWSER=1")
        pytest.skip(message)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="package")
def artifacts() -> Path:
    """test-artifacts/browser, emptied once per test session that runs these tests."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture
def shots(request: pytest.FixtureRequest, artifacts: Path) -> Shots:
    """Numbered screenshots of this test's steps, in a folder named for the test."""
    return Shots(artifacts / re.sub(r"[^\w.-]+", "_", request.node.name))


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context; the test fails if the page raised an error or the console reported one
    (a Content-Security-Policy violation is reported there)."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", lambda message: problems.append(f"console error: {message.text}")
           if message.type == "error" and not _expected_console_error(message.text) else None)
    try:
        yield tab
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def _expected_console_error(text: str) -> bool:
    """Chromium logs every 4xx/5xx answer to fetch as a console error; those are the API's answers the page
    handles (a refused key, a spec's problems, a session that is not yours)."""
    return text.startswith("Failed to load resource: the server responded with a status of 4")
