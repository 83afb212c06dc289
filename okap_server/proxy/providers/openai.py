"""The OpenAI API family: OpenAI itself and every OpenAI-compatible provider row.

Token: ``Authorization: Bearer``. Model: the JSON ``model`` field. Usage: ``usage`` in the
answer; in a stream, the last chunk when ``stream_options.include_usage`` is set, or the
``response.completed`` event of the Responses API. Errors:
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from okap_server.proxy.providers.base import (
    Adapter,
    AmbiguousMember,
    Demand,
    Route,
    StreamObserver,
    Usage,
    load_json_object,
    members,
    read_count,
    watch,
)
from okap_server.proxy.providers.reported import usage_from_openai
from okap_server.proxy.providers.stored import Collection, owned_ids

# First path segment → capability. Paths are relative to the upstream base, which already
# ends in the API version (``https://api.openai.com/v1``).
_CAPABILITIES: dict[str, str] = {
    "chat": "chat",
    "responses": "chat",
    "completions": "completions",
    "fim": "completions",
    "embeddings": "embeddings",
    "images": "images",
    "audio": "audio",
    "moderations": "moderation",
    "files": "files",
    "uploads": "files",
    "batches": "batch",
}

# What a POST (or PUT/PATCH) costs, by first segment and the rest of the path (``*`` is
# one or more segments). Not listed: it may cost money in a way the vault cannot bound,
# so it is refused under a spend limit (GET and DELETE read or delete the app's objects).
PRICED, FREE = "priced", "free"
_POSTS: dict[str, tuple[tuple[str, str], ...]] = {
    "chat": (("completions", PRICED), ("completions/*", FREE)),  # the second: metadata
    "responses": (("", PRICED), ("input_tokens", FREE), ("*/cancel", FREE)),
    "completions": (("", PRICED),),
    "fim": (("completions", PRICED),),
    "embeddings": (("", PRICED),),
    "images": (("generations", PRICED), ("edits", PRICED), ("variations", PRICED)),
    "moderations": (("", PRICED),),  # free at OpenAI itself; billed by others (Mistral)
    "files": (("", FREE), ("*", FREE)),
    "uploads": (("", FREE), ("*", FREE)),
    "batches": (("*/cancel", FREE),),
}
# Why an endpoint that is not priced cannot be bounded, for the refusal's message.
_UNBOUNDED: dict[str, str] = {
    "audio": "audio endpoints (billed by the second or by the character)",
    "batches": "batches (they run later, on requests in a file the vault does not read)",
}

# The organisation's stored objects, by first path segment. A chat completion is stored only
# when asked (``"store": true``), a response unless asked not to; a batch names the files it
# writes, and a completed upload the file it made.
_COLLECTIONS: dict[str, Collection] = {
    "chat": Collection(
        ("chat", "completions"), stored=False, owns_always=("choices.*.message.audio.id",)
    ),
    "responses": Collection(
        ("responses",),
        stored=True,
        actions=frozenset({"input_tokens", "compact"}),
        owns_always=("output.*.id", "output.*.container_id"),
    ),
    "files": Collection(("files",)),
    "uploads": Collection(("uploads",), owns=("id", "file.id")),
    "batches": Collection(("batches",), owns=("id", "output_file_id", "error_file_id")),
}

# Body keys naming stored objects a request reads: a conversation to continue, a file to
# read, the input of a batch, the vector stores to search, an earlier audio answer
# (``{"audio": {"id": ...}}`` in an assistant message; the audio output config has no id),
# a code interpreter's container (its files; ``{"type": "auto"}`` makes a new one).
_REFERENCES = frozenset(
    {
        "previous_response_id",
        "conversation",
        "file_id",
        "file_ids",
        "input_file_id",
        "vector_store_ids",
        "audio",
        "container",
    }
)
# Input items the provider looks up by id: an ``item_reference``, and a reasoning item
# (read from the store when it comes without its encrypted content). Owned when this
# grant's response produced them (``output.*.id``, stored or not: the app passes its own
# output back).
_REFERENCE_TYPES = MappingProxyType({"item_reference": "id", "reasoning": "id"})

_OUTPUT_FIELDS: dict[str, tuple[str, ...]] = {
    "chat": ("max_completion_tokens", "max_tokens"),
    "responses": ("max_output_tokens",),
    "completions": ("max_tokens",),
    "fim": ("max_tokens",),
}

# The top-level members whose reading decides scope or cost, spelled as the API spells them.
_WATCHED = watch(
    "model", "stream", "n", "best_of", "prompt", "max_tokens", "max_completion_tokens",
    "max_output_tokens", "tools", "previous_response_id", "conversation", "service_tier",
    "web_search_options", "prediction", "partial_images", "image", "images", "mask",
    "modalities", "audio",
)  # fmt: skip
# Models billed beyond their tokens on every call, by a part of their name: refused under
# a spend limit, as the feature they stand for is.
_PER_CALL_MODELS: tuple[tuple[str, str], ...] = (
    ("-search-preview", "a search model (it searches, billed per call, on every request)"),
    ("-search-api", "a search model (it searches, billed per call, on every request)"),
)
_AUDIO_OUT = "audio output (billed per audio token, at rates the vault does not hold)"
# Tools the app runs itself; every other type runs at the provider (web and file search,
# code interpreter, image generation, remote MCP), billed per call and re-reading the
# context on each turn: a cost the vault cannot bound.
_CLIENT_TOOLS = frozenset(
    {"function", "custom", "local_shell", "shell", "apply_patch", "computer_use_preview"}
)
# Service tiers billed at the price table's rates or less.
_LISTED_TIERS = frozenset({"auto", "default", "flex"})
# gpt-image-1's largest image (1536x1024 or 1024x1536 at high quality) is 6,240 output
# tokens; each streamed partial image adds 100 (platform.openai.com, image generation).
IMAGE_OUTPUT_TOKENS = 6_240
PARTIAL_IMAGE_TOKENS = 100
# An input image of an edit: up to ~6,900 tokens at high input fidelity, billed at twice
# the text input rate the price table lists, so counted as this many text tokens.
EDIT_IMAGE_INPUT_TOKENS = 14_000
MAX_EDIT_IMAGES = 16


def post_cost(first: str, rest: str) -> str | None:
    """PRICED, FREE, or None: a POST to this path is not one the vault can bound."""
    for pattern, cost in _POSTS.get(first, ()):
        if pattern == "*":
            hit = bool(rest)
        elif pattern.endswith("/*"):
            hit = rest.startswith(pattern[:-1])
        elif pattern.startswith("*/"):
            hit = rest.endswith(pattern[1:])
        else:
            hit = rest == pattern
        if hit:
            return cost
    return None


class OpenAIStreamObserver(StreamObserver):
    def __init__(self, *, injected_usage: bool) -> None:
        super().__init__()
        self.injected_usage = injected_usage
        self.id_read = False  # the first event naming an id was read for owned ids

    def observe(self, data: bytes) -> bool:
        if data == b"[DONE]":
            self.complete = True
            return True
        if self.owns and not self.id_read and b'"id"' in data:
            self.id_read = True
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
                self.usage = usage_from_openai(response.get("usage"), output=response.get("output"))
                self.complete = self.usage is not None
                if self.owns:  # the output items are named only now
                    seen = self.owned + owned_ids(response, self.owns)
                    self.owned = list(dict.fromkeys(seen))
            return True
        kind = event.get("type")
        images = isinstance(kind, str) and kind.startswith("image_")  # image_edit.completed
        usage = usage_from_openai(event.get("usage"), images=images, model=event.get("model"))
        if usage is None:
            return True
        self.usage = usage
        self.complete = True
        # The usage-only chunk the vault asked for: the app did not, so it never sees it.
        return not (self.injected_usage and not event.get("choices"))


class OpenAIAdapter(Adapter):
    family = "openai"
    reference_keys = _REFERENCES
    reference_types = _REFERENCE_TYPES
    reference_needles = (
        b"_id", b"conversation", b"audio", b"item_reference", b"reasoning", b"container"
    )  # fmt: skip

    def route(self, method: str, path: str, body: dict[str, Any] | None) -> Route:
        first, _, rest = path.partition("/")
        fields = members(body, _WATCHED) if body else {}
        model = fields.get("model")
        model = model if isinstance(model, str) else None
        if first == "models":
            return Route(None, model=rest or None, always_allowed=method == "GET")
        capability = _CAPABILITIES.get(first)
        if capability is None:
            return Route(None, model=model)
        cost = FREE if method in ("GET", "HEAD", "DELETE") else post_cost(first, rest)
        if first == "moderations" and self.provider == "openai":
            cost = FREE
        fields_out = _OUTPUT_FIELDS.get(first, ()) if cost == PRICED else ()
        if self.provider != "openai" and "max_tokens" in fields_out:
            fields_out = ("max_tokens", *[f for f in fields_out if f != "max_tokens"])
        collection = _COLLECTIONS.get(first)
        access = collection.match(method, path, body) if collection is not None else {}
        return Route(
            capability,
            model=model,
            billable=cost == PRICED,
            stream=fields.get("stream") is True,
            max_output_fields=fields_out,
            unbounded=None if cost else _UNBOUNDED.get(first, f"this endpoint ({first})"),
            models_unseen=first == "batches" and cost is None,
            **access,
        )

    def demand(self, route: Route, body: dict[str, Any]) -> Demand:
        fields = members(body, _WATCHED)
        demand = Demand(answers=_count(fields, "n"))
        if route.capability == "completions":
            # best_of answers are generated (and billed) for each of n; for each prompt.
            demand.answers = max(demand.answers, _count(fields, "best_of")) * _prompts(fields)
        elif route.capability == "images":
            demand.output_each = _image_output(fields)
            # An edit given as JSON names its input images by URL or file id.
            images = fields.get("images")
            named = (len(images) if isinstance(images, list) else 0) + sum(
                fields.get(name) is not None for name in ("image", "mask")
            )
            demand.extra_input = min(named, MAX_EDIT_IMAGES) * EDIT_IMAGE_INPUT_TOKENS
        for name in ("previous_response_id", "conversation"):
            if fields.get(name) is not None:
                demand.references.append(name)
        prompt = fields.get("prompt")
        if isinstance(prompt, dict):  # a stored prompt (Responses API)
            demand.references.append("prompt")
        prediction = fields.get("prediction")
        if prediction is not None:  # rejected predicted tokens are billed as output
            demand.extra_output = len(json.dumps(prediction))
        demand.unbounded = _unbounded_feature(fields)
        return demand

    def multipart_demand(self, route: Route, body: bytes, fields: dict[str, Any]) -> Demand:
        """An image edit or variation: the form's ``n``, and its input images, which are
        billed by their pixels: at most one per part of the form (RFC 7578 §4.1)."""
        demand = Demand(answers=_count(fields, "n"))
        if route.capability == "images":
            demand.output_each = _image_output(fields)
            parts = min(body.count(b"\n--") + 1, MAX_EDIT_IMAGES)
            demand.extra_input = parts * EDIT_IMAGE_INPUT_TOKENS
        return demand

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
        return usage_from_openai(
            body.get("usage"),
            images="data" in body,
            output=body.get("output"),
            model=body.get("model"),
        )

    def stream_observer(self, *, injected_usage: bool) -> StreamObserver:
        return OpenAIStreamObserver(injected_usage=injected_usage)

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": code, "param": None, "code": code}}


def _count(fields: dict[str, Any], name: str, *, default: int = 1) -> int:
    """A multiplier: absent or null is the API's default; unreadable is refused."""
    value = fields.get(name)
    if value is None:
        return default
    number = read_count(value)
    if number is None:
        raise AmbiguousMember(f"The request's '{name}' is not an integer the vault can read.")
    return max(number, default)


