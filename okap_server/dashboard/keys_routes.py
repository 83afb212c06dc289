"""``/keys``: add, list, make default, test, replace the secret of, and remove provider
keys (moving the apps that depend on one to another key of its provider first)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from okap_server.dashboard import ceilings, keys
from okap_server.dashboard.web import done, form_of, not_found, notice_of
from okap_server.manage import keys as manage_keys
from okap_server.vault.keys import KeyStoreError
from okap_server.web import openapi as oa
from okap_server.web.csrf import require_csrf
from okap_server.web.pages import error_page, render_page
from okap_server.web.sessions import SignedIn, client_ip, current_account, vault_of

router = APIRouter()


def _page(
    request: Request,
    signed_in: SignedIn,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    tested: tuple[str, keys.TestResult] | None = None,
    misfiled: bool = False,
    ceiling_error: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    vault = vault_of(request)
    with vault.session() as session:
        views = keys.list_keys(vault, session, signed_in.account.id)
        key_ceilings = ceilings.key_views(session, signed_in.account.id)
    typed = typed or {}
    return render_page(
        request,
        "dashboard/keys.html",
        status_code=status_code,
        signed_in=signed_in,
        keys=views,
        providers=vault.providers.rows(),
        error=error,
        # Never the secret: only what the person may see again.
        typed_provider=typed.get("provider", ""),
        typed_label=typed.get("label", ""),
        tested=tested,
        misfiled=misfiled,
        key_ceilings=key_ceilings,
        ceiling_error=ceiling_error,
        notice=notice_of(request),
    )


@router.get("/keys", include_in_schema=False)
def keys_page(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    return _page(request, signed_in)


@router.post(
    "/keys",
    **oa.form_post(
        "Store a provider key, encrypted",
        {
            "provider": {"type": "string", "examples": ["openai"]},
            "label": oa.TEXT,
            "secret": {"type": "string", "description": "The provider's API key"},
            "make_default": {"type": "string", "enum": ["1"]},
            "misfiled_ok": {
                "type": "string",
                "enum": ["1"],
                "description": "Store a key that looks like another provider's anyway",
            },
        },
        done="Stored: to /keys",
        pages={422: "The key was refused; nothing was stored"},
    ),
)
async def add_key(request: Request, signed_in: SignedIn = Depends(require_csrf)) -> Response:
    form = await form_of(request)
    vault = vault_of(request)
    try:
        await run_in_threadpool(
            lambda: keys.add_key(
                vault,
                signed_in.account.id,
                provider=form.get("provider", ""),
                label=form.get("label", "") or "default",
                secret=form.get("secret", ""),
                make_default=form.get("make_default") == "1",
                ip=client_ip(request),
                misfiled_ok=form.get("misfiled_ok") == "1",
            )
        )
    except KeyStoreError as exc:
        message = str(exc)
        return _page(
            request,
            signed_in,
            error=message[:1].upper() + message[1:] + ". Nothing was stored.",
            typed=form,
            misfiled=isinstance(exc, keys.LooksMisfiled),
            status_code=422,
        )
    return done("/keys", "key_added")


@router.post(
    "/keys/{key_id}/default",
    **oa.form_post(
        "Make a key its provider's default",
        {},
        done="Changed: to /keys",
        pages={404: "No such key in this account"},
    ),
)
async def make_default(
    request: Request, key_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    vault = vault_of(request)
    changed = await run_in_threadpool(
        keys.set_default, vault, signed_in.account.id, key_id, client_ip(request)
    )
    if changed is None:
        return not_found(request, "key")
    return done("/keys", "key_default")


@router.post(
    "/keys/{key_id}/test",
    **oa.form_post(
        "Check a key against its provider",
        {},
        done="(not used)",
        pages={200: "The keys page, with the result", 404: "No such key in this account"},
    ),
)
async def test(
    request: Request, key_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    result = await keys.check_key(vault_of(request), signed_in.account.id, key_id)
    if result is None:
        return not_found(request, "key")
    return await run_in_threadpool(lambda: _page(request, signed_in, tested=(key_id, result)))


def _key_view(request: Request, signed_in: SignedIn, key_id: str) -> keys.KeyView | None:
    vault = vault_of(request)
    with vault.session() as session:
        found = [k for k in keys.list_keys(vault, session, signed_in.account.id) if k.id == key_id]
    return found[0] if found else None


def _secret_page(
    request: Request,
    signed_in: SignedIn,
    key: keys.KeyView,
    *,
    error: str | None = None,
    misfiled: bool = False,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "dashboard/key_secret.html",
        status_code=status_code,
        signed_in=signed_in,
        key=key,
        error=error,
        misfiled=misfiled,
    )


@router.get("/keys/{key_id}/secret", include_in_schema=False)
def secret_page(
    request: Request, key_id: str, signed_in: SignedIn = Depends(current_account)
) -> Response:
    key = _key_view(request, signed_in, key_id)
    if key is None:
        return not_found(request, "key")
    return _secret_page(request, signed_in, key)


@router.post(
    "/keys/{key_id}/secret",
    **oa.form_post(
        "Replace a key's secret in place (its apps keep working, no new consent)",
        {
            "secret": {"type": "string", "description": "The provider's new API key"},
            "misfiled_ok": {
                "type": "string",
                "enum": ["1"],
                "description": "Store a key that looks like another provider's anyway",
            },
        },
        done="Replaced: to /keys",
        pages={404: "No such key in this account", 422: "The key was refused; nothing changed"},
    ),
)
async def replace_secret(
    request: Request, key_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    form = await form_of(request)
    vault = vault_of(request)
    try:
        replaced = await run_in_threadpool(
            lambda: manage_keys.update_key(
                vault,
                signed_in.account.id,
                key_id,
                secret=form.get("secret", ""),
                ip=client_ip(request),
                via="dashboard",
                misfiled_ok=form.get("misfiled_ok") == "1",
            )
        )
    except KeyStoreError as exc:
        key = _key_view(request, signed_in, key_id)
        if key is None:
            return not_found(request, "key")
        message = str(exc)
        return _secret_page(
            request,
            signed_in,
            key,
            error=message[:1].upper() + message[1:] + ". Nothing was changed.",
            misfiled=isinstance(exc, keys.LooksMisfiled),
            status_code=422,
        )
    if replaced is None:
        return not_found(request, "key")
    return done("/keys", "key_replaced")


@router.get("/keys/{key_id}/remove", include_in_schema=False)
def remove_page(
    request: Request, key_id: str, signed_in: SignedIn = Depends(current_account)
) -> Response:
    key = _key_view(request, signed_in, key_id)
    if key is None:
        return not_found(request, "key")
    others = manage_keys.same_provider_keys(vault_of(request), signed_in.account.id, key_id)
    return render_page(
        request, "dashboard/key_remove.html", signed_in=signed_in, key=key, others=others
    )


@router.post(
    "/keys/{key_id}/remove",
    **oa.form_post(
        "Remove a key, moving the apps that depend on it to another key first",
        {
            "move_to": {
                "type": "string",
                "description": "Another key of the same provider for the apps using this "
                "one; empty: do not move them (their requests fail)",
            }
        },
        done="Removed: to /keys",
        pages={404: "No such key in this account", 422: "move_to is not such a key"},
    ),
)
async def remove(
    request: Request, key_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    """The page warned and offered the move, so an empty ``move_to`` is the person's
    choice to break those apps (``break_grants``)."""
    form = await form_of(request)
    vault = vault_of(request)
    try:
        removed = await run_in_threadpool(
            lambda: manage_keys.remove_key(
                vault,
                signed_in.account.id,
                key_id,
                move_to=form.get("move_to") or None,
                break_grants=True,
                ip=client_ip(request),
                via="dashboard",
            )
        )
    except KeyStoreError as exc:
        return error_page(
            request, "Key not removed", f"{exc}. Nothing was changed.", status_code=422
        )
    if removed is None:
        return not_found(request, "key")
    return done("/keys", "key_moved" if form.get("move_to") else "key_removed")
