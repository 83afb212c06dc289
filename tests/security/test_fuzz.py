"""Bounded fuzzing of the protocol and management endpoints with schemathesis: valid and
deliberately invalid requests, signed out and signed in. The vault never answers 5xx, the
protocol endpoints keep the RFC 6749 error shape, and it is still serving afterwards."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.security.openapi_surface import surface
from tests.support.person import Person

EXAMPLES_PER_OPERATION = 12  # per mode (positive, negative) and per session state
JSON_ERROR_PATHS = (
    "/oauth/par",
    "/oauth/token",
    "/oauth/device_authorization",
    "/oauth/revoke",
    "/oauth/introspect",
    "/okap/authorize",
    "/okap/usage",
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No waiting for a person: every OKAP request answers at once."""
    return settings.model_copy(update={"okap_wait_seconds": 0.0})


def problem_with(path: str, response: Any) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"{status} {response.text[:200]}"
    if status >= 400 and path.startswith(JSON_ERROR_PATHS) and status != 413:
        try:
            body = response.json()
        except ValueError:
            return f"{status} not JSON: {response.text[:200]}"
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            return f"{status} not an RFC 6749 error: {body!r:.200}"
    return None


@pytest.mark.parametrize("backend", ["sqlite"])
def test_fuzz_the_protocol_and_management_surface(
    live_url: str, vault: Vault, owner: tuple[str, str]
) -> None:
    person = Person(live_url, *owner)
    page = person.open("/device")
    csrf = person.form_of(page.text, "/device")
    token = dict(csrf.fields)["csrf_token"]
    cookies = {c.name: c.value or "" for c in person.client.cookies.jar}
    person.close()
    schema = schemathesis.openapi.from_dict(surface(token))
    problems: list[str] = []
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        for mode in schemathesis.GenerationMode:
            strategy = operation.as_strategy(generation_mode=mode)

            @given(case=strategy, signed_in=st.booleans())
            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any, signed_in: bool) -> None:
                nonlocal cases
                cases += 1
                response = case.call(
                    base_url=live_url,
                    cookies=cookies if signed_in else None,
                    allow_redirects=False,
                    timeout=15,
                )
                found = problem_with(operation.path, response)
                if found:
                    problems.append(f"{case.method} {case.formatted_path}: {found}")

            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (no parameters)
                continue
    assert cases >= 500
    assert problems == [], "\n".join(sorted(set(problems))[:40])
    assert httpx.get(f"{live_url}/healthz").status_code == 200
    print(f"fuzz cases run: {cases}")
