"""Both clients against an in-process vault double (httpx.MockTransport): wiring only.

The protocol decisions are tested in test_flows.py and the real vault in the live tests;
this checks that each client performs the flow's actions and maps transport failures.
"""

import json
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from okap_client import (
    AsyncOkapClient,
    InvalidRequest,
    OkapClient,
    TokenCache,
    TokenRevoked,
    VaultUnreachable,
)
from tests.support.live import free_port

VAULT = "http://vault.test"


class FakeVault:
    """Answers like a vault whose person approves at once."""

    def __init__(self, device_only=False):
        self.device_only = device_only
        self.pushed = {}
        self.calls = []
        self.revoked = set()

    def metadata(self):
        md = {
            "issuer": VAULT,
            "token_endpoint": f"{VAULT}/oauth/token",
            "device_authorization_endpoint": f"{VAULT}/oauth/device_authorization",
            "revocation_endpoint": f"{VAULT}/oauth/revoke",
            "okap_usage_endpoint": f"{VAULT}/okap/usage",
        }
        if not self.device_only:
            md["authorization_endpoint"] = f"{VAULT}/oauth/authorize"
            md["pushed_authorization_request_endpoint"] = f"{VAULT}/oauth/par"
        return md

    def token(self, details):
        granted = [{**d, "base_url": f"{VAULT}/v1/{d['provider']}"} for d in details]
        return {
            "access_token": "okap_fake",
            "token_type": "Bearer",
            "expires_in": 3600,
            "authorization_details": granted,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(200, json=self.metadata())
        if path == "/oauth/par":
            self.pushed = form
            return httpx.Response(
                201, json={"request_uri": "urn:ietf:params:oauth:request_uri:r", "expires_in": 90}
            )
        if path == "/oauth/device_authorization":
            self.pushed = form
            return httpx.Response(
                200,
                json={
                    "device_code": "d",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": f"{VAULT}/device",
                    "verification_uri_complete": f"{VAULT}/device?user_code=WDJB-MJHT",
                    "expires_in": 60,
                    "interval": 0.01,
                },
            )
        if path == "/oauth/token":
            return httpx.Response(
                200, json=self.token(json.loads(self.pushed["authorization_details"]))
            )
        if path == "/okap/usage":
            if "okap_fake" in self.revoked:
                return httpx.Response(
                    401, json={"error": "invalid_token", "error_description": "revoked"}
                )
            return httpx.Response(200, json={"active": True, "usage": {}})
        if path == "/oauth/revoke":
            self.revoked.add(form["token"])
            return httpx.Response(200)
        return httpx.Response(404)


def person_in_browser(fake):
    """Plays the browser: follows the consent URL straight to the loopback redirect."""
    seen = []

    def open_browser(url):
        seen.append(url)
        redirect = fake.pushed["redirect_uri"]
        httpx.get(redirect, params={"code": "c", "state": fake.pushed["state"], "iss": VAULT})
        return True

    return open_browser, seen


def test_browser_flow_end_to_end_through_the_loopback_listener(tmp_path):
    fake = FakeVault()
    opener, seen = person_in_browser(fake)
    with OkapClient(
        VAULT, app_name="T", transport=httpx.MockTransport(fake), open_browser=opener
    ) as okap:
        token = okap.request_access(provider="openai", models=["gpt-4o-mini"])
    assert token.base_url == f"{VAULT}/v1/openai"
    assert urlsplit(seen[0]).path == "/oauth/authorize"
    assert fake.calls[:2] == ["/.well-known/oauth-authorization-server", "/oauth/par"]


def test_device_flow_when_no_browser_flow_is_offered(tmp_path):
    fake = FakeVault(device_only=True)
    shown = []
    with OkapClient(
        VAULT, transport=httpx.MockTransport(fake), on_device_code=shown.append
    ) as okap:
        token = okap.request_access(provider="anthropic")
    assert shown[0].user_code == "WDJB-MJHT"
    assert token.provider == "anthropic"


def test_forcing_a_flow_the_vault_lacks_is_refused():
    fake = FakeVault(device_only=True)
    with (
        OkapClient(VAULT, transport=httpx.MockTransport(fake)) as okap,
        pytest.raises(InvalidRequest),
    ):
        okap.request_access(provider="openai", flow="browser")


def test_default_messages_go_to_stderr_not_stdout(capsys):
    fake = FakeVault(device_only=True)
    with OkapClient(VAULT, transport=httpx.MockTransport(fake)) as okap:
        okap.request_access(provider="openai")
    out, err = capsys.readouterr()
    assert out == ""
    assert f"Open {VAULT}/device?user_code=WDJB-MJHT and enter code WDJB-MJHT" in err


def test_get_access_reuses_the_cache_and_asks_again_after_revocation(tmp_path):
    fake = FakeVault(device_only=True)
    shown = []
    cache = TokenCache(tmp_path / "tokens.json")
    with OkapClient(
        VAULT, transport=httpx.MockTransport(fake), cache=cache, on_device_code=shown.append
    ) as okap:
        first = okap.get_access(provider="openai")
        again = okap.get_access(provider="openai")
        assert again.key == first.key and len(shown) == 1
        first.revoke()
        assert cache.entries() == []
        with pytest.raises(TokenRevoked):
            first.usage()


def test_an_unreachable_vault_is_reported_as_such():
    url = f"http://127.0.0.1:{free_port()}"
    with OkapClient(url) as okap, pytest.raises(VaultUnreachable) as info:
        okap.request_access(provider="openai")
    assert url in info.value.description


def test_a_server_that_is_not_a_vault_is_unreachable_as_a_vault():
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text="<html>hello</html>"))
    with OkapClient(VAULT, transport=transport) as okap, pytest.raises(VaultUnreachable):
        okap.request_access(provider="openai")


