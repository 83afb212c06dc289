"""OpenTelemetry traces of proxied requests (``OKAP_OTEL=true``): imported only then.

Configured by the standard variables: ``OTEL_SERVICE_NAME`` (default ``okap-vault``),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_EXPORTER`` (``otlp``, the default, over
HTTP/protobuf to ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``;
``console``; ``none``), ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*`` and ``OTEL_PROPAGATORS``
(an app's ``traceparent`` makes the request's span a child of the app's, W3C Trace Context).

The provider is the app's own (never set as OpenTelemetry's global one). Spans name the
provider, the method, the path without its query (Gemini clients send their credential
there), the capability, the model, the status and the cost: never a token, a key, a
grant id or an account name. Nothing is sent to the provider: no ``traceparent`` goes
upstream, to a third party.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from okap_server import __version__

MAX_PATH = 200


def exporter_name() -> str:
    """``OTEL_TRACES_EXPORTER``: the first named, which must be ``otlp``, ``console`` or
    ``none`` (ValueError naming it otherwise)."""
    name = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")[0].strip().lower()
    if name not in ("otlp", "console", "none"):
        raise ValueError(f"OTEL_TRACES_EXPORTER: {name[:40]!r} is not otlp, console or none")
    return name


def exporter_from_environment() -> SpanExporter | None:
    name = exporter_name()
    if name == "none":
        return None
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


class OtelRequestSpan:
    __slots__ = ("span", "tracer", "upstream")

    def __init__(self, tracer: trace.Tracer, span: Span) -> None:
        self.tracer = tracer
        self.span = span
        self.upstream: Span | None = None

    def upstream_started(self, method: str, host: str) -> None:
        self.upstream = self.tracer.start_span(
            f"{method} upstream",
            context=trace.set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "server.address": host},
        )

    def upstream_ended(self, status: int | None) -> None:
        span, self.upstream = self.upstream, None
        if span is None:
            return
        if status is None:
            span.set_status(Status(StatusCode.ERROR, "no answer"))
        else:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        span.end()

    def end(
        self,
        status: int,
        capability: str | None = None,
        model: str | None = None,
        streamed: bool = False,
        cost_micros: int = 0,
    ) -> None:
        self.upstream_ended(None)
        span = self.span
        span.set_attribute("http.response.status_code", status)
        if capability:
            span.set_attribute("okap.capability", capability)
        if model:
            span.set_attribute("gen_ai.request.model", model[:MAX_PATH])
        span.set_attribute("okap.streamed", streamed)
        if cost_micros:
            span.set_attribute("okap.cost_usd", cost_micros / 1_000_000)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()


class OtelTracer:
    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("okap_server.proxy", __version__)

    @classmethod
    def from_environment(cls, exporter: SpanExporter | None = None) -> OtelTracer:
        attributes = {"service.version": __version__}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = "okap-vault"
        provider = TracerProvider(resource=Resource.create(attributes))
        exporter = exporter or exporter_from_environment()
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider)

    def request(
        self, method: str, provider: str, path: str, headers: Sequence[tuple[str, str]]
    ) -> OtelRequestSpan:
        carrier = {name.lower(): value for name, value in headers if name.lower() in _TRACE_HEADERS}
        parent = propagate.extract(carrier) if carrier else None
        span = self.tracer.start_span(
            f"{method} /v1/{provider}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": f"/v1/{provider}/{path}"[:MAX_PATH],
                "okap.provider": provider,
            },
        )
        return OtelRequestSpan(self.tracer, span)

    def shutdown(self) -> None:
        self.provider.shutdown()


# What an app may send to place the vault's span in its trace (W3C Trace Context, baggage).
_TRACE_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})
