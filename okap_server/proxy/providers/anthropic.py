"""The Anthropic Messages API.

Token: ``x-api-key``, or ``Authorization: Bearer`` as recent SDK releases send an auth token.
Model: the JSON ``model`` field. Usage: ``usage`` in the answer; in a stream,
``message_start`` (input) and ``message_delta`` (output). Errors:
``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from okap_server.proxy.providers.base import (
    Adapter,
    Demand,
    Route,
    StreamObserver,
    Usage,
    bearer,
    load_json_object,
    members,
    pick_token,
    watch,
)
from okap_server.proxy.providers.reported import usage_from_anthropic
from okap_server.proxy.providers.stored import Collection

_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


# The organisation's stored objects (Message Batches, Files). A batch's results are read
# under its own path (``batches/{id}/results``).
_BATCHES = Collection(("batches",))
_FILES = Collection(("files",))

# The top-level members whose reading decides scope or cost.
_WATCHED = watch(
    "model", "stream", "max_tokens", "max_tokens_to_sample", "tools", "mcp_servers", "requests"
)
# Tools Anthropic defines but the app runs (bash, text editor, computer use, memory): each
# adds its own prompt, up to 1,234 tokens for computer use (docs.anthropic.com, tool use).
_DEFINED_CLIENT_TOOLS = ("bash_", "text_editor_", "computer_", "memory_")
DEFINED_TOOL_TOKENS = 2_000
# Any tool use adds a system prompt of up to 346 tokens.
TOOL_USE_TOKENS = 500


class AnthropicStreamObserver(StreamObserver):
    def observe(self, data: bytes) -> bool:
        if b'"message_stop"' in data:
            self.complete = True
            return True
        if b'"usage"' not in data:
            return True
        event = load_json_object(data)
        if event is None:
            return True
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            usage = usage_from_anthropic(event["message"].get("usage"))
        elif kind == "message_delta":
            usage = usage_from_anthropic(event.get("usage"))
        else:
            usage = None
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage.merged(usage)
        return True


class AnthropicAdapter(Adapter):
    family = "anthropic"
    # A document or image read from the Files API.
    # A file in a prompt; a code execution container to reuse (``"container": id`` or
    # ``{"id": ...}``): its files are the app's that made it.
    reference_keys = frozenset({"file_id", "container"})
    reference_needles = (b"file_id", b"container")

    def client_token(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return pick_token(headers.get("x-api-key"), bearer(headers))

    def route(self, method: str, path: str, body: dict[str, Any] | None) -> Route:
        parts = path.split("/")
        fields = members(body, _WATCHED) if body else {}
        model = fields.get("model")
        model = model if isinstance(model, str) else None
        resource = parts[1] if len(parts) > 1 and parts[0] == "v1" else ""
        rest = parts[2:]
        posts = method not in ("GET", "HEAD", "DELETE")
        if resource == "models":
            return Route(None, always_allowed=method == "GET")
        if resource == "messages":
            if rest and rest[0] == "batches":
                access = _BATCHES.route_fields(method, rest[1:], body)
                if not posts or rest[-1] == "cancel":
                    return Route("batch", **access)
                models, unseen = _batch_models(fields.get("requests"))
                return Route(
                    "batch",
                    unbounded="message batches (they run later, at a price the vault does "
                    "not hold in advance)",
                    models=models,
                    models_unseen=unseen,
                    **access,
                )
            if rest == ["count_tokens"]:
                return Route("chat", model=model)
            if rest:
                return Route(None, model=model)
            return Route(
                "chat",
                model=model,
                billable=posts,
                stream=fields.get("stream") is True,
                max_output_fields=("max_tokens",),
                owns=("container.id",) if posts else (),
            )
        if resource == "complete" and not rest:
            return Route(
                "completions",
                model=model,
                billable=posts,
                stream=fields.get("stream") is True,
                max_output_fields=("max_tokens_to_sample",),
            )
        if resource == "files":
            return Route("files", **_FILES.route_fields(method, rest, body))
        return Route(None, model=model)

    def demand(self, route: Route, body: dict[str, Any]) -> Demand:
        fields = members(body, _WATCHED)
        demand = Demand()
        tools = fields.get("tools")
        if isinstance(tools, list) and tools:
            demand.extra_input = TOOL_USE_TOKENS
            for tool in tools:
                kind = tool.get("type") if isinstance(tool, dict) else "?"
                if kind is None or kind == "custom":
                    continue
                if isinstance(kind, str) and kind.startswith(_DEFINED_CLIENT_TOOLS):
                    demand.extra_input += DEFINED_TOOL_TOKENS
                else:
                    demand.unbounded = f"tools Anthropic runs itself ('{str(kind)[:40]}')"
        if fields.get("mcp_servers"):
            demand.unbounded = "remote MCP servers (their results are billed as input)"
        return demand

    def usage_from_json(self, body: dict[str, Any]) -> Usage | None:
        return usage_from_anthropic(body.get("usage"))

    def stream_observer(self, *, injected_usage: bool) -> StreamObserver:
        return AnthropicStreamObserver()

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message, "code": code}}


def _batch_models(requests: Any) -> tuple[tuple[str, ...], bool]:
    """Every model a batch's requests name, and whether one names none the vault can read."""
    models: list[str] = []
    unseen = not isinstance(requests, list)
    for item in requests if isinstance(requests, list) else ():
        params = item.get("params") if isinstance(item, dict) else None
        model = params.get("model") if isinstance(params, dict) else None
        if isinstance(model, str):
            models.append(model)
        else:
            unseen = True
    return tuple(dict.fromkeys(models)), unseen
