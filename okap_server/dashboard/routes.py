"""All dashboard pages, as one router for ``create_app``."""

from __future__ import annotations

from fastapi import APIRouter

from okap_server.dashboard import (
    activity_routes,
    admin_routes,
    api_tokens_routes,
    apps_routes,
    ceilings_routes,
    keys_routes,
    pending_routes,
    personal_tokens_routes,
    settings_routes,
    webhooks_routes,
)

router = APIRouter()
for module in (
    apps_routes,
    pending_routes,
    keys_routes,
    activity_routes,
    settings_routes,
    ceilings_routes,
    api_tokens_routes,
    personal_tokens_routes,
    admin_routes,
    webhooks_routes,
):
    router.include_router(module.router)
