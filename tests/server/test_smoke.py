"""The vault starts on both back ends and answers its probes over real HTTP."""

from __future__ import annotations

import httpx


def test_probes_answer(live_url: str) -> None:
    assert httpx.get(f"{live_url}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{live_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.headers["x-frame-options"] == "DENY"
