"""What one user's key shows is that user's own: another key sees none of it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import CODER_YAML, Shots, api_session, open_page, sign_in
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.e2e


def test_another_user_s_key_sees_none_of_the_sessions(page: Page, apikey_server: ServerProcess,
                                                      api_keys: dict[str, str], shots: Shots):
    session_id = api_session(apikey_server, CODER_YAML, name="alice's secret plans", key=api_keys["alice"])
    open_page(page, apikey_server)
    sign_in(page, api_keys["bob"])
    expect(page.get_by_role("list", name="Your sessions")).not_to_contain_text("alice's secret plans")
    shots(page, "bob-s-sessions")
    open_page(page, apikey_server, f"#sessions/{session_id}")
    expect(page.get_by_text("This session does not exist, or it is not yours.")).to_be_visible()
    expect(page.get_by_role("heading", name="alice's secret plans")).to_have_count(0)
    shots(page, "alice-s-session-is-not-found")
