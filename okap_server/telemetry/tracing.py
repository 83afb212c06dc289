"""Traces of proxied requests, as the proxy's core sees them: one span per request and one
for its upstream call. The core talks to :class:`ProxyTracer`; OpenTelemetry is one
implementation (``otel.py``), imported only when ``OKAP_OTEL=true``. When tracing is off
the core gets :data:`NO_TRACE`, whose methods do nothing."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Protocol

from okap_server.settings import Settings, SettingsError


class RequestSpan(Protocol):
    def upstream_started(self, method: str, host: str) -> None:
        """The upstream call begins (its span is a child of the request's)."""

    def upstream_ended(self, status: int | None) -> None:
        """The upstream call's answer has ended (``None``: it failed without one)."""

    def end(
        self,
        status: int,
        capability: str | None = None,
        model: str | None = None,
        streamed: bool = False,
        cost_micros: int = 0,
    ) -> None:
        """The request has been answered (a stream: when its last byte went out)."""


class ProxyTracer(Protocol):
    def request(
        self, method: str, provider: str, path: str, headers: Sequence[tuple[str, str]]
    ) -> RequestSpan:
        """A span for a proxied request; ``headers`` may carry the app's ``traceparent``."""

    def shutdown(self) -> None:
        """Send what is buffered and stop (blocking)."""


class _NoSpan:
    __slots__ = ()

    def upstream_started(self, method: str, host: str) -> None:
        return None

    def upstream_ended(self, status: int | None) -> None:
        return None

    def end(
        self,
        status: int,
        capability: str | None = None,
        model: str | None = None,
        streamed: bool = False,
        cost_micros: int = 0,
    ) -> None:
        return None


NO_SPAN: RequestSpan = _NoSpan()


class _NoTrace:
    __slots__ = ()

    def request(
        self, method: str, provider: str, path: str, headers: Sequence[tuple[str, str]]
    ) -> RequestSpan:
        return NO_SPAN

    def shutdown(self) -> None:
        return None


NO_TRACE: ProxyTracer = _NoTrace()


def tracer_for(settings: Settings) -> ProxyTracer:
    """OpenTelemetry when ``OKAP_OTEL=true`` (its packages: ``pip install okap-vault[otel]``),
    else :data:`NO_TRACE`; nothing of OpenTelemetry is imported when it is off."""
    if not settings.otel:
        return NO_TRACE
    _require_opentelemetry()
    from okap_server.telemetry.otel import OtelTracer

    try:
        return OtelTracer.from_environment()
    except ValueError as exc:  # e.g. an unknown OTEL_TRACES_EXPORTER
        raise SettingsError(str(exc)) from None


def check(settings: Settings) -> None:
    """For ``okap-server serve``, before it says it listens: SettingsError in one line if
    tracing is on and cannot start (its packages missing, an unknown exporter)."""
    if not settings.otel:
        return
    _require_opentelemetry()
    from okap_server.telemetry.otel import exporter_name

    try:
        exporter_name()
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _require_opentelemetry() -> None:
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        raise SettingsError(
            "OKAP_OTEL: OpenTelemetry is not installed: pip install 'okap-vault[server,otel]'"
        )
