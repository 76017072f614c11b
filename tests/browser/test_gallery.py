"""Publishing a session, browsing and searching the gallery by tag, and starting from saved or published workflows."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import CODER_YAML, Shots, api_session, go_to, open_page, sign_in
from tests.support.server_api import API
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.e2e


def unique_tag() -> str:
    return f"tag-{uuid.uuid4().hex[:8]}"


def test_a_published_session_is_found_in_the_gallery_by_its_tag(page: Page, apikey_server: ServerProcess,
                                                                api_keys: dict[str, str], shots: Shots):
    tag = unique_tag()
    session_id = api_session(apikey_server, CODER_YAML, name="to publish", key=api_keys["alice"])
    ran = httpx.post(f"{apikey_server.base_url}{API}/sessions/{session_id}/messages", params={"wait": "true"},
                     json={"content": "What is 12*(3+4)?"}, headers={"Authorization": f"Bearer {api_keys['alice']}"},
                     timeout=60)
    assert ran.status_code == 200, ran.text
    open_page(page, apikey_server, f"#sessions/{session_id}")
    sign_in(page, api_keys["alice"])
    page.get_by_label("Tags, separated by commas").fill(f"{tag}, demo")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published as gal_")).to_contain_text(tag)
    shots(page, "published")
    go_to(page, "Gallery")
    page.get_by_label("Tag", exact=True).fill(tag)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status").filter(has_text="tagged")).to_have_text(f"1 item tagged “{tag}”.")
    card = page.get_by_role("list", name="Published sessions").get_by_role("listitem").filter(
        has=page.get_by_role("heading"))
    expect(card).to_have_count(1)
    expect(card.get_by_role("heading")).to_have_text("to publish")
    expect(card.get_by_role("link", name=f"#{tag}")).to_be_visible()
    card.get_by_text("Conversation (2 messages)").click()
    expect(card).to_contain_text("The result is: 84")
    shots(page, "found-by-tag")


def test_a_tag_with_nothing_published_finds_nothing(page: Page, local_server: ServerProcess, shots: Shots):
    tag = unique_tag()
    open_page(page, local_server, f"#gallery/{tag}")
    expect(page.get_by_role("status").filter(has_text="No items")).to_have_text(f"No items tagged “{tag}”.")
    expect(page.get_by_role("list", name="Published sessions").get_by_role("listitem")).to_have_count(0)
    shots(page, "nothing-found")


def test_a_published_workflow_starts_a_new_session(page: Page, local_server: ServerProcess, shots: Shots):
    tag = unique_tag()
    session_id = api_session(local_server, CODER_YAML, name="shared coder")
    published = httpx.post(f"{local_server.base_url}{API}/sessions/{session_id}/publish", json={"tags": [tag]})
    assert published.status_code == 201, published.text
    open_page(page, local_server, f"#gallery/{tag}")
    page.get_by_role("button", name="Use this workflow").click()
    expect(page.get_by_label("Workflow spec")).to_have_value(re.compile(r'"name": "user_proxy"'))
    expect(page.get_by_label("JSON", exact=True)).to_be_checked()
    page.get_by_label("Session name").fill("from the gallery")
    page.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", name="from the gallery")).to_be_visible()
    shots(page, "started-from-the-gallery")


def test_a_saved_workflow_can_be_picked_for_a_new_session(page: Page, local_server: ServerProcess, shots: Shots):
    created = httpx.post(f"{local_server.base_url}{API}/workflows", content=CODER_YAML,
                         headers={"Content-Type": "application/yaml"})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    open_page(page, local_server)
    go_to(page, "New session")
    page.get_by_label("Start from").select_option(f"workflow:{workflow_id}")
    page.get_by_label("Session name").fill("saved workflow")
    page.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", name="saved workflow")).to_be_visible()
    expect(page.get_by_text(f"workflow {workflow_id}")).to_be_visible()
    shots(page, "picked-a-saved-workflow")
