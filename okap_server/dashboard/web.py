"""Helpers shared by the dashboard's route modules: form reading, notices, 404s."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from okap_server.web.pages import NO_STORE, error_page

# Notices are chosen by code, never by text from the URL, so a link cannot make the
# dashboard say something it did not do.
NOTICES: dict[str, str] = {
    "revoked": "Access revoked. The app's next request will be refused.",
    "limits": "Limits saved. They apply from the app's next request.",
    "key_added": "Key stored, encrypted. Only its hint is shown from now on.",
    "key_removed": "Key removed.",
    "key_moved": "Key removed. The apps that used it now use the key you chose.",
    "key_replaced": "Key replaced in place. The apps that use it keep working and send the new key "
    "from their next request.",
    "key_default": "Default key changed.",
    "approved": "Approved. The app can now use what it asked for.",
    "reused": "Approved by reusing the app's existing access: same limits and spend so far; "
    "the token it had before stops working.",
    "denied": "Denied. The app was told no; nothing was shared.",
    "settings": "Settings saved.",
    "api_token_revoked": "Token revoked. Scripts using it are refused from their next call.",
    "ceilings": "Spend ceiling saved. It applies from the next request of every app it covers.",
    "password": "Password changed. Other browsers signed in to this account were signed out.",
    "account_added": "Account created. Give the person their username and password.",
    "account_disabled": "Account disabled: signed out everywhere, and its apps were revoked.",
    "account_enabled": "Account enabled. It can sign in again.",
    "account_password": "Password reset. The account was signed out everywhere.",
    "webhook_test": "Test event queued. It appears in the endpoint's delivery log.",
    "webhook_enabled": "Endpoint enabled. New events are sent to it again.",
    "webhook_removed": "Endpoint removed.",
}


async def form_of(request: Request) -> dict[str, str]:
    """The submitted form as single string values (the first of each name)."""
    form = await request.form()
    values: dict[str, str] = {}
    for name, value in form.multi_items():
        if isinstance(value, str) and name not in values:
            values[name] = value
    return values


async def form_lists_of(request: Request) -> dict[str, list[str]]:
    """The submitted form with every value of each name (checkboxes, repeated fields)."""
    form = await request.form()
    values: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(name, []).append(value)
    return values


def notice_of(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def done(path: str, notice: str) -> Response:
    """Post/redirect/get: back to a page, with a notice code."""
    return RedirectResponse(f"{path}?notice={notice}", status_code=303, headers=NO_STORE)


def not_found(request: Request, what: str = "page") -> Response:
    """The same answer whether the thing does not exist or belongs to another account."""
    return error_page(
        request, "Not found", f"There is no such {what} in your vault.", status_code=404
    )
