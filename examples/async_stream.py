"""Stream a chat answer with the async SDKs: ``AsyncOkapClient`` plus ``AsyncOpenAI``.

OKAP_VAULT_URL=http://127.0.0.1:8400 python examples/async_stream.py "Count to five"
"""

from __future__ import annotations

import asyncio
import os
import sys

from openai import AsyncOpenAI

from okap_client import AsyncOkapClient

VAULT_URL = os.environ.get("OKAP_VAULT_URL", "http://127.0.0.1:8400")


async def main() -> None:
    question = " ".join(sys.argv[1:]) or "Count to five."
    async with AsyncOkapClient(VAULT_URL, app_name="okap example: async stream") as okap:
        token = await okap.get_access(
            provider="openai", models=["gpt-4o-mini"], reason="Run the streaming example"
        )
    ai = AsyncOpenAI(api_key=token.key, base_url=token.base_url)
    stream = await ai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": question}],
        stream=True,
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()


if __name__ == "__main__":
    asyncio.run(main())
