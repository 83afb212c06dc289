"""The consent pages: ``GET /consent`` (waiting requests), ``GET/POST /consent/{id}``.

Thin adapter: who may decide is ``authorization.requests`` (``check_may_decide`` to show
the page, which claims nothing; ``claim`` on every POST); the decision itself (keys
attached, then approve, deny or reuse) is ``manage.decisions``, shared with the dashboard's
pending list; narrowing is ``authorization.narrowing``; the code flow's redirect is built
by ``authorization.authorize.finish_url``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from okap_server.authorization.authorize import finish_url
from okap_server.authorization.codes import issue_code
from okap_server.authorization.defaults import default_limits_for
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.narrowing import NarrowingError, narrow
from okap_server.authorization.requests import (
    DecisionError,
    NotYourRequest,
    RequestGone,
    check_may_decide,
    claim,
    pending_for,
    tidy,
)
from okap_server.authorization.reuse import ReuseGone, live_grant_like
from okap_server.context import Vault
from okap_server.grants.capabilities import LIMIT_NAMES
from okap_server.manage.decisions import (
    KeyChoice,
    NoKey,
    approve_request,
    deny_request,
    reuse_grant,
)
from okap_server.vault.keys import KeyStoreError
from okap_server.web import openapi as oa
from okap_server.web.consent_form import ConsentChoices, entry_views, parse_choices, request_view
from okap_server.web.consent_prices import unpriced_context
from okap_server.web.consent_summary import existing_view, summarise
from okap_server.web.csrf import CSRF_FIELD, check_csrf
from okap_server.web.pages import NO_STORE, error_page, render_page
from okap_server.web.sessions import SignedIn, client_ip, current_account, vault_of

router = APIRouter()

GONE = {
    "approved": "This request was already approved.",
    "denied": "This request was already denied.",
    "expired": "This request has expired. Ask the app to try again.",
}


@router.get("/consent", include_in_schema=False)
def consent_list(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    vault = vault_of(request)
    with vault.session() as session:
        tidy(session)
        waiting = pending_for(session, signed_in.account.id)
    return render_page(request, "consent_list.html", signed_in=signed_in, waiting=waiting)


def _load(
    request: Request, session: Session, request_id: str, signed_in: SignedIn, *, claiming: bool
) -> AuthorizationRequest | Response:
    """The request if this account may decide it now, otherwise the page to show instead.
    A POST (``claiming``) binds the request to this account first; a GET only looks."""
    row = session.get(AuthorizationRequest, request_id[:40])
    if row is None:
        return error_page(request, "No such request", "This link is not valid.", status_code=404)
    try:
        if claiming:
            claim(session, row, signed_in.account.id)
        else:
            check_may_decide(row, signed_in.account.id)
    except RequestGone as exc:
        return error_page(request, "Nothing to decide", GONE[exc.status], status_code=410)
    except NotYourRequest as exc:
        return error_page(request, "Not your request", str(exc), status_code=403)
    return row


def _delegation_choice(form: dict[str, list[str]]) -> bool | None:
    """The page's "may hand narrower tokens on" checkbox: None when the form has none (a
    client posting without it keeps the request's own choice)."""
    if "delegation_choice" not in form:
        return None
    return (form.get("allow_delegation") or [""])[0] == "yes"


