"""Environment variables that provider SDKs and existing tools already read.

One row per provider: the variables that carry the key and the base URL. Google's
``google-genai`` reads ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY`` (warning on every run when
both are set) and, for the base URL, ``GOOGLE_GEMINI_BASE_URL``. okap sets only
``GOOGLE_API_KEY``, the one google-genai prefers (and LangChain reads), and clears
``GEMINI_API_KEY`` (``clear_vars``): a real key left there would reach the child, and make
google-genai warn. A provider not listed gets ``<ID>_API_KEY`` and ``<ID>_BASE_URL``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class EnvRow:
    key_vars: tuple[str, ...]
    base_url_vars: tuple[str, ...]
    clear_vars: tuple[str, ...] = ()  # other names the same tools read for the key


ENV_ROWS: Mapping[str, EnvRow] = MappingProxyType(
    {
        "openai": EnvRow(("OPENAI_API_KEY",), ("OPENAI_BASE_URL",)),
        "anthropic": EnvRow(("ANTHROPIC_API_KEY",), ("ANTHROPIC_BASE_URL",)),
        "google": EnvRow(
            ("GOOGLE_API_KEY",), ("GOOGLE_GEMINI_BASE_URL",), clear_vars=("GEMINI_API_KEY",)
        ),
        "gemini": EnvRow(
            ("GOOGLE_API_KEY",), ("GOOGLE_GEMINI_BASE_URL",), clear_vars=("GEMINI_API_KEY",)
        ),
        "groq": EnvRow(("GROQ_API_KEY",), ("GROQ_BASE_URL",)),
        "mistral": EnvRow(("MISTRAL_API_KEY",), ("MISTRAL_BASE_URL",)),
        "deepseek": EnvRow(("DEEPSEEK_API_KEY",), ("DEEPSEEK_BASE_URL",)),
        "xai": EnvRow(("XAI_API_KEY",), ("XAI_BASE_URL",)),
        "together": EnvRow(("TOGETHER_API_KEY",), ("TOGETHER_BASE_URL",)),
        "openrouter": EnvRow(("OPENROUTER_API_KEY",), ("OPENROUTER_BASE_URL",)),
        "perplexity": EnvRow(("PERPLEXITY_API_KEY",), ("PERPLEXITY_BASE_URL",)),
        "fireworks": EnvRow(("FIREWORKS_API_KEY",), ("FIREWORKS_BASE_URL",)),
        "cerebras": EnvRow(("CEREBRAS_API_KEY",), ("CEREBRAS_BASE_URL",)),
        # The vault proxies Cohere's OpenAI-compatible API; Cohere's own SDK reads
        # CO_API_KEY, cleared so a real key there never reaches the child.
        "cohere": EnvRow(("COHERE_API_KEY",), ("COHERE_BASE_URL",), clear_vars=("CO_API_KEY",)),
    }
)


def env_row(provider: str) -> EnvRow:
    row = ENV_ROWS.get(provider.lower())
    if row is not None:
        return row
    prefix = "".join(ch if ch.isalnum() else "_" for ch in provider.upper())
    return EnvRow((f"{prefix}_API_KEY",), (f"{prefix}_BASE_URL",))


def env_for(provider: str, key: str, base_url: str) -> dict[str, str]:
    row = env_row(provider)
    variables = dict.fromkeys(row.key_vars, key)
    variables.update(dict.fromkeys(row.base_url_vars, base_url))
    return variables


def cleared_for(providers: Iterable[str]) -> list[str]:
    """Variables to remove from a child's environment for these providers' tokens."""
    return [name for provider in providers for name in env_row(provider).clear_vars]
