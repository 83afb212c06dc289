"""The vocabulary of ``ai_model_access`` capabilities and limits (SPEC.md §"The request type")."""

from __future__ import annotations

from collections.abc import Iterable

# What an app may ask to do. The proxy maps each provider endpoint to one of these;
# an endpoint that maps to none is refused (model listing is always allowed).
CAPABILITIES: tuple[str, ...] = (
    "chat",
    "completions",
    "embeddings",
    "images",
    "audio",
    "moderation",
    "files",
    "batch",
    "code",
    "vision",
)

# The OKAP reference's words (its SPEC §3.4) that name no endpoint of their own: each means
# the endpoints of the capabilities listed. ``vision`` is image input in a chat message, so
# the chat endpoints (the proxy does not tell a message with an image from one without);
# ``code`` is a code model, reached through chat or completions (including FIM).
IMPLIES: dict[str, tuple[str, ...]] = {
    "vision": ("chat",),
    "code": ("chat", "completions"),
}

# What the reference Python SDK (``okap`` 0.1.x) can parse in an answer: its ``Capabilities``
# enum. Its models reject any other word, so the reference door answers in these.
REFERENCE_SDK_CAPABILITIES: tuple[str, ...] = (
    "chat",
    "completions",
    "embeddings",
    "images",
    "audio",
    "moderation",
)


def enforced(capabilities: Iterable[str]) -> frozenset[str]:
    """The endpoint capabilities the proxy allows for these granted words."""
    allowed: set[str] = set()
    for capability in capabilities:
        allowed.update(IMPLIES.get(capability, (capability,)))
    return frozenset(allowed)


def in_reference_words(capabilities: Iterable[str]) -> list[str]:
    """Granted capabilities as the reference SDK can read them, in order, each once."""
    words: list[str] = []
    for capability in capabilities:
        for word in IMPLIES.get(capability, (capability,)):
            if word in REFERENCE_SDK_CAPABILITIES and word not in words:
                words.append(word)
    return words


# Spend limits are USD; request limits are counts; tokens_per_request caps max output tokens.
SPEND_LIMITS: tuple[str, ...] = ("monthly_spend", "weekly_spend", "daily_spend", "total_spend")
COUNT_LIMITS: tuple[str, ...] = ("requests_per_minute", "requests_per_day", "tokens_per_request")
LIMIT_NAMES: tuple[str, ...] = SPEND_LIMITS + COUNT_LIMITS
# One label per limit, on every page that shows or edits one (consent, Apps, Edit limits).
LIMIT_LABELS: dict[str, str] = {
    "monthly_spend": "Monthly spend (USD)",
    "weekly_spend": "Weekly spend (USD)",
    "daily_spend": "Daily spend (USD)",
    "total_spend": "Total spend (USD)",
    "requests_per_minute": "Requests per minute",
    "requests_per_day": "Requests per day",
    "tokens_per_request": "Max tokens per request",
}
