"""What a person does on the page, as functions of a Playwright page; screenshots of each step; specs to type.

Locators go by role and accessible name (what a screen reader announces), so the tests also check that every
control the person uses has a real label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.support.server_api import API
from tests.support.servers import ServerProcess

# The scripted stand-in, priced so that a run has a cost to show.
CODER_YAML = """\
name: coder
type: autonomous
models:
  default:
    provider: scripted
    model: scripted
    price: {prompt_per_1k: 0.5, completion_per_1k: 1.5}
agents:
  - name: coder
    kind: assistant
    system_message: You are a python coder.
  - name: user_proxy
    kind: userproxy
    code_execution: {timeout_s: 20}
sender: user_proxy
receiver: coder
"""


class Shots:
    """Numbered full-page screenshots of one test's steps, saved in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    def __call__(self, page: Page, step: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{len(self.taken) + 1:02d}-{step}.png"
        page.screenshot(path=path, full_page=True)
        self.taken.append(path)
        return path


def open_page(page: Page, server: ServerProcess, fragment: str = "") -> None:
    page.goto(f"{server.base_url}/{fragment}")


def sign_in(page: Page, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in with an API key")).to_be_visible()


def go_to(page: Page, section: str) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=section, exact=True).click()


def write_spec(page: Page, text: str, *, name: str, format: str = "YAML") -> None:
    """Fill the New session form: a name, the spec's text and its format."""
    go_to(page, "New session")
    page.get_by_label("Session name").fill(name)
    page.get_by_label("Workflow spec").fill(text)
    page.get_by_label(format, exact=True).check()


def create_session(page: Page, text: str, *, name: str, format: str = "YAML") -> str:
    """Create a session from a spec typed into the editor; returns its id (from the page's address)."""
    write_spec(page, text, name=name, format=format)
    page.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    return page.url.rsplit("/", 1)[-1]


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def transcript(page: Page) -> Locator:
    """The live transcript (an aria-live list)."""
    return page.get_by_role("list", name="Live transcript")


def run_status(page: Page) -> Locator:
    return page.locator("#run-status")


def api_session(server: ServerProcess, spec: dict[str, Any] | str, *, name: str, key: str | None = None) -> str:
    """A session made over the API (for tests about something else): its id. A string spec is sent as YAML."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        if isinstance(spec, str):
            created = client.post(f"{API}/workflows", content=spec, headers={"Content-Type": "application/yaml"})
        else:
            created = client.post(f"{API}/workflows", json=spec)
        assert created.status_code == 201, created.text
        session = client.post(f"{API}/sessions", json={"name": name, "workflow_id": created.json()["id"]})
        assert session.status_code == 201, session.text
        return str(session.json()["id"])
