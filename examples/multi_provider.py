"""One approval, one token, several providers: ask OpenAI and Claude the same question.

OKAP_VAULT_URL=http://127.0.0.1:8400 python examples/multi_provider.py "Name a colour"
"""

from __future__ import annotations

import os
import sys

from anthropic import Anthropic
from openai import OpenAI

from okap_client import OkapClient

VAULT_URL = os.environ.get("OKAP_VAULT_URL", "http://127.0.0.1:8400")


def main() -> None:
    question = " ".join(sys.argv[1:]) or "Name a colour, one word."
    with OkapClient(VAULT_URL, app_name="okap example: multi-provider") as okap:
        token = okap.get_access(
            authorization_details=[
                {"provider": "openai", "models": ["gpt-4o-mini"], "limits": {"daily_spend": 0.5}},
                {
                    "provider": "anthropic",
                    "models": ["claude-haiku-4-5*"],
                    "limits": {"daily_spend": 0.5},
                },
            ],
            reason="Compare two providers' answers",
        )
    gpt = OpenAI(api_key=token.key, base_url=token.base_url_for("openai"))
    answer = gpt.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
    )
    print(f"openai:    {answer.choices[0].message.content}")

    claude = Anthropic(api_key=token.key, base_url=token.base_url_for("anthropic"))
    message = claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": question}],
    )
    text = "".join(block.text for block in message.content if block.type == "text")
    print(f"anthropic: {text}")


if __name__ == "__main__":
    main()
