"""``GET /metrics``: the Prometheus text format (``okap_server/telemetry``).

It needs a management token with the ``metrics:read`` scope (RFC 6750 §2.1, as every
/api/v1 call), unless ``OKAP_METRICS_PUBLIC=true`` opens it for a scrape from a private
network. Its refusals are RFC 9457 problem details, as the management API's.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from okap_server.api.auth import SCOPE_EXTENSION, bearer, check_scope, principal
from okap_server.api.docs import problem
from okap_server.telemetry.metrics import CONTENT_TYPE_PLAIN_0_0_4, VaultMetrics
from okap_server.web.sessions import vault_of

SCOPE = "metrics:read"

router = APIRouter(tags=["Health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (a metrics:read token, or OKAP_METRICS_PUBLIC=true)",
    openapi_extra={SCOPE_EXTENSION: SCOPE},
    responses={
        200: {"description": "Prometheus text format", "content": {CONTENT_TYPE_PLAIN_0_0_4: {}}},
        **{status: problem(status) for status in (400, 401, 403, 429)},
    },
)
async def metrics(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Response:
    """Counters and histograms of this process (of every worker, with ``--workers``) and
    gauges read from the database when scraped."""
    if not vault_of(request).settings.metrics_public:
        found = await run_in_threadpool(principal, request, credentials)
        check_scope(found, SCOPE)
    registry: VaultMetrics = request.app.state.metrics
    body, content_type = await run_in_threadpool(registry.exposition, request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
