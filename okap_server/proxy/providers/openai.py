"""The OpenAI API family: OpenAI itself and every OpenAI-compatible provider row.

Token: ``Authorization: Bearer``. Model: the JSON ``model`` field. Usage: ``usage`` in the
answer; in a stream, the last chunk when ``stream_options.include_usage`` is set, or the
``response.completed`` event of the Responses API. Errors:
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

from typing import Any

from okap_server.proxy.providers.base import (
    Adapter,
    Collection,
    Route,
    StreamObserver,
    Usage,
    as_int,
    load_json_object,
    owned_ids,
)

# First path segment → (capability, billable). Paths are relative to the upstream base,
# which already ends in the API version (``https://api.openai.com/v1``).
_ENDPOINTS: dict[str, tuple[str, bool]] = {
    "chat": ("chat", True),
    "responses": ("chat", True),
    "completions": ("completions", True),
    "fim": ("completions", True),
    "embeddings": ("embeddings", True),
    "images": ("images", True),
    "audio": ("audio", True),
    "moderations": ("moderation", False),
    "files": ("files", False),
    "uploads": ("files", False),
    "batches": ("batch", False),
}

# The organisation's stored objects, by first path segment. A chat completion is stored only
# when asked (``"store": true``), a response unless asked not to; a batch names the files it
# writes, and a completed upload the file it made.
_COLLECTIONS: dict[str, Collection] = {
    "chat": Collection(("chat", "completions"), stored=False),
    "responses": Collection(
        ("responses",), stored=True, actions=frozenset({"input_tokens", "compact"})
    ),
    "files": Collection(("files",)),
    "uploads": Collection(("uploads",), owns=("id", "file.id")),
    "batches": Collection(("batches",), owns=("id", "output_file_id", "error_file_id")),
}

# Body keys naming stored objects a request reads: a conversation to continue, a file to
# read, the input of a batch, the vector stores to search.
_REFERENCES = frozenset(
    {
        "previous_response_id",
        "conversation",
        "file_id",
        "file_ids",
        "input_file_id",
        "vector_store_ids",
    }
)

_OUTPUT_FIELDS: dict[str, tuple[str, ...]] = {
    "chat": ("max_completion_tokens", "max_tokens"),
    "responses": ("max_output_tokens",),
    "completions": ("max_tokens",),
    "fim": ("max_tokens",),
}


def usage_from_openai(usage: Any) -> Usage | None:
    """Chat/completions/embeddings name tokens ``prompt_``/``completion_``; the Responses
    API and images name them ``input_``/``output_``."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    cached = as_int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=as_int(usage.get("prompt_tokens", usage.get("input_tokens"))),
        output_tokens=as_int(usage.get("completion_tokens", usage.get("output_tokens"))),
        cached_tokens=cached,
    )


class OpenAIStreamObserver(StreamObserver):
    def __init__(self, *, injected_usage: bool) -> None:
        super().__init__()
        self.injected_usage = injected_usage

    def observe(self, data: bytes) -> bool:
        if data == b"[DONE]":
            self.complete = True
            return True
        if self.owns and not self.owned and b'"id"' in data:
            started = load_json_object(data)  # a chat chunk, or ``response.created``
            if started is not None:
                inner = started.get("response")
                self.owned = owned_ids(inner if isinstance(inner, dict) else started, self.owns)
        if b'"usage"' not in data:
            return True
        event = load_json_object(data)
        if event is None:
            return True
        if event.get("type") == "response.completed":
            response = event.get("response")
            if isinstance(response, dict):
                self.usage = usage_from_openai(response.get("usage"))
                self.complete = self.usage is not None
            return True
        usage = usage_from_openai(event.get("usage"))
        if usage is None:
            return True
        self.usage = usage
        self.complete = True
        # The usage-only chunk the vault asked for: the app did not, so it never sees it.
        return not (self.injected_usage and not event.get("choices"))


class OpenAIAdapter(Adapter):
    family = "openai"
    reference_keys = _REFERENCES
    reference_needles = (b"_id", b"conversation")

    def route(self, method: str, path: str, body: dict[str, Any] | None) -> Route:
        first, _, rest = path.partition("/")
        model = body.get("model") if body else None
        model = model if isinstance(model, str) else None
        if first == "models":
            return Route(None, model=rest or None, always_allowed=method == "GET")
        found = _ENDPOINTS.get(first)
        if found is None:
            return Route(None, model=model)
        capability, billable = found
        creates = method == "POST" and (rest in ("", "completions") or first in ("images", "audio"))
        if first == "responses" and rest == "input_tokens":
            creates = billable = False
        fields = _OUTPUT_FIELDS.get(first, ())
        if self.provider != "openai" and "max_tokens" in fields:
            fields = ("max_tokens", *[f for f in fields if f != "max_tokens"])
        collection = _COLLECTIONS.get(first)
        access = collection.match(method, path, body) if collection is not None else {}
        return Route(
            capability,
            model=model,
            billable=billable and creates,
            stream=bool(body and body.get("stream") is True),
            max_output_fields=fields,
            **access,
        )

    def __init__(self, provider: str, *, stream_usage_option: bool = True) -> None:
        super().__init__(provider)
        self.stream_usage_option = stream_usage_option

    def prepare_stream(self, body: dict[str, Any]) -> bool:
        if not self.stream_usage_option:
            return False  # this upstream reports stream usage unasked
        if "messages" not in body and "prompt" not in body:
            return False  # the Responses API always reports usage in response.completed
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            return False
        body["stream_options"] = {**(options if isinstance(options, dict) else {})}
        body["stream_options"]["include_usage"] = True
        return True

    def usage_from_json(self, body: dict[str, Any]) -> Usage | None:
        return usage_from_openai(body.get("usage"))

    def stream_observer(self, *, injected_usage: bool) -> StreamObserver:
        return OpenAIStreamObserver(injected_usage=injected_usage)

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": code, "param": None, "code": code}}
