"""The proxy's core: check the grant, forward with the real key, account for the answer.

Framework-free: it takes a ``messages.ProxyRequest`` (plain data) and returns a
``messages.ProxyResponse`` (status, headers, and a body or an async stream). Every refusal
is a :class:`~okap_server.proxy.errors.ProxyError`, rendered here, in one place, in the
provider's own error shape.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import httpx
from sqlalchemy.exc import SQLAlchemyError

from okap_server.authorization.tokens import looks_like_token, token_hash
from okap_server.clock import utcnow
from okap_server.proxy import errors
from okap_server.proxy.accounting.admission import AdmissionInterrupted
from okap_server.proxy.forwarding import ForwardPlan, plan_forward
from okap_server.proxy.headers import client_response_headers
from okap_server.proxy.messages import ProxyRequest, ProxyResponse
from okap_server.proxy.ownership import MAX_OBJECT_ID
from okap_server.proxy.providers.base import Adapter, StreamObserver, owned_ids
from okap_server.proxy.providers.catalog import ProviderRow
from okap_server.proxy.recorder import Outcome
from okap_server.proxy.relay import Relay
from okap_server.proxy.runtime import ProxyRuntime
from okap_server.telemetry.metrics import UNKNOWN_PROVIDER
from okap_server.telemetry.tracing import NO_SPAN, RequestSpan

log = logging.getLogger("okap.proxy")

# Set when the vault chose the output cap of each answer (SPEC.md, "Spend limits").
CAPPED_HEADER = "x-okap-max-tokens-capped"


# Answers bigger than this, or not JSON (files, audio), are streamed through, not read.
MAX_BUFFERED_BYTES = 8 * 1024 * 1024


def _fits_in_memory(response: httpx.Response) -> bool:
    if "json" not in response.headers.get("content-type", ""):
        return False
    length = response.headers.get("content-length", "")
    return not length.isdigit() or int(length) <= MAX_BUFFERED_BYTES


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ProxyService:
    def __init__(self, runtime: ProxyRuntime) -> None:
        self.runtime = runtime

    async def handle(self, request: ProxyRequest) -> ProxyResponse:
        started = time.perf_counter()
        row = self.runtime.catalog.get(request.provider)
        if row is None:
            adapter = self.runtime.adapter("openai")
            answer = self.render(adapter, errors.UnknownProvider())
            elapsed = time.perf_counter() - started
            self.runtime.metrics.proxy_request(UNKNOWN_PROVIDER, answer.status, None, elapsed)
            return answer
        adapter = self.runtime.adapter(row.id)
        tracer = self.runtime.tracer
        span = tracer.request(request.method, row.id, request.raw_path, request.headers)
        audit: list[Outcome] = []  # filled as soon as the grant is known
        self.runtime.in_flight += 1
        status = 500  # a fault of the vault's own, unless an answer says otherwise
        try:
            plan = await self.check(request, row, adapter, audit)
            answer = await self.forward(plan, row, adapter, started, span)
            status = 0  # counted when its answer ends (forward, settle_stream)
            return answer
        except AdmissionInterrupted as exc:
            log.error("proxy: database unavailable while admitting a request")
            status = errors.ProxyUnavailable.status
            for outcome in audit:
                outcome.interrupted(exc.reservation_id, exc.amount, exc.periods)
                self.runtime.recorder.submit(outcome)
            return self.render(adapter, errors.ProxyUnavailable())
        except SQLAlchemyError as exc:
            log.error("proxy: database unavailable (%s)", type(exc).__name__)
            status = errors.ProxyUnavailable.status
            return self.render(adapter, errors.ProxyUnavailable())
        except errors.ProxyError as exc:
            status = exc.status
            for outcome in audit:
                outcome.refused(exc.status, exc.code, (time.perf_counter() - started) * 1000)
                self.runtime.recorder.submit(outcome)
            return self.render(adapter, exc)
        except Exception:  # a fault of the vault's own (the front door answers 500)
            for outcome in audit:
                outcome.crashed()
                self.runtime.recorder.submit(outcome)
            raise
        except BaseException:  # cancelled mid-request (server shutdown): settle, never $0
            status = 499
            for outcome in audit:
                if outcome.cancelled():
                    self.runtime.recorder.submit(outcome)
            raise
        finally:
            self.runtime.in_flight -= 1
            if status:
                self.count(row.id, status, started, audit[0] if audit else None, span)

    def count(
        self,
        provider: str,
        status: int,
        started: float,
        outcome: Outcome | None,
        span: RequestSpan,
    ) -> None:
        """The request's metrics and the end of its span, once its answer has ended."""
        upstream_ms = outcome.upstream_latency_ms if outcome is not None else None
        capability = outcome.capability if outcome is not None else None
        cost = outcome.cost_micros if outcome is not None else 0
        self.runtime.metrics.proxy_request(
            provider,
            status,
            capability,
            time.perf_counter() - started,
            upstream_ms / 1000 if upstream_ms is not None else None,
            cost,
        )
        model = outcome.model if outcome is not None else None
        streamed = outcome.streamed if outcome is not None else False
        span.end(status, capability, model, streamed, cost)

    async def check(
        self, request: ProxyRequest, row: ProviderRow, adapter: Adapter, audit: list[Outcome]
    ) -> ForwardPlan:
        headers = {name.lower(): value for name, value in request.headers}
        query = dict(request.query)
        token = adapter.client_token(headers, query)
        if not token or not looks_like_token(token):
            raise errors.InvalidToken()
        grant = await self.runtime.grants.lookup(token_hash(token))
        if grant is None:
            raise errors.InvalidToken()
        now = utcnow()
        outcome = Outcome(
            account_id=grant.account_id,
            grant_id=grant.id,
            client_name=grant.client_name,
            provider=row.id,
            endpoint=f"{request.method} {request.raw_path[:200]}",
            status=0,
            created_at=now,
        )
        audit.append(outcome)
        if grant.revoked:
            raise errors.TokenRevoked()
        if aware(grant.expires_at) <= now:
            raise errors.TokenExpired()
        entry = grant.entries.get(row.id)
        if entry is None:
            raise errors.ProviderNotGranted(f"This okap token grants no access to {row.id}.")
        if entry.expires_at is not None and aware(entry.expires_at) <= now:
            raise errors.TokenExpired(f"This okap token's access to {row.id} has expired.")
        if request.read_body is not None:
            request.body, request.body_too_large = await request.read_body()
        return await plan_forward(
            self.runtime, request, row, adapter, grant, entry, headers, outcome
        )

    async def forward(
        self,
        plan: ForwardPlan,
        row: ProviderRow,
        adapter: Adapter,
        started: float,
        span: RequestSpan = NO_SPAN,
    ) -> ProxyResponse:
        outcome = plan.outcome
        upstream = plan.upstream_request
        span.upstream_started(upstream.method, upstream.url.host)
        upstream_started = time.perf_counter()
        try:
            response = await self.runtime.upstreams.send(plan.upstream_request)
        except errors.ProxyError as exc:
            outcome.upstream_latency_ms = (time.perf_counter() - upstream_started) * 1000
            if exc.outcome_unknown:  # sent, never answered: it may have been billed
                outcome.cost_micros = plan.cost_of(None, complete=False)
                outcome.error_type = "outcome_unknown"
            raise
        headers = client_response_headers(response.headers.multi_items())
        headers.extend(plan.rate_headers.items())
        if plan.capped_output is not None:
            headers.append((CAPPED_HEADER, str(plan.capped_output)))
        content_type = response.headers.get("content-type", "")
        sse = "text/event-stream" in content_type
        if response.is_success and (sse or plan.route.stream or not _fits_in_memory(response)):
            outcome.streamed = True
            outcome.status = response.status_code
            observer = adapter.stream_observer(injected_usage=plan.injected_usage)
            observer.owns = plan.route.owns

            def finish(seen: StreamObserver, how: str) -> None:
                self.settle_stream(plan, seen, how, started, upstream_started)
                span.upstream_ended(None if how == "upstream_broken" else response.status_code)
                self.count(row.id, outcome.status, started, outcome, span)

            relayed = Relay(response, observer, sse=sse, finish=finish)
            return ProxyResponse(response.status_code, headers, stream=relayed)
        try:
            content = await response.aread()
        except httpx.HTTPError:
            # The provider answered and then broke off: it may well have billed the answer.
            outcome.cost_micros = plan.cost_of(None, complete=False)
            raise errors.UpstreamUnavailable() from None
        finally:
            await response.aclose()
        outcome.upstream_latency_ms = (time.perf_counter() - upstream_started) * 1000
        outcome.status = response.status_code
        span.upstream_ended(response.status_code)
        if response.is_success:
            try:
                document = json.loads(content) if content.strip() else None
            except ValueError:  # a 200 the app's SDK could not parse: answer a native 502
                outcome.cost_micros = plan.cost_of(None, complete=False)  # it may be billed
                outcome.error_type = "upstream_invalid_response"
                raise errors.UpstreamInvalidResponse() from None
            usage = adapter.usage_from_json(document) if isinstance(document, dict) else None
            outcome.usage = usage
            if plan.route.owns and isinstance(document, dict):
                self.own(outcome, owned_ids(document, plan.route.owns))
            outcome.cost_micros = plan.cost_of(usage, complete=usage is not None)
        else:
            outcome.error_type = f"upstream_{response.status_code}"
            content = plan.scrub(content)
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        self.runtime.recorder.submit(outcome)
        self.count(row.id, response.status_code, started, outcome, span)
        return ProxyResponse(response.status_code, headers, body=content)

    def settle_stream(
        self,
        plan: ForwardPlan,
        seen: StreamObserver,
        how: str,
        started: float,
        upstream_started: float,
    ) -> None:
        outcome = plan.outcome
        complete = how == "complete" and seen.complete and seen.usage is not None
        outcome.usage = seen.usage
        outcome.cost_micros = plan.cost_of(seen.usage, complete=complete)
        if seen.owned:
            self.own(outcome, seen.owned)
        if how == "client_gone":
            outcome.status, outcome.error_type = 499, "client_disconnected"
        elif how == "upstream_broken":
            outcome.status, outcome.error_type = 502, "upstream_stream_broken"
        now = time.perf_counter()
        outcome.latency_ms = (now - started) * 1000
        outcome.upstream_latency_ms = (now - upstream_started) * 1000
        self.runtime.recorder.submit(outcome)

    def own(self, outcome: Outcome, ids: list[str]) -> None:
        """Objects an answer named that its grant now owns: usable at once in this process,
        and written with the audit row for every other."""
        outcome.owned = tuple(i for i in ids if len(i) <= MAX_OBJECT_ID)
        self.runtime.objects.remember(outcome.grant_id, outcome.provider, list(outcome.owned))

    def failed(self, provider: str) -> ProxyResponse:
        """The answer to a request the vault itself failed on (a bug, not a refusal)."""
        row = self.runtime.catalog.get(provider)
        adapter = self.runtime.adapter(row.id if row is not None else "openai")
        return self.render(adapter, errors.InternalError())

    def render(self, adapter: Adapter, exc: errors.ProxyError) -> ProxyResponse:
        body = json.dumps(adapter.error_body(exc.status, exc.code, exc.message)).encode()
        headers = [("content-type", "application/json"), ("x-okap-error", exc.code)]
        headers.extend(exc.headers.items())
        return ProxyResponse(exc.status, headers, body=body)
