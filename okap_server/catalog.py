"""The table of providers the vault knows: one row each.

A row names the provider, its default upstream, the adapter family that speaks its API
(``openai``, ``anthropic`` or ``google``) and how its real key is sent upstream.
A new OpenAI-compatible provider is one more row here, or one entry in config.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType

from okap_server.settings import Settings


@dataclass(frozen=True)
class KeySending:
    """How a provider's real key travels upstream: one header, its value the key after a
    fixed prefix (``Authorization: Bearer <key>``, RFC 6750 §2.1). ``header`` None: the
    upstream takes no key (a local model server, ``auth_style = "none"``).

    ``check_headers`` are the fixed headers the key test adds (``manage/key_check.py``):
    Anthropic refuses a call without ``anthropic-version``. The proxy sends none of them:
    it passes on the app's own."""

    header: str | None
    prefix: str = ""
    check_headers: tuple[tuple[str, str], ...] = ()

    def key_header(self, secret: str) -> tuple[str, str] | None:
        """The header carrying the key, or None when the provider takes none."""
        return None if self.header is None else (self.header, self.prefix + secret)

    def key_test_headers(self, secret: str) -> dict[str, str]:
        """The headers of the key test: the key's header and the fixed extras."""
        sent = self.key_header(secret)
        return dict(((sent,) if sent else ()) + self.check_headers)


# Each ``auth_style`` a row (or config's ``CustomProvider.auth_style``) may name.
KEY_SENDING: MappingProxyType[str, KeySending] = MappingProxyType(
    {
        "bearer": KeySending("authorization", "Bearer "),
        "x-api-key": KeySending("x-api-key", check_headers=(("anthropic-version", "2023-06-01"),)),
        "x-goog-api-key": KeySending("x-goog-api-key"),
        "none": KeySending(None),
    }
)


@dataclass(frozen=True)
class ProviderRow:
    id: str
    name: str
    upstream: str
    family: str  # "openai" | "anthropic" | "google"
    auth_style: str = "bearer"  # "bearer" | "x-api-key" | "x-goog-api-key" | "none"
    aliases: tuple[str, ...] = ()
    # OpenAI family: whether the upstream takes ``stream_options.include_usage``. Those that
    # do not (they report stream usage unasked, and may refuse unknown fields) are left alone.
    stream_usage_option: bool = True
    # The provider id ``genai-prices`` lists this provider's prices under (``xai`` is
    # ``x-ai``); None: only the operator's prices file prices it.
    prices_provider: str | None = None
    # How the key is sent, looked up once from ``auth_style`` when the row is made, so the
    # proxy does no lookup per request.
    key_sending: KeySending = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_sending", KEY_SENDING[self.auth_style])


BUILTIN_PROVIDERS: tuple[ProviderRow, ...] = (
    ProviderRow(
        "openai", "OpenAI", "https://api.openai.com/v1", "openai", prices_provider="openai"
    ),
    ProviderRow(
        "anthropic",
        "Anthropic",
        "https://api.anthropic.com",
        "anthropic",
        "x-api-key",
        prices_provider="anthropic",
    ),
    ProviderRow(
        "google",
        "Google Gemini",
        "https://generativelanguage.googleapis.com",
        "google",
        "x-goog-api-key",
        aliases=("gemini",),
        prices_provider="google",
    ),
    ProviderRow("groq", "Groq", "https://api.groq.com/openai/v1", "openai", prices_provider="groq"),
    ProviderRow(
        "mistral",
        "Mistral",
        "https://api.mistral.ai/v1",
        "openai",
        stream_usage_option=False,
        prices_provider="mistral",
    ),
    ProviderRow(
        "deepseek", "DeepSeek", "https://api.deepseek.com/v1", "openai", prices_provider="deepseek"
    ),
    ProviderRow("xai", "xAI", "https://api.x.ai/v1", "openai", prices_provider="x-ai"),
    ProviderRow(
        "together",
        "Together AI",
        "https://api.together.xyz/v1",
        "openai",
        prices_provider="together",
    ),
    ProviderRow(
        "openrouter",
        "OpenRouter",
        "https://openrouter.ai/api/v1",
        "openai",
        prices_provider="openrouter",
    ),
    ProviderRow(
        "perplexity",
        "Perplexity",
        "https://api.perplexity.ai",
        "openai",
        stream_usage_option=False,
        prices_provider="perplexity",
    ),
    ProviderRow(
        "fireworks",
        "Fireworks AI",
        "https://api.fireworks.ai/inference/v1",
        "openai",
        prices_provider="fireworks",
    ),
    ProviderRow(
        "cerebras", "Cerebras", "https://api.cerebras.ai/v1", "openai", prices_provider="cerebras"
    ),
    # Cohere's OpenAI-compatible Compatibility API (chat and embeddings); it refuses
    # ``stream_options``.
    ProviderRow(
        "cohere",
        "Cohere",
        "https://api.cohere.ai/compatibility/v1",
        "openai",
        stream_usage_option=False,
        prices_provider="cohere",
    ),
)


class ProviderCatalog:
    """The providers of one vault: built-in rows, config rows, and upstream overrides."""

    def __init__(self, rows: list[ProviderRow]) -> None:
        self._rows = {row.id: row for row in rows}
        self._aliases = {alias: row.id for row in rows for alias in row.aliases}

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderCatalog:
        rows = list(BUILTIN_PROVIDERS)
        for custom in settings.providers:
            rows = [r for r in rows if r.id != custom.id]
            rows.append(
                ProviderRow(
                    id=custom.id,
                    name=custom.name or custom.id,
                    upstream=custom.base_url.rstrip("/"),
                    family="openai",
                    auth_style=custom.auth_style,
                    prices_provider=custom.prices_provider,
                )
            )
        overridden = []
        for row in rows:
            url = settings.upstreams.get(row.id)
            overridden.append(replace(row, upstream=url) if url else row)
        return cls(overridden)

    def canonical(self, provider: str) -> str | None:
        """The provider's id, resolving aliases (``gemini`` → ``google``); None if unknown."""
        provider = provider.lower()
        if provider in self._rows:
            return provider
        return self._aliases.get(provider)

    def get(self, provider: str) -> ProviderRow | None:
        canonical = self.canonical(provider)
        return self._rows[canonical] if canonical else None

    def ids(self) -> list[str]:
        return list(self._rows)

    def rows(self) -> list[ProviderRow]:
        return list(self._rows.values())

    def prices_providers(self) -> dict[str, str | None]:
        """Each provider's id in ``genai-prices`` (see ``ProviderRow.prices_provider``)."""
        return {row.id: row.prices_provider for row in self._rows.values()}
