"""A spend limit holds whatever one request asks the provider to generate or to read.

Fifty concurrent requests against a fake upstream that bills like the real APIs: every
answer generated (``n`` chat choices, ``best_of`` completions for each prompt, Gemini's
``candidateCount``) at the request's own output cap, and input held elsewhere (an earlier
response, a file, an image, a cache) at its full size. The settled spend never passes the
grant's ``daily_spend``, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.grants.periods import day_key
from okap_server.settings import Settings
from tests.security.conftest import sqlite_only
from tests.server.proxy.records import spend, wait_for_logs, wait_until_settled
from tests.server.proxy.test_sdks import openai_client
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import entry, make_grant

# google-genai's async client subclasses aiohttp's session, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession")

LIMIT_USD = 1.0
CONCURRENT = 50
HI = [{"role": "user", "content": "hi"}]
# The settings below, which the reference cases bill at in full.
REFERENCE_TOKENS = 200_000
IMAGE_TOKENS = 20_000


@dataclass
class Clients:
    """One client per SDK, shared by the concurrent requests (as an app would)."""

    openai: openai.AsyncOpenAI
    google: genai.Client
    # A stored object the grant created, which the requests name.
    object_id: str = ""


Call = Callable[[Clients], Awaitable[Any]]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "proxy_reference_input_tokens": REFERENCE_TOKENS,
            "proxy_image_input_tokens": IMAGE_TOKENS,
        }
    )


def clients(live_url: str, token: str, object_id: str = "") -> Clients:
    return Clients(
        openai=openai.AsyncOpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0),
        google=genai.Client(
            api_key=token,
            http_options=genai_types.HttpOptions(
                base_url=f"{live_url}/v1/google",
                retry_options=genai_types.HttpRetryOptions(attempts=1),
            ),
        ),
        object_id=object_id,
    )


async def chat_n(c: Clients) -> Any:
    return await c.openai.chat.completions.create(
        model="gpt-4o-mini", messages=HI, max_tokens=4000, n=128
    )


async def completions_best_of(c: Clients) -> Any:
    return await c.openai.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt=["hi", "there"],  # each prompt gets best_of answers, all billed
        max_tokens=4000,
        best_of=20,
        n=1,
    )


async def gemini_candidates(c: Clients) -> Any:
    config = genai_types.GenerateContentConfig(candidate_count=8, max_output_tokens=4000)
    return await c.google.aio.models.generate_content(
        model="gemini-2.5-flash", contents="hi", config=config
    )


async def responses_previous(c: Clients) -> Any:
    return await c.openai.responses.create(
        model="gpt-4.1-mini", input="go on", previous_response_id=c.object_id
    )


async def chat_file(c: Clients) -> Any:
    part = {"type": "file", "file": {"file_id": c.object_id}}
    return await c.openai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": [part]}]
    )


async def chat_image(c: Clients) -> Any:
    part = {"type": "image_url", "image_url": {"url": "https://img.example/huge.png"}}
    return await c.openai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": [part]}]
    )


async def gemini_file(c: Clients) -> Any:
    video = genai_types.Part.from_uri(file_uri="https://youtu.be/long", mime_type="video/mp4")
    return await c.google.aio.models.generate_content(
        model="gemini-2.5-flash", contents=[video, "summarise"]
    )


def refused(exc: BaseException) -> bool:
    """The answer to a request over the limit: each SDK's own 429 exception. With holds of
    requests in flight in the way it is ``budget_held`` (retryable), else ``budget_exceeded``."""
    if isinstance(exc, openai.RateLimitError):
        return exc.code in ("budget_exceeded", "budget_held")
    return isinstance(exc, genai_errors.ClientError) and exc.code == 429


def run_concurrently(call: Call, live_url: str, token: str, object_id: str = "") -> list[str]:
    async def one(shared: Clients) -> str:
        try:
            await call(shared)
            return "ok"
        except Exception as exc:
            assert refused(exc), repr(exc)
            return "refused"

    async def every() -> list[str]:
        shared = clients(live_url, token, object_id)
        async with shared.openai:
            try:
                return await asyncio.gather(*(one(shared) for _ in range(CONCURRENT)))
            finally:
                await shared.google.aio.aclose()

    return asyncio.run(every())


def assert_the_limit_held(
    vault: Vault, fake: FakeUpstream, provider: str, grant_id: str, results: list[str]
) -> None:
    wait_until_settled(vault)
    admitted = results.count("ok")
    wait_for_logs(vault, CONCURRENT)
    counter = spend(vault, grant_id, day_key(utcnow()))
    assert counter is not None and counter.reserved_micros == 0
    assert counter.spent_micros <= LIMIT_USD * 1_000_000, (
        f"{admitted} admitted requests settled at ${counter.spent_micros / 1e6:.2f}"
    )
    assert admitted >= 1 and results.count("refused") >= 1
    assert len(fake.requests_for(provider)) == admitted


@pytest.mark.parametrize(
    ("provider", "call"),
    [("openai", chat_n), ("openai", completions_best_of), ("google", gemini_candidates)],
    ids=["chat-n", "completions-best_of", "gemini-candidateCount"],
)
def test_fan_out_never_breaks_a_daily_spend_limit(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream, provider: str, call: Call
) -> None:
    # Each answer is billed at the request's own cap: 128 x 4000 tokens of gpt-4o-mini is
    # $0.31 a request, which a hold of one answer's worth ($0.0024) let through 50 times.
    fake_upstream.usage[provider] = FakeUsage(input=20, output=None)
    grant = make_grant(
        vault,
        entry(provider, capabilities=["chat", "completions"], limits={"daily_spend": LIMIT_USD}),
    )
    results = run_concurrently(call, live_url, grant.token)
    assert_the_limit_held(vault, fake_upstream, provider, grant.grant_id, results)


@sqlite_only
@pytest.mark.parametrize(
    ("provider", "call", "billed_input"),
    [
        ("openai", responses_previous, REFERENCE_TOKENS),
        ("openai", chat_file, REFERENCE_TOKENS),
        ("openai", chat_image, IMAGE_TOKENS),
        ("google", gemini_file, REFERENCE_TOKENS),
    ],
    ids=["previous_response_id", "file_id", "image_url", "fileData"],
)
def test_input_held_elsewhere_never_breaks_a_daily_spend_limit(
    vault: Vault,
    live_url: str,
    fake_upstream: FakeUpstream,
    provider: str,
    call: Call,
    billed_input: int,
) -> None:
    # A small body that the provider bills as a long input (as much as the setting allows:
    # the setting is the bound a vault's owner chooses, the model's context window).
    daily = LIMIT_USD / 10 if billed_input == IMAGE_TOKENS else LIMIT_USD
    fake_upstream.usage[provider] = FakeUsage(input=billed_input, output=5)
    grant = make_grant(
        vault, entry(provider, capabilities=["chat", "files"], limits={"daily_spend": daily})
    )
    # The stored object the requests name is one this grant created, as a grant may use no
    # other app's.
    object_id = ""
    if call is responses_previous:
        started = openai_client(live_url, grant.token).responses.create(
            model="gpt-4.1-mini", input="go"
        )
        object_id = started.id
    if call is chat_file:
        uploaded = openai_client(live_url, grant.token).files.create(
            file=("book.pdf", b"%PDF"), purpose="user_data"
        )
        object_id = uploaded.id
    results = run_concurrently(call, live_url, grant.token, object_id)
    wait_until_settled(vault)
    wait_for_logs(vault, CONCURRENT)
    counter = spend(vault, grant.grant_id, day_key(utcnow()))
    assert counter is not None and counter.reserved_micros == 0
    assert counter.spent_micros <= daily * 1_000_000
    assert results.count("ok") >= 1 and results.count("refused") >= 1
