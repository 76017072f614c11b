"""The page for people: usable from the keyboard, readable at a phone's width, server text shown as text."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import CODER_YAML, Shots, api_session, open_page, run_status, transcript
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 740}


def test_a_message_can_be_sent_with_the_keyboard_alone(page: Page, local_server: ServerProcess, shots: Shots):
    api_session(local_server, CODER_YAML, name="keyboard")
    open_page(page, local_server)
    page.get_by_role("link", name="keyboard").first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="keyboard", exact=True)).to_be_focused()
    page.get_by_role("textbox", name="Message").focus()
    page.keyboard.type("What is 5*5?")
    page.keyboard.press("Control+Enter")
    expect(run_status(page)).to_contain_text("completed")
    expect(transcript(page)).to_contain_text("25")
    shots(page, "sent-from-the-keyboard")


def test_the_live_transcript_is_announced_to_screen_readers(page: Page, local_server: ServerProcess):
    session_id = api_session(local_server, CODER_YAML, name="announced")
    open_page(page, local_server, f"#sessions/{session_id}")
    expect(transcript(page)).to_have_attribute("aria-live", "polite")
    expect(run_status(page)).to_have_attribute("role", "status")


def test_the_page_fits_a_phone_s_width(page: Page, local_server: ServerProcess, shots: Shots):
    page.set_viewport_size(PHONE)
    session_id = api_session(local_server, CODER_YAML, name="on a phone")
    open_page(page, local_server, f"#sessions/{session_id}")
    page.get_by_role("textbox", name="Message").fill("List the first 10 primes")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(run_status(page)).to_contain_text("completed")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shots(page, "phone-width")


def test_server_text_is_shown_as_text_never_as_html(page: Page, local_server: ServerProcess, shots: Shots):
    markup = '<img src="x" onerror="window.injected = true">'
    session_id = api_session(local_server, CODER_YAML, name=markup)
    open_page(page, local_server, f"#sessions/{session_id}")
    expect(page.get_by_role("heading", name=markup)).to_be_visible()
    page.get_by_role("textbox", name="Message").fill(f"What is 1+1? {markup}")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(run_status(page)).to_contain_text("completed")
    expect(page.get_by_role("list", name="History")).to_contain_text(markup)
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.injected") is None
    shots(page, "markup-as-text")
