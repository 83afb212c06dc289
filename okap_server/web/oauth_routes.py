"""OAuth 2.0 front door: thin FastAPI adapters over ``okap_server.authorization``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from okap_server.authorization import codes, device, par
from okap_server.authorization.authorize import (
    RedirectableError,
    check_authorize,
    finish_url,
    redirectable,
)
from okap_server.authorization.errors import (
    InvalidRequest,
    OAuthError,
    UnsupportedGrantType,
)
from okap_server.authorization.grants import token_response
from okap_server.authorization.introspection import introspect
from okap_server.authorization.metadata import server_metadata
from okap_server.authorization.okap_binding import consent_url
from okap_server.authorization.requests import create_request
from okap_server.authorization.revocation import revoke_token
from okap_server.authorization.token_exchange import (
    ACCESS_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT_TYPE,
    exchange,
    exchange_response,
)
from okap_server.web import openapi as oa
from okap_server.web import openapi_protocol as schemas
from okap_server.web.announce import announce
from okap_server.web.pages import NO_STORE, render_page
from okap_server.web.rate_limit import admit
from okap_server.web.sessions import client_ip, vault_of

router = APIRouter(tags=[oa.PROTOCOL_TAG])

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MAX_FORM_FIELD = 20_000


async def form_params(request: Request) -> dict[str, str]:
    """Single-valued form parameters; a repeated parameter is invalid (RFC 6749 §3.1)."""
    try:
        form = await request.form()
    except HTTPException as exc:  # a malformed multipart body: Starlette's 400, in RFC shape
        raise InvalidRequest(f"body: {str(exc.detail)[:80]}") from None
    params: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidRequest(f"{key}: must be a text parameter")
        if key in params:
            raise InvalidRequest(f"{key}: repeated parameter")
        if len(value) > MAX_FORM_FIELD:
            raise InvalidRequest(f"{key}: too long")
        params[key] = value
    return params


def _json(body: object, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Authorization server metadata (RFC 8414)",
    responses={200: oa.json_response("The metadata document", schemas.METADATA)},
)
def metadata(request: Request) -> JSONResponse:
    vault = vault_of(request)
    return JSONResponse(server_metadata(vault.settings, vault.providers))


@router.post(
    "/oauth/par",
    summary="Pushed authorization request (RFC 9126)",
    status_code=201,
    responses={
        201: oa.json_response(
            "The request_uri to pass to /oauth/authorize",
            {
                "type": "object",
                "required": ["request_uri", "expires_in"],
                "properties": {
                    "request_uri": {"type": "string", "pattern": "^urn:ietf:params:oauth:"},
                    "expires_in": {"type": "integer"},
                },
            },
        ),
        **oa.oauth_errors(400, 401),
        **oa.too_many_requests(),
    },
    openapi_extra=oa.form_body(schemas.AUTHORIZE_FIELDS, ["client_id"]),
)
async def pushed_authorization(request: Request) -> JSONResponse:
    caller = admit(request, "code")
    params = await form_params(request)
    vault = vault_of(request)

    def run() -> tuple[int, dict[str, object]]:
        with vault.session() as session:
            return par.push(session, params, vault.providers, vault.settings, caller=caller)

    status, body = await run_in_threadpool(run)
    return _json(body, status)


@router.get(
    "/oauth/authorize",
    summary="Authorization endpoint (RFC 6749 §4.1.1, PKCE required)",
    status_code=303,
    response_class=RedirectResponse,
    response_description="To the consent page, or back to redirect_uri with an error",
    responses={
        400: oa.html("The request is not valid, and its redirect_uri is not one to send errors to"),
        429: {
            **oa.html("Too many requests from this address or app"),
            "headers": oa.RETRY_AFTER,
        },
        503: oa.json_response("The database cannot be reached", oa.OAUTH_ERROR),
    },
    openapi_extra={
        "parameters": [
            {"name": name, "in": "query", "required": name == "client_id", "schema": schema}
            for name, schema in {**schemas.AUTHORIZE_FIELDS, "request_uri": oa.TEXT}.items()
        ]
    },
)
def authorize(request: Request) -> Response:
    """Validate, store the request, and send the person to its consent page.

    An error goes back to the app only at a redirect_uri errors may be sent to
    (``clients.may_receive_errors``); every other error is shown on a page (RFC 9700 §4.11.2).
    """
    vault = vault_of(request)
    params = {k: v for k, v in request.query_params.items()}
    issuer = vault.settings.effective_public_url
    try:
        with vault.session() as session:
            if "request_uri" in params:
                row = par.consume(
                    session, params.get("client_id"), params["request_uri"], vault.settings
                )
            else:
                checked = check_authorize(params, vault.providers, vault.settings)
                try:
                    row = create_request(
                        session,
                        vault.settings,
                        flow="code",
                        client=checked.client,
                        details=checked.details,
                        caller=admit(request, "code"),
                        state=checked.state,
                        code_challenge=checked.code_challenge,
                        code_challenge_method="S256",
                        delegation_allowed=checked.delegation_allowed,
                    )
                except OAuthError as exc:  # too many requests: the app may hear it too
                    raise redirectable(exc, checked.client.redirect_uri, checked.state) from None
                session.commit()
    except RedirectableError as exc:
        body = exc.error.body()
        location = finish_url(exc.redirect_uri, issuer, exc.state, **body)
        return RedirectResponse(location, status_code=303, headers=NO_STORE)
    except OAuthError as exc:
        busy = exc.status_code in (429, 503)
        return render_page(
            request,
            "error.html",
            status_code=exc.status_code if busy else 400,
            headers=exc.headers,
            title="Too many requests" if busy else "This app's request is not valid",
            message=f"{exc.description} ({exc.error})" if exc.description else exc.error,
        )
    url = consent_url(vault.settings, row.id)
    announce(vault.settings, url, client_name=row.client_name)
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


@router.post(
    "/oauth/token",
    summary="Token endpoint: authorization code (PKCE), device code or token exchange",
    responses={
        200: oa.json_response("The okap token", schemas.TOKEN),
        **oa.oauth_errors(400, 401),
        **oa.too_many_requests(),
    },
    openapi_extra=oa.form_body(
        {
            "grant_type": {
                "type": "string",
                "enum": ["authorization_code", DEVICE_GRANT, TOKEN_EXCHANGE_GRANT_TYPE],
            },
            "code": oa.TEXT,
            "redirect_uri": oa.URL,
            "client_id": schemas.CLIENT_ID,
            "code_verifier": {"type": "string", "minLength": 43, "maxLength": 128},
            "device_code": oa.TEXT,
            "subject_token": oa.TEXT,
            "subject_token_type": {"type": "string", "enum": [ACCESS_TOKEN_TYPE]},
            "authorization_details": oa.DETAILS_JSON_FIELD,
            "client_name": oa.TEXT,
        },
        ["grant_type"],
    ),
)
async def token(request: Request) -> JSONResponse:
    params = await form_params(request)
    vault = vault_of(request)
    grant_type = params.get("grant_type")
    if grant_type == TOKEN_EXCHANGE_GRANT_TYPE:
        # It creates grants without a person, so it is a front door like the others: the
        # same per-source rate limit (``rate_limit.py``); the grant type is in the body.
        admit(request, "exchange")

    def run() -> JSONResponse:
        with vault.session() as session:
            if grant_type == "authorization_code":
                if not params.get("code"):
                    raise InvalidRequest("code is required")
                grant, value = codes.redeem(
                    session,
                    code=params["code"],
                    client_id=params.get("client_id") or "",
                    redirect_uri=params.get("redirect_uri"),
                    verifier=params.get("code_verifier"),
                )
            elif grant_type == DEVICE_GRANT:
                grant, value = device.poll(
                    session, params.get("device_code"), params.get("client_id")
                )
            elif grant_type == TOKEN_EXCHANGE_GRANT_TYPE:
                child, value = exchange(session, params, vault.providers, vault.settings)
                url = vault.settings.effective_public_url
                return _json(exchange_response(child, value, url))
            else:
                raise UnsupportedGrantType(
                    "grant_type must be authorization_code, "
                    f"{DEVICE_GRANT} or {TOKEN_EXCHANGE_GRANT_TYPE}"
                )
            return _json(token_response(grant, value, vault.settings.effective_public_url))

    return await run_in_threadpool(run)


@router.post(
    "/oauth/device_authorization",
    summary="Device authorization request (RFC 8628 §3.1)",
    responses={
        200: oa.json_response("Codes to show", schemas.DEVICE),
        **oa.oauth_errors(400, 401),
        **oa.too_many_requests(),
    },
    openapi_extra=oa.form_body(
        {
            "client_id": schemas.CLIENT_ID,
            "authorization_details": oa.DETAILS_JSON_FIELD,
            "client_name": oa.TEXT,
            "client_uri": oa.URL,
        },
        ["client_id", "authorization_details"],
    ),
)
async def device_authorization(request: Request) -> JSONResponse:
    caller = admit(request, "device")
    params = await form_params(request)
    vault = vault_of(request)

    def run() -> dict[str, object]:
        with vault.session() as session:
            return device.start(session, params, vault.providers, vault.settings, caller=caller)

    return _json(await run_in_threadpool(run))


@router.post(
    "/oauth/revoke",
    summary="Token revocation (RFC 7009): 200 whether or not the token was known",
    response_class=Response,
    responses={200: {"description": "Revoked, or nothing to revoke"}, **oa.oauth_errors(400)},
    openapi_extra=oa.form_body(
        {
            "token": oa.TEXT,
            "token_type_hint": {"type": "string", "examples": ["access_token"]},
        },
        ["token"],
    ),
)
async def revoke(request: Request) -> Response:
    params = await form_params(request)
    vault = vault_of(request)
    ip = client_ip(request)

    def run() -> None:
        with vault.session() as session:
            revoke_token(
                session,
                params.get("token"),
                params.get("token_type_hint"),
                ip=ip,
            )

    await run_in_threadpool(run)
    return Response(status_code=200, headers=NO_STORE)


@router.post(
    "/oauth/introspect",
    summary="Token introspection (RFC 7662), authenticated by the token itself",
    responses={
        200: oa.json_response(
            "Whether the token is active, and what it may do", schemas.INTROSPECTION
        ),
        **oa.oauth_errors(400, 401),
    },
    openapi_extra={
        **oa.form_body({"token": oa.TEXT}, ["token"]),
        "parameters": [
            {
                "name": "Authorization",
                "in": "header",
                "required": True,
                "description": "Bearer: the okap token being introspected (or one of its grant)",
                "schema": {"type": "string", "examples": ["Bearer okap_..."]},
            }
        ],
    },
)
async def introspection(request: Request) -> JSONResponse:
    authorization = request.headers.get("authorization")
    params = await form_params(request)
    vault = vault_of(request)

    def run() -> dict[str, object]:
        with vault.session() as session:
            return introspect(
                session, authorization, params.get("token"), vault.settings, vault.providers
            )

    return _json(await run_in_threadpool(run))
