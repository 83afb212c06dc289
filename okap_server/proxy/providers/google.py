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

from okap_server.proxy.ijson import JsonBody
from okap_server.proxy.providers.base import (
    Adapter,
    AmbiguousMember,
    Demand,
    Route,
    StreamObserver,
    Usage,
    bearer,
    load_json_object,
    members,
    pick_token,
    read_count,
    watch,
)
from okap_server.proxy.providers.reported import last_usage_metadata, usage_from_google
from okap_server.proxy.providers.stored import Collection
from okap_server.proxy.spelling import protobuf_names, protobuf_spellings

_VERSION = re.compile(r"^v\d+[a-z0-9]*$")

PRICED, FREE = "priced", "free"
_BATCHES = "batches (they run later, at a price the vault does not hold in advance)"

# ``models/{model}:{method}`` → (capability, cost of a POST, streams). A cost other than
# PRICED or FREE says why the vault cannot bound it: refused under a spend limit.
_METHODS: dict[str, tuple[str, str, bool]] = {
    "generateContent": ("chat", PRICED, False),
    "streamGenerateContent": ("chat", PRICED, True),
    "generateAnswer": ("chat", PRICED, False),
    "countTokens": ("chat", FREE, False),
    "embedContent": ("embeddings", PRICED, False),
    "batchEmbedContents": ("embeddings", PRICED, False),
    "asyncBatchEmbedContent": ("batch", _BATCHES, False),
    "batchGenerateContent": ("batch", _BATCHES, False),
    "predict": ("images", "image generation (billed per image)", False),
    "predictLongRunning": ("images", "video generation (billed per second)", False),
}
# Top-level resources other than models: (capability, cost of a POST/PATCH).
_RESOURCES: dict[str, tuple[str, str]] = {
    "files": ("files", FREE),
    "cachedContents": ("chat", "cached contents (stored and billed by the hour)"),
    "batches": ("batch", _BATCHES),
}

# protobuf's JSON reader takes a field's lowerCamelCase name or its snake_case one.
_WATCHED = watch(*map(protobuf_spellings, ("model", "generationConfig", "cachedContent", "tools")))
_CONFIG = watch(
    *map(
        protobuf_spellings,
        ("maxOutputTokens", "candidateCount", "responseModalities", "speechConfig"),
    )
)
_AUDIO_OUT = "audio output (billed per audio token, at rates the vault does not hold)"
# The only tool the app runs itself; every other (Google Search, code execution, URL
# context, file search, Maps) runs at Google, billed per use and re-reading the context.
_CLIENT_TOOLS = frozenset({"functionDeclarations", "function_declarations"})


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
    rb'thoughtsTokenCount|toolUsePromptTokenCount|totalTokenCount)"\s*:\s*(\d+)'
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
        """A stream without ``alt=sse`` is one JSON array: read its last whole
        ``usageMetadata``, else (cut mid-object) the last figures seen."""
        meta = last_usage_metadata(tail)
        if meta is not None:
            self.usage = usage_from_google(meta)
            self.complete = b'"finishReason"' in tail
            return
        found: dict[str, int] = {}
        for name, value in _TAIL_NUMBERS.findall(tail):
            found[name.decode()] = int(value)
        if found:
            self.usage = usage_from_google(found)
            self.complete = b'"finishReason"' in tail


