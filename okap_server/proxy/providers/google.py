"""The Gemini API (Google AI for developers), alias ``gemini``.

Token: ``x-goog-api-key`` as ``google-genai`` sends it, or ``?key=`` as older clients and
curl examples do. Model: the path, ``{version}/models/{model}:{method}``, any API version.
Usage: ``usageMetadata`` in the answer and in every streamed chunk (cumulative). Errors:
``{"error": {"code", "message", "status", "details"}}`` (google.rpc.Status).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from okap_server.proxy.providers.base import (
    Adapter,
    Collection,
    Route,
    StreamObserver,
    Usage,
    as_int,
    bearer,
    load_json_object,
    pick_token,
)

_VERSION = re.compile(r"^v\d+[a-z0-9]*$")

# ``models/{model}:{method}`` → (capability, billable, streams)
_METHODS: dict[str, tuple[str, bool, bool]] = {
    "generateContent": ("chat", True, False),
    "streamGenerateContent": ("chat", True, True),
    "generateAnswer": ("chat", True, False),
    "countTokens": ("chat", False, False),
    "embedContent": ("embeddings", True, False),
    "batchEmbedContents": ("embeddings", True, False),
    "asyncBatchEmbedContent": ("batch", False, False),
    "batchGenerateContent": ("batch", False, False),
    "predict": ("images", True, False),
    "predictLongRunning": ("images", True, False),
}

# The organisation's stored objects, named ``{collection}/{id}`` in answers and bodies. An
# upload answers ``{"file": {...}}``; a batch names the file its results are written to.
_COLLECTIONS: dict[str, Collection] = {
    "files": Collection(("files",), owns=("name", "file.name"), prefix="files/"),
    "cachedContents": Collection(("cachedContents",), owns=("name",), prefix="cachedContents/"),
    "batches": Collection(
        ("batches",),
        owns=("name", "response.responsesFile", "metadata.output.responsesFile"),
        prefix="batches/",
    ),
}
# ``models/{m}:{method}`` calls that create a stored batch (a long-running operation).
_CREATES_BATCH = frozenset({"batchGenerateContent", "asyncBatchEmbedContent"})
_FILE_URI = re.compile(r"(?:^|/)(files/[^/?#]+)$")

_STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_TAIL_NUMBERS = re.compile(
    rb'"(promptTokenCount|candidatesTokenCount|cachedContentTokenCount|'
    rb'thoughtsTokenCount|toolUsePromptTokenCount)"\s*:\s*(\d+)'
)


def usage_from_google(meta: Any) -> Usage | None:
    """Thinking tokens are billed as output; tool-use prompt tokens as input."""
    if not isinstance(meta, dict):
        return None
    return Usage(
        input_tokens=as_int(meta.get("promptTokenCount"))
        + as_int(meta.get("toolUsePromptTokenCount")),
        output_tokens=as_int(meta.get("candidatesTokenCount"))
        + as_int(meta.get("thoughtsTokenCount")),
        cached_tokens=as_int(meta.get("cachedContentTokenCount")),
    )


class GoogleStreamObserver(StreamObserver):
    def observe(self, data: bytes) -> bool:
        if b'"usageMetadata"' not in data and b'"finishReason"' not in data:
            return True
        event = load_json_object(data)
        if event is None:
            return True
        usage = usage_from_google(event.get("usageMetadata"))
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage.merged(usage)
        candidates = event.get("candidates")
        if isinstance(candidates, list) and any(
            isinstance(c, dict) and c.get("finishReason") for c in candidates
        ):
            self.complete = True
        return True

    def observe_tail(self, tail: bytes) -> None:
        """A stream without ``alt=sse`` is one JSON array; read the last figures seen."""
        found: dict[str, int] = {}
        for name, value in _TAIL_NUMBERS.findall(tail):
            found[name.decode()] = int(value)
        if found:
            self.usage = usage_from_google(found)
            self.complete = b'"finishReason"' in tail


class GoogleAdapter(Adapter):
    family = "google"
    # A context cache to answer from; a file (its URI) in a prompt.
    reference_keys = frozenset({"cachedContent", "fileUri"})
    reference_needles = (b"cachedContent", b"fileUri")

    def object_name(self, value: str) -> str | None:
        """``files/{id}`` for a Files API URI; None for any other URL (a public video, a
        Cloud Storage object), which is not the organisation's store."""
        found = _FILE_URI.search(value)
        if found is not None:
            return found.group(1)
        return None if "://" in value else value

    def client_token(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return pick_token(headers.get("x-goog-api-key"), query.get("key"), bearer(headers))

    def route(self, method: str, path: str, body: dict[str, Any] | None) -> Route:
        parts = path.split("/")
        if parts and parts[0] == "upload":
            parts = parts[1:]
        if not parts or not _VERSION.match(parts[0]):
            return Route(None)
        resource = parts[1:]
        if not resource:
            return Route(None)
        collection = _COLLECTIONS.get(resource[0])
        if collection is not None:
            access = collection.route_fields(method, resource[1:], body)
            if resource[0] == "files":
                return Route("files", **access)
            if resource[0] == "cachedContents":
                return Route("chat", **access)
            return Route("batch", **access)
        if resource[0] != "models":
            return Route(None)
        if len(resource) == 1:
            return Route(None, always_allowed=method == "GET")
        model, _, verb = "/".join(resource[1:]).partition(":")
        if not verb:
            return Route(None, model=model, always_allowed=method == "GET")
        found = _METHODS.get(verb)
        if found is None:
            return Route(None, model=model)
        capability, billable, streams = found
        return Route(
            capability,
            model=model,
            billable=billable and method == "POST",
            stream=streams,
            max_output_fields=("maxOutputTokens",) if capability == "chat" else (),
            owns=("name",) if verb in _CREATES_BATCH and method == "POST" else (),
        )

    def requested_max_output(self, route: Route, body: dict[str, Any]) -> int | None:
        config = body.get("generationConfig")
        if not isinstance(config, dict) or not route.max_output_fields:
            return None
        value = config.get("maxOutputTokens")
        return value if isinstance(value, int) and value > 0 else None

    def set_max_output(self, route: Route, body: dict[str, Any], value: int) -> None:
        if not route.max_output_fields:
            return
        config = body.get("generationConfig")
        if not isinstance(config, dict):
            config = body["generationConfig"] = {}
        config["maxOutputTokens"] = value

    def usage_from_json(self, body: dict[str, Any]) -> Usage | None:
        return usage_from_google(body.get("usageMetadata"))

    def stream_observer(self, *, injected_usage: bool) -> StreamObserver:
        return GoogleStreamObserver()

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {
            "error": {
                "code": status,
                "message": message,
                "status": _STATUS_NAMES.get(status, "UNKNOWN"),
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": code,
                        "domain": "okap",
                    }
                ],
            }
        }