def _page(
    request: Request,
    vault: Vault,
    session: Session,
    row: AuthorizationRequest,
    signed_in: SignedIn,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    keys = vault.keys.list(session, signed_in.account.id)
    defaults = default_limits_for(session, signed_in.account.id, vault.settings)
    entries = entry_views(
        row.requested_details,
        vault.providers,
        keys,
        defaults,
        expiry_asked=row.expiry_asked,
    )
    existing = live_grant_like(session, signed_in.account.id, row)
    return render_page(
        request,
        "consent.html",
        status_code=status_code,
        existing=existing_view(existing, vault.providers) if existing else None,
        signed_in=signed_in,
        req=row,
        app=request_view(row),
        entries=entries,
        summary=summarise(entries),
        default_grant_days=vault.settings.default_grant_days,
        error=error,
        **unpriced_context(vault, row.requested_details, defaults),
    )


@router.get("/consent/{request_id}", include_in_schema=False)
def consent_page(
    request: Request, request_id: str, signed_in: SignedIn = Depends(current_account)
) -> Response:
    vault = vault_of(request)
    with vault.session() as session:
        row = _load(request, session, request_id, signed_in, claiming=False)
        if isinstance(row, Response):
            return row
        return _page(request, vault, session, row, signed_in)


def _key_choices(choices: ConsentChoices) -> dict[str, KeyChoice]:
    """The key the form picked per provider: a stored one, or one pasted in its field."""
    return {
        provider: KeyChoice(narrowing.key_id or None, choices.new_keys.get(provider))
        for provider, narrowing in choices.narrowing.items()
    }


def _no_key_message(exc: NoKey) -> str:
    if exc.chosen:
        return f"{exc.provider}: choose one of your {exc.provider} keys"
    return (
        f"You have no {exc.provider} key yet. Paste one in the field for {exc.provider}, "
        "or add it under Keys, then approve."
    )


def _decided(
    request: Request, vault: Vault, session: Session, row: AuthorizationRequest, approved: bool
) -> Response:
    """Where the person goes next: back to the app (code flow) or a 'done' page."""
    issuer = vault.settings.effective_public_url
    if row.flow == "code" and row.redirect_uri:
        if approved:
            code = issue_code(session, row, vault.settings.code_ttl_seconds)
            session.commit()
            location = finish_url(row.redirect_uri, issuer, row.state, code=code)
        else:
            location = finish_url(
                row.redirect_uri,
                issuer,
                row.state,
                error="access_denied",
                error_description="The person denied the request.",
            )
        return RedirectResponse(location, status_code=303, headers=NO_STORE)
    return render_page(
        request, "consent_done.html", approved=approved, client_name=row.client_name, flow=row.flow
    )


def _submit(
    request: Request, request_id: str, signed_in: SignedIn, form: dict[str, list[str]]
) -> Response:
    vault = vault_of(request)
    account_id = signed_in.account.id
    with vault.session() as session:
        row = _load(request, session, request_id, signed_in, claiming=True)
        if isinstance(row, Response):
            return row
        decision = (form.get("decision") or [""])[0]
        ip = client_ip(request)
        try:
            if decision == "deny":
                deny_request(vault, session, row, account_id, ip=ip)
                return _decided(request, vault, session, row, approved=False)
            if decision == "reuse":
                grant_id = (form.get("reuse_grant_id") or [""])[0]
                choice = _delegation_choice(form)
                reuse_grant(
                    vault, session, row, account_id, grant_id, ip=ip, delegation_allowed=choice
                )
                return _decided(request, vault, session, row, approved=True)
            if decision != "approve":
                raise NarrowingError("Choose Approve or Deny.")
            asked = row.requested_details
            choices = parse_choices(asked, form)
            defaults = default_limits_for(session, account_id, vault.settings)
            approve_request(
                vault,
                session,
                row,
                account_id,
                narrow(asked, choices.narrowing, defaults),
                keys=_key_choices(choices),
                ip=ip,
                delegation_allowed=_delegation_choice(form),
            )
        except NoKey as exc:
            session.rollback()
            return _page(
                request, vault, session, row, signed_in, error=_no_key_message(exc), status_code=422
            )
        except (NarrowingError, KeyStoreError, ReuseGone) as exc:
            session.rollback()
            return _page(request, vault, session, row, signed_in, error=str(exc), status_code=422)
        except DecisionError as exc:
            return error_page(request, "Nothing to decide", str(exc), status_code=409)
        return _decided(request, vault, session, row, approved=True)


# Entry i of the request is narrowed by fields prefixed "d{i}."; documented for the first.
CONSENT_FIELDS: dict[str, oa.Schema] = {
    "decision": {"type": "string", "enum": ["approve", "deny", "reuse"]},
    "reuse_grant_id": {
        "type": "string",
        "description": "With decision=reuse: the app's live grant the page offered to reuse",
    },
    "d0.include": {"type": "string", "enum": ["1"]},
    "d0.models": oa.TEXT,
    "d0.models_text": {"type": "string", "description": "Comma-separated model names"},
    "d0.capabilities": oa.TEXT,
    **{f"d0.limit.{name}": oa.TEXT for name in LIMIT_NAMES},
    "d0.expires": {"type": "string", "description": "YYYY-MM-DDTHH:MM, UTC"},
    "d0.key_id": oa.TEXT,
    "d0.new_key": {"type": "string", "description": "A provider key to store with the grant"},
    "d0.new_key_label": oa.TEXT,
}


@router.post(
    "/consent/{request_id}",
    **oa.form_post(
        "Approve (optionally narrowed) or deny an app's request",
        CONSENT_FIELDS,
        done="Decided, code flow: back to the app's redirect_uri with code or error",
        pages={
            200: "Decided (device or OKAP flow): the app is told on its next poll",
            403: "Wrong CSRF token, another account's request, or a device code not entered",
            404: "No such request",
            409: "Someone decided the request meanwhile",
            410: "Already decided or expired",
            422: "The narrowing was refused; the form again, with the reason",
        },
    ),
)
async def consent_submit(
    request: Request, request_id: str, signed_in: SignedIn = Depends(current_account)
) -> Response:
    raw = await request.form()
    form: dict[str, list[str]] = {}
    for key, value in raw.multi_items():
        if isinstance(value, str):
            form.setdefault(key, []).append(value)
    check_csrf(signed_in, (form.get(CSRF_FIELD) or [""])[0])
    return await run_in_threadpool(_submit, request, request_id, signed_in, form)
