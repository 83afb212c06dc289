"""Generate text with Gemini through an okap vault using ``google-genai``.

OKAP_VAULT_URL=http://127.0.0.1:8400 python examples/gemini_generate.py "Say hi"
"""

from __future__ import annotations

import os
import sys

from google import genai
from google.genai import types

from okap_client import OkapClient

VAULT_URL = os.environ.get("OKAP_VAULT_URL", "http://127.0.0.1:8400")
MODEL = "gemini-2.5-flash"


def main() -> None:
    prompt = " ".join(sys.argv[1:]) or "Say hello in five words."
    with OkapClient(VAULT_URL, app_name="okap example: Gemini generate") as okap:
        token = okap.get_access(
            provider="google",
            models=["gemini-2.5-flash"],
            requests_per_minute=10,
            reason="Run the Gemini example",
        )
    client = genai.Client(
        api_key=token.key, http_options=types.HttpOptions(base_url=token.base_url)
    )
    response = client.models.generate_content(model=MODEL, contents=prompt)
    print(response.text)


if __name__ == "__main__":
    main()
