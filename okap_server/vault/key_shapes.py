"""Which provider a pasted key looks like it belongs to, from its distinctive prefix.

A key stored under the wrong provider only fails later, at the first proxied request, with
the provider's "invalid API key": far from the paste that caused it. Only prefixes that one
provider alone uses are listed (OpenAI's and DeepSeek's plain ``sk-`` is not)."""

from __future__ import annotations

# Longest first, so ``sk-ant-`` wins over any shorter prefix it starts with.
DISTINCTIVE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("sk-ant-", "anthropic"),
    ("sk-or-", "openrouter"),
    ("AIza", "google"),
    ("gsk_", "groq"),
    ("xai-", "xai"),
    ("csk-", "cerebras"),
    ("fw_", "fireworks"),
)


def misfiled(provider: str, secret: str) -> tuple[str, str] | None:
    """(the provider the key looks like, its prefix) when that is not ``provider``."""
    key = secret.strip()
    for prefix, owner in DISTINCTIVE_PREFIXES:
        if key.startswith(prefix):
            return (owner, prefix) if owner != provider else None
    return None


def with_article(name: str) -> str:
    """ "an OpenAI", "an xAI", "a Groq": never "a openai"."""
    return f"an {name}" if name[:1].lower() in "aeiox" else f"a {name}"
