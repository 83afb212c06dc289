"""``/activity``: proxied requests and security events, filtered; ``/activity.csv`` exports
the same rows."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.dashboard import activity
from okap_server.web import openapi as oa
from okap_server.web.pages import NO_STORE, render_page
from okap_server.web.sessions import SignedIn, current_account, vault_of

router = APIRouter()

CSV_LIMIT = 50_000
PAGE_LIMIT = 200


def _names_of(vault: Vault) -> Callable[[str], str]:
    """``openai, anthropic`` as people read it: ``OpenAI, Anthropic`` (the CSV keeps ids)."""
    names = {row.id: row.name for row in vault.providers.rows()}

    def shown(ids: str) -> str:
        return ", ".join(names.get(part, part) for part in ids.split(", ")) if ids else ""

    return shown


@router.get("/activity", include_in_schema=False)
def activity_page(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    vault = vault_of(request)
    filters = activity.Filters.from_query(dict(request.query_params))
    with vault.session() as session:
        rows = activity.entries(session, signed_in.account.id, filters, limit=PAGE_LIMIT)
        names = activity.app_names(session, signed_in.account.id)
    return render_page(
        request,
        "dashboard/activity.html",
        signed_in=signed_in,
        rows=rows,
        filters=filters,
        app_choices=names,
        provider_choices={row.id: row.name for row in vault.providers.rows()},
        provider_name=_names_of(vault),
        periods={k: v[0] for k, v in activity.PERIODS.items()},
        statuses=activity.STATUSES,
        kinds=activity.KINDS,
        query=request.url.query,
        page_limit=PAGE_LIMIT,
        csv_limit=CSV_LIMIT,
    )


@router.get(
    "/activity.csv",
    summary="This account's activity as CSV (the /activity page's filters)",
    tags=[oa.DASHBOARD_TAG],
    response_class=Response,
    responses={
        200: {
            "description": "One row per request or security event",
            "content": {"text/csv": {"schema": oa.TEXT}},
        },
        303: oa.redirect("Not signed in: to /signin"),
        503: oa.html("The vault cannot reach its database"),
    },
    openapi_extra={
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in {
                "app": oa.TEXT,
                "provider": oa.TEXT,
                "status": {"type": "string", "enum": list(activity.STATUSES)},
                "period": {"type": "string", "enum": list(activity.PERIODS)},
                "kind": {"type": "string", "enum": list(activity.KINDS)},
            }.items()
        ]
    },
)
def activity_csv(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    vault = vault_of(request)
    filters = activity.Filters.from_query(dict(request.query_params))
    with vault.session() as session:
        rows = activity.entries(session, signed_in.account.id, filters, limit=CSV_LIMIT)
    name = f"okap-activity-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(
        activity.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
    )
