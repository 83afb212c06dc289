"""The vocabulary of ``ai_model_access`` capabilities and limits (SPEC.md §"The request type")."""

from __future__ import annotations

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
)

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