def _prompts(fields: dict[str, Any]) -> int:
    """Legacy completions answer each prompt of a list (strings or token lists) apart."""
    prompt = fields.get("prompt")
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        return len(prompt)
    return 1


def _image_output(fields: dict[str, Any]) -> int:
    """Each image's output tokens, with the partial images streamed before it: read alike
    from a JSON body and a form (held whenever asked; they are billed when streamed)."""
    partial = _count(fields, "partial_images", default=0)
    return IMAGE_OUTPUT_TOKENS + partial * PARTIAL_IMAGE_TOKENS


def _unbounded_feature(fields: dict[str, Any]) -> str | None:
    model = fields.get("model")
    for marker, why in _PER_CALL_MODELS:
        if isinstance(model, str) and marker in model.lower():
            return why
    modalities = fields.get("modalities")
    if isinstance(fields.get("audio"), dict) or (
        isinstance(modalities, list) and any(str(m).lower() == "audio" for m in modalities)
    ):
        return _AUDIO_OUT
    tools = fields.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind not in _CLIENT_TOOLS:
                return f"tools the provider runs itself ('{str(kind)[:40]}')"
    if fields.get("web_search_options") is not None:
        return "web search (billed per search)"
    tier = fields.get("service_tier")
    if tier is not None and tier not in _LISTED_TIERS:
        return f"the '{str(tier)[:40]}' service tier (billed above the listed prices)"
    return None
