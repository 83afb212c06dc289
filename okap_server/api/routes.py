"""Everything under /api/v1, installed on the app in one call."""

from __future__ import annotations

from fastapi import FastAPI

from okap_server.api import (
    accounts_routes,
    grants_routes,
    keys_routes,
    problems,
    reports_routes,
    tokens_routes,
    webhooks_routes,
)
from okap_server.api.auth import ApiLimits


def install(app: FastAPI, per_minute: int) -> None:
    app.state.api_limits = ApiLimits(per_minute)
    problems.install(app)
    for module in (
        grants_routes,
        keys_routes,
        tokens_routes,
        reports_routes,
        accounts_routes,
        webhooks_routes,
    ):
        app.include_router(module.router)
