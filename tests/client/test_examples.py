"""Every script in examples/ runs against a live vault and the fake provider, so none can rot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.client.conftest import PROVIDER_KEYS, cli_env, run_approving

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HELLO = "Hello from the fake upstream."


@pytest.fixture
def backend() -> str:
    """The examples exercise the SDK and the SDKs, not the database: one back end is enough."""
    return "sqlite"


def example_env(live_url: str, tmp_path: Path) -> dict[str, str]:
    env = cli_env(live_url, tmp_path / "config")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHON"] = sys.executable
    return env


@pytest.mark.parametrize(
    ("script", "providers"),
    [
        ("openai_chat.py", ["openai"]),
        ("anthropic_messages.py", ["anthropic"]),
        ("gemini_generate.py", ["google"]),
        ("async_stream.py", ["openai"]),
        ("existing_tool.sh", ["openai"]),
    ],
)
def test_example_runs_and_reaches_the_provider_through_the_vault(
    script, providers, live_url, person, tmp_path, fake_upstream
):
    command = ["sh" if script.endswith(".sh") else sys.executable, str(EXAMPLES / script)]
    env = example_env(live_url, tmp_path)
    done = run_approving(command, env, person)
    assert done.returncode == 0, done.stderr
    assert HELLO in done.stdout
    for provider in providers:
        [sent] = fake_upstream.requests_for(provider)
        assert PROVIDER_KEYS[provider] in str(sent.headers)
        assert "okap_" not in str(sent.headers)

    if script == "openai_chat.py":
        # A second run reuses the cached token: nobody is asked again.
        again = run_approving(command, env, person)
        assert again.returncode == 0, again.stderr
        assert "enter code" not in again.stderr
        assert HELLO in again.stdout


def test_multi_provider_example_uses_one_token_for_two_providers(
    live_url, person, tmp_path, fake_upstream
):
    done = run_approving(
        [sys.executable, str(EXAMPLES / "multi_provider.py")],
        example_env(live_url, tmp_path),
        person,
    )
    assert done.returncode == 0, done.stderr
    assert f"openai:    {HELLO}" in done.stdout
    assert f"anthropic: {HELLO}" in done.stdout
    assert done.stderr.count("enter code") == 1
