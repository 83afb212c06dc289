"""Which adapter class speaks each API family."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from okap_server.catalog import ProviderRow
from okap_server.proxy.providers.anthropic import AnthropicAdapter
from okap_server.proxy.providers.base import Adapter
from okap_server.proxy.providers.google import GoogleAdapter
from okap_server.proxy.providers.openai import OpenAIAdapter

ADAPTER_CLASSES: Mapping[str, type[Adapter]] = MappingProxyType(
    {"openai": OpenAIAdapter, "anthropic": AnthropicAdapter, "google": GoogleAdapter}
)


def adapter_for(row: ProviderRow) -> Adapter:
    if row.family == "openai":
        return OpenAIAdapter(row.id, stream_usage_option=row.stream_usage_option)
    return ADAPTER_CLASSES[row.family](row.id)
