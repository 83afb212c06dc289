"""The sign-in form's pre-session token over real HTTP: it binds the form to the
``okap_presession`` cookie but is salted per render, so a cookie the caller chooses never
yields a stable value derived from the vault's key (a fingerprint of the master key across
replicas and restarts). The origin and binding checks are ``test_page_origin.py``."""

from __future__ import annotations

import re

import httpx

from tests.security.conftest import sqlite_only

PLANTED = "chosen-by-the-caller-0123456789"


def _form_for(page_url: str, cookie: str) -> str:
    """The sign-in form's token for a browser holding ``cookie`` (no cookie jar: the header
    is sent as is, as a planted cookie would be)."""
    shown = httpx.get(f"{page_url}/signin", headers={"cookie": f"okap_presession={cookie}"})
    assert f"okap_presession={cookie};" in shown.headers["set-cookie"]  # the nonce is kept
    found = re.search(r'name="csrf_token" value="([^"]+)"', shown.text)
    assert found
    return found.group(1)


def _sign_in(page_url: str, cookie: str, creds: dict[str, str], token: str) -> httpx.Response:
    return httpx.post(
        f"{page_url}/signin",
        data=creds | {"csrf_token": token},
        headers={"cookie": f"okap_presession={cookie}"},
    )


@sqlite_only
def test_the_same_cookie_gives_a_different_token_each_time_and_both_work(
    page_url: str, owner: tuple[str, str]
) -> None:
    creds = {"username": owner[0], "password": owner[1]}
    first, second = _form_for(page_url, PLANTED), _form_for(page_url, PLANTED)
    assert first != second
    for token in (first, second):
        signed_in = _sign_in(page_url, PLANTED, creds, token)
        assert signed_in.status_code == 303, signed_in.text
        assert "okap_session=" in signed_in.headers["set-cookie"]


@sqlite_only
def test_a_token_for_another_cookie_or_a_tampered_one_is_refused(
    page_url: str, owner: tuple[str, str]
) -> None:
    creds = {"username": owner[0], "password": owner[1]}
    token = _form_for(page_url, PLANTED)
    salt, mac = token.split(".")
    assert _sign_in(page_url, PLANTED, creds, token).status_code == 303  # the control
    other = _sign_in(page_url, "another-cookie-0123456789", creds, token)
    assert other.status_code == 403  # bound to PLANTED, not to this cookie
    flipped = mac[:-1] + ("1" if mac.endswith("0") else "0")
    for value in (mac, f"x{salt}.{mac}", f"{salt}.{flipped}", f".{mac}", salt):
        answer = _sign_in(page_url, PLANTED, creds, value)
        assert answer.status_code == 403, value
        assert "okap_session=" not in answer.headers.get("set-cookie", "")