class GoogleAdapter(Adapter):
    family = "google"
    # A context cache to answer from; a file (its URI) in a prompt; a batch's input file;
    # File Search stores (no capability makes one, so naming any is refused). Under both
    # spellings protobuf's JSON reader accepts.
    reference_keys = protobuf_names("cachedContent", "fileUri", "fileName", "fileSearchStoreNames")
    reference_needles = tuple(sorted(key.encode() for key in reference_keys))
    # System parameters choosing which fields the answer keeps (``?fields=``, ``$fields``,
    # ``X-Goog-FieldMask``): the vault reads the usage from the answer.
    answer_shaping_query = frozenset({"fields", "$fields"})
    answer_shaping_headers = frozenset({"x-goog-fieldmask"})

    def object_name(self, value: str) -> str | None:
        """``files/{id}`` for a Files API URI; None for any other URL (a public video, a
        Cloud Storage object), which is not the organisation's store."""
        found = _FILE_URI.search(value)
        if found is not None:
            return found.group(1)
        return None if "://" in value else value

    def takes_raw_body(self, path: str) -> bool:
        """A media upload (``upload/{v}/files``) sends the file's bytes as they are."""
        return path.startswith("upload/")

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
        posts = method not in ("GET", "HEAD", "DELETE")
        found = _RESOURCES.get(resource[0])
        if found is not None:
            capability, cost = found
            collection = _COLLECTIONS.get(resource[0])
            access = (
                collection.route_fields(method, resource[1:], body)
                if collection is not None
                else {}
            )
            if not posts or cost == FREE or resource[-1].endswith(":cancel"):
                return Route(capability, **access)
            model = _model_name(members(body, _WATCHED).get("model") if body else None)
            return Route(capability, model=model, unbounded=cost, **access)
        if resource[0] != "models":
            return Route(None)
        if len(resource) == 1:
            return Route(None, always_allowed=method == "GET")
        model, _, verb = "/".join(resource[1:]).partition(":")
        if not verb:
            return Route(None, model=model, always_allowed=method == "GET")
        known = _METHODS.get(verb)
        if known is None:
            return Route(None, model=model)
        capability, cost, streams = known
        if not posts:
            cost = FREE
        named = body.facts.models if isinstance(body, JsonBody) and cost == _BATCHES else []
        return Route(
            capability,
            model=model,
            billable=cost == PRICED,
            stream=streams,
            max_output_fields=("maxOutputTokens",) if capability == "chat" else (),
            owns=("name",) if verb in _CREATES_BATCH and method == "POST" else (),
            unbounded=None if cost in (PRICED, FREE) else cost,
            models=tuple(dict.fromkeys(n for m in named if (n := _model_name(m)))),
        )

    def _config(self, body: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """``generationConfig`` under whichever spelling the body uses, and its members."""
        for name in ("generationConfig", "generation_config"):
            config = body.get(name)
            if name in body:
                members(body, _WATCHED)  # refuses both spellings at once
                if not isinstance(config, dict):
                    raise AmbiguousMember(f"The request's '{name}' is not an object.")
                return name, members(config, _CONFIG)
        return None, {}

    def requested_max_output(self, route: Route, body: dict[str, Any]) -> int | None:
        if not route.max_output_fields:
            return None
        value = read_count(self._config(body)[1].get("maxOutputTokens"))
        return value if value is not None and value > 0 else None

    def set_max_output(self, route: Route, body: dict[str, Any], value: int) -> None:
        if not route.max_output_fields:
            return
        name, _ = self._config(body)
        config = body[name] if name else body.setdefault("generationConfig", {})
        spelling = "max_output_tokens" if "max_output_tokens" in config else "maxOutputTokens"
        config[spelling] = value

    def demand(self, route: Route, body: dict[str, Any]) -> Demand:
        fields = members(body, _WATCHED)
        config = self._config(body)[1]
        demand = Demand()
        count = config.get("candidateCount")
        if count is not None:
            answers = read_count(count)
            if answers is None:
                raise AmbiguousMember("The request's 'candidateCount' is not an integer.")
            demand.answers = max(answers, 1)
        modalities = config.get("responseModalities")
        asked = modalities if isinstance(modalities, list) else [modalities]
        if config.get("speechConfig") is not None or any(str(m).upper() == "AUDIO" for m in asked):
            demand.unbounded = _AUDIO_OUT
        if fields.get("cachedContent") is not None:
            demand.references.append("cachedContent")
        tools = fields.get("tools")
        for tool in tools if isinstance(tools, list) else ():
            extra = set(tool) - _CLIENT_TOOLS if isinstance(tool, dict) else {"?"}
            if extra:
                demand.unbounded = f"tools Google runs itself ('{sorted(extra)[0][:40]}')"
        return demand

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


def _model_name(value: Any) -> str | None:
    """A model as the allow-list names it: ``models/gemini-2.5-flash`` → ``gemini-2.5-flash``."""
    if not isinstance(value, str):
        return None
    return value.removeprefix("models/")