def test_async_twin_runs_both_flows(tmp_path):
    async def main():
        fake = FakeVault()
        opener, _ = person_in_browser(fake)
        async with AsyncOkapClient(
            VAULT, transport=httpx.MockTransport(fake), open_browser=opener
        ) as okap:
            browser = await okap.request_access(provider="openai")
        fake2 = FakeVault(device_only=True)
        cache = TokenCache(tmp_path / "t.json")
        async with AsyncOkapClient(
            VAULT, transport=httpx.MockTransport(fake2), on_device_code=lambda c: None, cache=cache
        ) as okap:
            device = await okap.get_access(provider="google")
            again = await okap.get_access(provider="google")
            await okap.revoke(device)
        return browser, device, again

    browser, device, again = anyio.run(main)
    assert browser.provider == "openai"
    assert device.provider == "google" and again.key == device.key


def test_a_vault_without_oauth_metadata_is_asked_through_the_okap_binding():
    def okap_only_vault(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/okap/authorize" and request.method == "POST":
            asked = json.loads(request.content)
            assert asked["okap"] == "1.0"
            details = [
                {**d, "base_url": f"{VAULT}/v1/openai"} for d in asked["authorization_details"]
            ]
            return httpx.Response(
                200,
                json={
                    "okap": "1.0",
                    "status": "granted",
                    "token": "okap_b",
                    "authorization_details": details,
                },
            )
        return httpx.Response(404, json={"detail": "Not Found"})

    with OkapClient(VAULT, transport=httpx.MockTransport(okap_only_vault)) as okap:
        token = okap.request_access(provider="openai")
    assert token.key == "okap_b"
    assert token.base_url == f"{VAULT}/v1/openai"


def test_a_server_that_is_not_a_vault_at_all_says_so():
    transport = httpx.MockTransport(lambda r: httpx.Response(404, text="nope"))
    with (
        OkapClient(VAULT, transport=transport) as okap,
        pytest.raises(VaultUnreachable, match="okap vault"),
    ):
        okap.request_access(provider="openai")
