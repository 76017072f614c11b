"""The page is served by the service itself, from the package, with a policy that allows only this origin."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.pages import open_page
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.e2e


def test_the_page_is_served_at_the_root_with_a_self_only_content_security_policy(apikey_server: ServerProcess):
    response = httpx.get(f"{apikey_server.base_url}/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                      "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "unsafe" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_page_s_files_are_served_by_name_and_nothing_else_is(local_server: ServerProcess):
    script = httpx.get(f"{local_server.base_url}/static/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    unchanged = httpx.get(f"{local_server.base_url}/static/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert unchanged.status_code == 304
    for name in ("missing.js", "..%2Fui.py", "..%2F..%2Fconfig.py"):
        missing = httpx.get(f"{local_server.base_url}/static/{name}")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_the_page_loads_nothing_but_its_own_files_and_the_api(page: Page, local_server: ServerProcess):
    requested: list[Request] = []
    page.on("request", lambda request: requested.append(request))
    open_page(page, local_server)
    expect(page.get_by_text("Local mode: no key needed")).to_be_visible()
    assert requested
    assert {request.url.split("/")[2] for request in requested} == {local_server.base_url.split("/")[2]}
