"""Deciding whether and how one request goes upstream: scope, output cap, price, admission,
and the upstream request itself (normalised URL, filtered headers, the real key)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from okap_server.catalog import ProviderRow
from okap_server.grants.view import GrantEntry, GrantView
from okap_server.prices import Price
from okap_server.proxy import errors
from okap_server.proxy.headers import upstream_request_headers
from okap_server.proxy.messages import ProxyRequest, parse_body
from okap_server.proxy.ownership import check_objects
from okap_server.proxy.paths import join_upstream, normalise_path
from okap_server.proxy.providers.base import (
    CLIENT_CREDENTIAL_QUERY,
    Adapter,
    AmbiguousMember,
    Route,
    Usage,
)
from okap_server.proxy.recorder import Outcome
from okap_server.proxy.worst_case import bound_request
from okap_server.vault.crypto import DecryptionError

if TYPE_CHECKING:
    from okap_server.proxy.runtime import ProxyRuntime


@dataclass
class ForwardPlan:
    outcome: Outcome
    route: Route
    upstream_request: httpx.Request
    secret: str = field(repr=False)
    price: Price | None = None
    input_bound: int = 0
    output_bound: int = 0
    rate_headers: dict[str, str] = field(default_factory=dict)
    injected_usage: bool = False
    capped_output: int | None = None
    # What made the worst case large (answers, unseen input), for a refusal's message.
    reasons: list[str] = field(default_factory=list)

    def worst_case(self) -> int:
        """The bounds at the dearest rates of the price the request settles at."""
        if self.price is None:
            return 0
        return self.price.worst_case_micros(self.input_bound, self.output_bound)

    def cost_of(self, usage: Usage | None, *, complete: bool) -> int:
        """Real cost when the answer was complete; never below the seen usage, and the
        worst case when the answer broke off (never $0 for a billable request)."""
        if not self.route.billable or self.price is None:
            return 0
        seen = self.price.cost_micros(usage) if usage is not None else 0
        return seen if complete else self.outcome.unknown_cost(seen)

    def scrub(self, content: bytes) -> bytes:
        """An upstream error may quote the key it was sent; never pass that on."""
        secret = self.secret.encode()
        return content.replace(secret, b"[redacted]") if secret and secret in content else content


def _model_check(route: Route, entry: GrantEntry, provider: str) -> None:
    """Every model the request names is on the allow-list; a request that can cost money
    names one, where the vault can read it."""
    for model in (route.model, *route.models):
        if model is not None and not entry.allows_model(model):
            raise errors.ModelNotAllowed(
                f"The model '{model[:200]}' is not allowed by this okap grant for {provider}."
            )
    if not entry.models or not route.costly:
        return
    if route.models_unseen:
        raise errors.ModelNotAllowed(
            "This okap grant allows named models only, and this request names its models "
            "where the vault does not read them (a batch's input file)."
        )
    if route.model is None and not route.models:
        raise errors.ModelNotAllowed("This okap grant allows named models only; name one.")


def _scope_check(route: Route, entry: GrantEntry, provider: str) -> None:
    if route.always_allowed:
        return  # listing or describing models
    if route.capability is None:
        raise errors.EndpointNotAllowed(
            f"This {provider} endpoint is not covered by any okap capability."
        )
    if route.capability not in entry.capabilities:
        raise errors.CapabilityNotGranted(
            f"This okap grant does not include the '{route.capability}' capability for {provider}."
        )
    _model_check(route, entry, provider)
    if route.unbounded is not None and entry.limits.spend_limited:
        raise errors.UnboundedCost(
            f"Under a spend limit the vault refuses {route.unbounded}: it cannot bound "
            "their cost in advance. Ask for a grant without a spend limit to use them."
        )


# Headers that make some servers (Google's front end) act as another method than the
# request's: the vault classifies a request by the method it sees.
_METHOD_OVERRIDES = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})


async def plan_forward(
    runtime: ProxyRuntime,
    request: ProxyRequest,
    row: ProviderRow,
    adapter: Adapter,
    grant: GrantView,
    entry: GrantEntry,
    headers: dict[str, str],
    outcome: Outcome,
) -> ForwardPlan:
    """Check everything, admit (rate + spend hold), and build the upstream request."""
    settings = runtime.settings
    path = normalise_path(request.raw_path)
    outcome.endpoint = f"{request.method} {path}"
    now = outcome.created_at
    if request.body_too_large:
        raise errors.RequestTooLarge(
            f"The request body is over the vault's limit of {settings.proxy_max_body_bytes} bytes."
        )
    if not _METHOD_OVERRIDES.isdisjoint(headers):  # Google's front end honours them
        raise errors.InvalidParameter("The vault does not forward a method override header.")
    body_json = parse_body(request, headers)
    if body_json is None and request.body and not adapter.takes_raw_body(path):
        raise errors.InvalidJson(
            "The request body must be a JSON object (or a multipart form where the endpoint "
            "takes one), whatever its Content-Type: the vault checks every body it forwards."
        )
    request.query, request.headers = adapter.without_answer_shaping(request.query, request.headers)
    try:
        route = adapter.route(request.method, path, body_json)
    except AmbiguousMember as exc:
        raise errors.InvalidParameter(str(exc)) from None
    outcome.model, outcome.capability = route.model, route.capability
    _scope_check(route, entry, row.id)
    await check_objects(runtime.objects, adapter, route, grant.id, row.id, body_json, request.body)
    if entry.key is None:
        raise errors.KeyUnavailable()
    limits = entry.limits
    multipart = "multipart/form-data" in headers.get("content-type", "")
    bounds = bound_request(adapter, route, body_json, request.body, multipart, limits, settings)
    price: Price | None = None
    if route.billable:
        price = runtime.prices.price_for(row.id, route.model, now)
        if price is None and limits.spend_limited:
            raise errors.PriceUnknown(
                f"The vault knows no price for the model '{(route.model or '?')[:200]}' at "
                f"'{row.id}', so it cannot keep this grant's spend limit. The vault's owner can "
                "run `okap-server prices refresh`, add the price to the prices file "
                "(OKAP_PRICES_FILE), or set OKAP_FALLBACK_PRICE_PER_MILLION."
            )
    try:
        secret = runtime.keys.reveal(entry.key)
    except DecryptionError:
        raise errors.KeyUnavailable() from None
    plan = ForwardPlan(
        outcome=outcome,
        route=route,
        upstream_request=build_upstream_request(row, request, path, bounds.body, secret),
        secret=secret,
        price=price,
        input_bound=bounds.input_tokens,
        output_bound=bounds.output_tokens,
        injected_usage=bounds.injected_usage,
        capped_output=bounds.capped_output,
        reasons=bounds.reasons,
    )
    outcome.key_id = entry.key.id  # its spend counts against the key's ceiling
    outcome.ancestors = entry.ceilings.lineage  # and a delegated grant's, its ancestors'

    # Held on limited periods, and what the request is charged if its outcome is lost.
    amount = plan.worst_case() if limits.spend_limited or route.billable else 0
    waiting = time.perf_counter()
    try:
        admitted = await runtime.admissions.admit(
            grant.id,
            row.id,
            limits,
            amount,
            now,
            alone=runtime.in_flight <= 1,
            ceilings=entry.ceilings,
        )
    except errors.BudgetExceeded as exc:
        if plan.reasons:  # say what made the worst case large
            exc.message = f"{exc.message} Its worst case counts {'; '.join(plan.reasons)}."
        raise
    finally:
        runtime.metrics.admission_waited(time.perf_counter() - waiting)
    outcome.admitted = True
    outcome.unknown_outcome_cost = max(plan.worst_case() if route.billable else 0, amount)
    outcome.reservation_id = admitted.reservation_id
    outcome.reserved_micros = admitted.reserved_micros
    outcome.reserved_periods = admitted.reserved_periods
    outcome.day, outcome.month = admitted.day, admitted.month
    if admitted.rate is not None:
        plan.rate_headers = admitted.rate.headers()
    return plan


@functools.lru_cache(maxsize=512)
def upstream_url(base: str, path: str) -> tuple[httpx.URL, bytes]:
    """The URL and its ``Host``, parsed once per upstream and path: httpx checks a URL
    character by character (tens of microseconds a request), and apps call a handful of
    paths. ``httpx.URL`` is immutable."""
    url = httpx.URL(join_upstream(base, path))
    return url, url.netloc


_SENDS_LENGTH = frozenset({"POST", "PUT", "PATCH"})


def build_upstream_request(
    row: ProviderRow, request: ProxyRequest, path: str, body: bytes, secret: str
) -> httpx.Request:
    """Configured upstream + normalised path; the client's credentials out, the key in."""
    headers = upstream_request_headers(request.headers)
    sent = row.key_sending.key_header(secret)
    if sent is not None:
        headers.append(sent)
    query: list[tuple[str, str | int | float | bool | None]] = [
        (k, v) for k, v in request.query if k.lower() not in CLIENT_CREDENTIAL_QUERY
    ]
    url, host = upstream_url(row.upstream, path)
    if query:
        url = url.copy_with(params=httpx.QueryParams(query))
    # Header values are passed on as the bytes the client sent (Starlette decoded them as
    # latin-1; RFC 9110 §5.5 allows obs-text), never re-encoded as ASCII, which would fail.
    # Host and Content-Length are set here, as httpx would for ``content=``; the body goes
    # in as a ready stream, so httpx builds the headers once instead of twice.
    raw = [(b"host", host)]
    if body or request.method in _SENDS_LENGTH:
        raw.append((b"content-length", str(len(body)).encode()))
    raw.extend((n.encode("latin-1"), v.encode("latin-1")) for n, v in headers)
    upstream = httpx.Request(request.method, url, headers=raw, stream=httpx.ByteStream(body))
    upstream.read()  # the body is in memory: marked read, so no async read is needed later
    return upstream
