"""Chat with OpenAI through an okap vault: the app never sees the real key.

OKAP_VAULT_URL=http://127.0.0.1:8400 python examples/openai_chat.py "Say hi"
"""

from __future__ import annotations

import os
import sys

from openai import OpenAI

from okap_client import OkapClient

VAULT_URL = os.environ.get("OKAP_VAULT_URL", "http://127.0.0.1:8400")


def main() -> None:
    question = " ".join(sys.argv[1:]) or "Say hello in five words."
    with OkapClient(VAULT_URL, app_name="okap example: OpenAI chat") as okap:
        # Asks the person once; later runs reuse the cached token until it expires.
        token = okap.get_access(
            provider="openai",
            models=["gpt-4o-mini"],
            monthly_limit=1.0,
            reason="Run the OpenAI chat example",
        )
        ai = OpenAI(api_key=token.key, base_url=token.base_url)
        reply = ai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": question}],
        )
        print(reply.choices[0].message.content)
        left = okap.usage(token).remaining("openai", "spend", "month")
        if left is not None:
            print(f"(${left:.4f} left this month)", file=sys.stderr)


if __name__ == "__main__":
    main()
