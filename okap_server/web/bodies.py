"""Request bodies: bounded in size, read within a deadline, never spooled to disk.

One reader (:class:`BodyReader`) serves both doors. The proxy's front door calls it once the
token is known to be good (``proxy_routes``); every other endpoint (pages, dashboard, the
OAuth and OKAP protocol) gets its body through :class:`BodyLimits`, a plain ASGI layer
that reads it ahead, before any route runs, and hands the route the bytes it read:

- a ``Content-Length`` over the endpoint's bound is refused before a byte is read, a
  chunked body as soon as the count passes it (413, RFC 9110 §15.5.14);
- a body that has not arrived by its deadline is cut off (408, RFC 9110 §15.5.9). The
  deadline is ``body_timeout_seconds`` from the start of the read, extended by one second
  per ``body_min_bytes_per_second`` bytes received, as Apache's ``mod_reqtimeout``
  (``body=30,MinRate=...``) does: a slow but honest upload finishes, a trickle does not;
- a multipart body is refused (415, RFC 9110 §15.5.16): no page or protocol endpoint takes
  one, and refusing it unread means no upload is ever parsed or spooled to a temp file.

A JSON body of the management API (``/api/``) must also be I-JSON (RFC 7493), read by the
proxy's own reader (``proxy/ijson.py``): a duplicate member name, a lone surrogate escape,
``NaN``, a number past a double or a ``charset`` other than UTF-8 is refused with a 422
problem naming ``body``, before FastAPI's lenient ``json.loads`` (last duplicate wins) can
take it one way while a proxy or log reader in front takes it another.

Each refusal answers in the endpoint's own style (RFC 6749 §5.2 JSON on the protocol,
the error page elsewhere) with ``Connection: close``: the unread rest of the body is not
drained, the connection is dropped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from okap_server.api.problems import API_PREFIX, BODY_REFUSALS, Invalid
from okap_server.api.problems import render as render_problem
from okap_server.authorization.errors import InvalidRequest, render
from okap_server.context import Vault
from okap_server.proxy.ijson import NotIJson, check_charset, read_object
from okap_server.web.pages import NO_STORE

# Endpoints that answer RFC 6749 §5.2 JSON; everything else is a page.
PROTOCOL_PREFIXES = ("/oauth/", "/okap/", "/.well-known/")
CLOSE = {"Connection": "close"}
# How often the deadlines of bodies being read are looked at.
WATCH_EVERY = 0.25


class BodyTooLarge(Exception):
    """The body is over its bound (declared or counted)."""


class BodyTimeout(Exception):
    """The body did not arrive by its deadline."""


class BodyAbandoned(Exception):
    """The client went away before its body was complete."""


@dataclass(frozen=True, slots=True)
class BodyRules:
    """How much body an endpoint takes, and how long it waits for it."""

    limit: int
    timeout: float
    min_rate: float  # bytes per second that buy one more second

    def describe_limit(self) -> str:
        return f"{self.limit // 1024} KiB" if self.limit % 1024 == 0 else f"{self.limit} bytes"


def declared_body(scope: Scope) -> tuple[bool, int | None]:
    """``(has a body, its Content-Length if declared)``. Without ``Content-Length`` or
    ``Transfer-Encoding`` an HTTP/1.1 request has no body (RFC 9112 §6.3)."""
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
            if length is None:
                return True, None
        elif name == b"transfer-encoding":
            chunked = True
    if length is not None:
        return length > 0, length
    return chunked, None


@dataclass(slots=True)
class _Read:
    deadline: float
    expired: bool = False


class BodyReader:
    """Reads bodies within their rules. One watchdog task keeps every deadline (waking
    each :data:`WATCH_EVERY` seconds while a read is under way) instead of a timer per
    request: a read costs a dict entry, which keeps the proxy's hot path as cheap as it
    was; a deadline is kept to within that tick."""

    def __init__(self, tick: float = WATCH_EVERY) -> None:
        self.tick = tick
        self._reads: dict[asyncio.Task[Any], _Read] = {}
        self._watchdog: asyncio.Task[None] | None = None

    async def read(self, receive: Receive, rules: BodyRules, length: int | None) -> bytes:
        """The whole body, within ``rules``: raises :class:`BodyTooLarge` (before reading
        when ``length`` already says so), :class:`BodyTimeout` or :class:`BodyAbandoned`."""
        if length is not None and length > rules.limit:
            raise BodyTooLarge()
        task = asyncio.current_task()
        assert task is not None
        start = task.get_loop().time()
        read = self._reads[task] = _Read(start + rules.timeout)
        if self._watchdog is None:
            self._watchdog = task.get_loop().create_task(self._watch())
        parts: list[bytes] = []
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise BodyAbandoned()
                chunk: bytes = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > rules.limit:
                        raise BodyTooLarge()
                    parts.append(chunk)
                if not message.get("more_body", False):
                    break
                read.deadline = start + rules.timeout + size / rules.min_rate
        except asyncio.CancelledError:
            # The watchdog's own cancellation, and no one else's, is a timeout.
            if read.expired and task.uncancel() == 0:
                raise BodyTimeout() from None
            raise
        finally:
            del self._reads[task]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _watch(self) -> None:
        """Cancel the reads past their deadline, until none is under way."""
        try:
            while self._reads:
                await asyncio.sleep(self.tick)
                now = asyncio.get_running_loop().time()
                for task, read in list(self._reads.items()):
                    if read.deadline <= now and not read.expired:
                        read.expired = True
                        task.cancel()
        finally:
            self._watchdog = None


class ContentTooLarge(InvalidRequest):
    """RFC 9110 §15.5.14, in the RFC 6749 §5.2 shape."""

    status_code = 413


class BodyTimedOut(InvalidRequest):
    """RFC 9110 §15.5.9 Request Timeout, in the RFC 6749 §5.2 shape."""

    status_code = 408


class UnsupportedMediaType(InvalidRequest):
    """RFC 9110 §15.5.16, in the RFC 6749 §5.2 shape."""

    status_code = 415


class BodyLimits:
    """ASGI layer reading every page and protocol body ahead, within its endpoint's rules.

    The route then reads the bytes read here; nothing past the bound is ever buffered.
    Requests without a body (GET, the static files) pass straight through.
    """

    def __init__(self, app: ASGIApp, vault: Vault) -> None:
        self.app = app
        self.vault = vault
        settings = vault.settings
        timeout, rate = settings.body_timeout_seconds, settings.body_min_bytes_per_second
        self.form_rules = BodyRules(settings.form_max_body_bytes, timeout, rate)
        self.protocol_rules = BodyRules(settings.protocol_max_body_bytes, timeout, rate)
        self.reader = BodyReader()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body, length = declared_body(scope)
        if not has_body:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        protocol = path.startswith(PROTOCOL_PREFIXES)
        rules = self.protocol_rules if protocol else self.form_rules
        refusal: InvalidRequest | None = None
        if _is_multipart(scope):
            refusal = UnsupportedMediaType(
                "body: multipart/form-data is not accepted here; send the form "
                "as application/x-www-form-urlencoded"
            )
        else:
            try:
                body = await self.reader.read(receive, rules, length)
            except BodyAbandoned:
                return  # nobody to answer
            except BodyTooLarge:
                refusal = ContentTooLarge(f"body: larger than {rules.describe_limit()}")
            except BodyTimeout:
                refusal = BodyTimedOut("body: not received in time")
        if refusal is not None:
            await self.refuse(path, refusal)(scope, receive, send)
            return
        if body and path.startswith(API_PREFIX):
            problem = _not_ijson(scope, body)
            if problem is not None:
                await render_problem(problem, path)(scope, _replay(body, receive), send)
                return
        await self.app(scope, _replay(body, receive), send)

    def refuse(self, path: str, exc: InvalidRequest) -> Response:
        """The refusal in the endpoint's style, closing the connection."""
        if path.startswith(API_PREFIX):  # the JSON API: RFC 9457 problem details
            problem = BODY_REFUSALS[exc.status_code](str(exc.description))
            answer = render_problem(problem, path)
            answer.headers.update(CLOSE)
            return answer
        if path.startswith(PROTOCOL_PREFIXES):
            status, body, headers = render(exc, okap=path.startswith("/okap/"))
            return JSONResponse(body, status_code=status, headers={**headers, **CLOSE})
        html = self.vault.templates.get_template("error.html").render(
            request_path=path,
            signed_in=None,
            csrf_token="",
            title=_PAGE_TITLES[exc.status_code],
            message=_PAGE_MESSAGES[exc.status_code],
        )
        return HTMLResponse(html, status_code=exc.status_code, headers={**NO_STORE, **CLOSE})


_PAGE_TITLES = {
    408: "The form took too long to arrive",
    413: "The form is too large",
    415: "The form was not sent as a form",
}
_PAGE_MESSAGES = {
    408: "Your browser did not finish sending the form in time. Nothing was changed. "
    "Go back and try again.",
    413: "What was sent is larger than this vault accepts for a form. Nothing was changed.",
    415: "File uploads are not accepted here. Nothing was changed.",
}


def _not_ijson(scope: Scope, body: bytes) -> Invalid | None:
    """The problem with an API body that is not I-JSON (RFC 7493); None when it is."""
    content_type = ""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
    try:
        check_charset(content_type)
        read_object(body)
    except NotIJson as exc:
        return Invalid(f"body: {exc}", field="body")
    return None


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value[:10].lower() == b"multipart/")
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read ahead, then waits on the real one (for the
    client's disconnect, which long-polls watch)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
