"""Signing in with an API key (remembered in the browser), signing out, and local mode, which needs no key."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import Shots, api_session, open_page, sign_in
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.e2e


def test_a_server_in_apikey_mode_asks_for_a_key(page: Page, apikey_server: ServerProcess, shots: Shots):
    open_page(page, apikey_server)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("API key")).to_be_focused()
    expect(page.get_by_role("navigation", name="Sections")).to_be_hidden()
    shots(page, "asks-for-a-key")


def test_signing_in_shows_the_user_s_sessions_and_the_key_is_remembered(
        page: Page, apikey_server: ServerProcess, api_keys: dict[str, str], shots: Shots):
    api_session(apikey_server, {"name": "w", "type": "autonomous", "agents": [{"name": "a"}, {"name": "b"}],
                                "sender": "a", "receiver": "b"}, name="alice's notes", key=api_keys["alice"])
    open_page(page, apikey_server)
    page.get_by_label("API key").fill(api_keys["alice"])
    shots(page, "key-typed")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in with an API key")).to_be_visible()
    expect(page.get_by_role("list", name="Your sessions")).to_contain_text("alice's notes")
    shots(page, "signed-in")
    page.reload()
    expect(page.get_by_text("Signed in with an API key")).to_be_visible()
    expect(page.get_by_role("list", name="Your sessions")).to_contain_text("alice's notes")


def test_a_refused_key_is_reported_and_not_remembered(page: Page, apikey_server: ServerProcess, shots: Shots):
    open_page(page, apikey_server)
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="That key was refused")).to_contain_text("invalid API key")
    shots(page, "key-refused")
    assert page.evaluate("localStorage.getItem('autobots.apiKey')") is None


def test_signing_out_forgets_the_key(page: Page, apikey_server: ServerProcess, api_keys: dict[str, str],
                                     shots: Shots):
    open_page(page, apikey_server)
    sign_in(page, api_keys["bob"])
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shots(page, "signed-out")
    assert page.evaluate("localStorage.getItem('autobots.apiKey')") is None
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_local_mode_needs_no_key(page: Page, local_server: ServerProcess, shots: Shots):
    open_page(page, local_server)
    expect(page.get_by_text("Local mode: no key needed")).to_be_visible()
    expect(page.get_by_role("heading", name="Sessions", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in")).to_be_hidden()
    shots(page, "local-mode")
