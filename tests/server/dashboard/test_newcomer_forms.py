"""Pages a newcomer trips over, over real HTTP: an unknown URL, the favicon, Admin's Disable,
the device code's placeholder, a key pasted under the wrong provider."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from okap_server.authorization.device import normalize_user_code
from okap_server.context import Vault
from tests.server.dashboard.conftest import Visitor

ANTHROPIC_KEY = "sk-ant-api03-misfiled0123456789"


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_an_unknown_page_is_the_styled_404_and_api_paths_stay_json(page_url: str) -> None:
    html = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = httpx.get(f"{page_url}/no-such-page", headers=html)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in page.text and 'href="/static/okap.css"' in page.text
    assert "detail" not in page.text
    for path, accept in (("/no-such-page", "application/json"), ("/v1/nothing", html["accept"])):
        api = httpx.get(f"{page_url}{path}", headers={"accept": accept})
        assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    posted = httpx.post(f"{page_url}/no-such-page", headers=html)
    assert posted.status_code in (404, 405) and posted.headers["content-type"].startswith(
        "application/json"
    )


def test_the_vault_has_a_favicon(page_url: str) -> None:
    icon = httpx.get(f"{page_url}/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in icon.text
    signin = httpx.get(f"{page_url}/signin").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in signin


def test_admin_shows_a_disable_control_on_every_row(people: Callable[..., Visitor]) -> None:
    admin = people("root", admin=True)
    alone = admin.page("/admin").text
    assert re.search(r'<button type="button" class="secondary" disabled[^>]*>Disable', alone)
    assert "You cannot disable your own account: add another account below" in alone
    people("bob")
    both = admin.page("/admin").text
    assert re.search(r'action="/admin/accounts/[^/"]+/disable"', both)
    assert "add another account below" not in both


def test_the_device_placeholder_cannot_be_a_code(people: Callable[..., Visitor]) -> None:
    alice = people("alice")
    page = alice.page("/device").text
    placeholder = re.search(r'placeholder="([^"]*)"', page)
    assert placeholder is not None
    assert normalize_user_code(placeholder.group(1)) is None
    assert "Eight letters, as your device shows them" in page


def test_a_key_under_the_wrong_provider_is_questioned(
    vault: Vault, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    form = {"provider": "openai", "label": "oops", "secret": ANTHROPIC_KEY}
    refused = alice.post("/keys", form)
    assert refused.status_code == 422
    assert (
        "This looks like an Anthropic key (it starts with sk-ant-), not an OpenAI key."
        in refused.text
    )
    assert 'name="misfiled_ok"' in refused.text and ANTHROPIC_KEY not in refused.text
    assert "sk-ant" not in alice.page("/keys").text.split("Your keys")[1].split("Add a key")[0]
    stored = alice.post("/keys", {**form, "misfiled_ok": "1"})
    assert stored.status_code == 303
    assert "oops" in alice.page("/keys").text
    right = alice.post("/keys", {"provider": "anthropic", "label": "a", "secret": ANTHROPIC_KEY})
    assert right.status_code == 303  # its own provider: no question
