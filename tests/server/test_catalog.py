"""The provider rows' own data on how a key is sent (``catalog.KeySending``)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from okap_server.catalog import KEY_SENDING, ProviderCatalog, ProviderRow
from okap_server.settings import CustomProvider, Settings


def test_every_auth_style_config_accepts_says_how_the_key_is_sent() -> None:
    pattern = CustomProvider.model_fields["auth_style"].metadata
    accepted = next(m.pattern for m in pattern if getattr(m, "pattern", None))
    styles = re.fullmatch(r"\^\((.*)\)\$", accepted)
    assert styles is not None
    assert set(styles.group(1).split("|")) == set(KEY_SENDING)


def test_the_key_test_sends_the_key_and_the_fixed_extras() -> None:
    sent = {
        style: ProviderRow(
            "p", "P", "http://x", "openai", auth_style=style
        ).key_sending.key_test_headers("REAL")
        for style in KEY_SENDING
    }
    assert sent == {
        "bearer": {"authorization": "Bearer REAL"},
        "x-api-key": {"x-api-key": "REAL", "anthropic-version": "2023-06-01"},
        "x-goog-api-key": {"x-goog-api-key": "REAL"},
        "none": {},
    }


def test_a_row_resolves_its_key_sending_once_also_when_copied(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        providers=[{"id": "local", "base_url": "http://127.0.0.1:11434/v1", "auth_style": "none"}],
        upstreams={"anthropic": "http://127.0.0.1:9"},
    )
    catalog = ProviderCatalog.from_settings(settings)
    anthropic, local = catalog.get("anthropic"), catalog.get("local")
    assert anthropic is not None and local is not None
    assert anthropic.upstream == "http://127.0.0.1:9"
    assert anthropic.key_sending is KEY_SENDING["x-api-key"]
    assert local.key_sending.key_header("REAL") is None
    assert replace(anthropic, auth_style="bearer").key_sending is KEY_SENDING["bearer"]
