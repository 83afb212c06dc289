"""Ask Claude through an okap vault with Anthropic's own SDK.

OKAP_VAULT_URL=http://127.0.0.1:8400 python examples/anthropic_messages.py "Say hi"
"""

from __future__ import annotations

import os
import sys

from anthropic import Anthropic

from okap_client import OkapClient

VAULT_URL = os.environ.get("OKAP_VAULT_URL", "http://127.0.0.1:8400")
MODEL = "claude-haiku-4-5"


def main() -> None:
    question = " ".join(sys.argv[1:]) or "Say hello in five words."
    with OkapClient(VAULT_URL, app_name="okap example: Anthropic messages") as okap:
        token = okap.get_access(
            provider="anthropic",
            models=["claude-haiku-4-5*"],
            daily_limit=0.5,
            reason="Run the Anthropic messages example",
        )
    claude = Anthropic(api_key=token.key, base_url=token.base_url)
    message = claude.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=[{"role": "user", "content": question}],
    )
    print("".join(block.text for block in message.content if block.type == "text"))


if __name__ == "__main__":
    main()
