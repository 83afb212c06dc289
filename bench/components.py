"""Where one proxied request's time goes: okap's hot-path steps, timed in process.

Each step of ``ProxyService`` is called on its own against a seeded vault (real database,
real key ring), many times, and its median and p99 per call are reported. The same steps
are timed in a vault holding 10 grants and one holding 10,000, which is the issue's scale
check for grant lookup and limit checks without the noise of a network run.

Run: ``python -m bench.components [--grants 10,10000] [--calls 2000]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread

from bench.bodies import BODIES
from bench.loop import run
from bench.okap_target import seed
from bench.report import components_table
from okap_server.authorization.tokens import token_hash
from okap_server.clock import utcnow
from okap_server.context import open_vault
from okap_server.proxy.forwarding import build_upstream_request
from okap_server.proxy.messages import ProxyRequest, parse_body
from okap_server.proxy.recorder import Outcome, write_batch
from okap_server.proxy.runtime import ProxyRuntime
from okap_server.settings import load_settings

RESPONSE = (
    b'{"id":"x","object":"chat.completion","model":"gpt-4o-mini","choices":[],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}'
)


def timed(fn: Callable[[], Any], calls: int) -> dict[str, Any]:
    """Median and p99 of one call; the error instead when the step's API changed."""
    try:
        fn()
    except Exception as exc:
        return {"median_us": None, "p99_us": None, "error": f"{type(exc).__name__}: {exc}"}
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    return {
        "median_us": round(samples[len(samples) // 2] / 1000, 1),
        "p99_us": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000, 1),
    }


def hand_off(calls: int) -> dict[str, float]:
    """One await of a no-op in anyio's worker threads, on uvloop (what every DB step pays)."""

    async def main() -> dict[str, float]:
        await anyio.to_thread.run_sync(lambda: None)
        samples = []
        for _ in range(calls):
            started = time.perf_counter_ns()
            await anyio.to_thread.run_sync(lambda: None)
            samples.append(time.perf_counter_ns() - started)
        samples.sort()
        return {
            "median_us": round(samples[len(samples) // 2] / 1000, 1),
            "p99_us": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000, 1),
        }

    return run(main())


def measure(grants: int, calls: int, database_url: str | None = None) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="okap-bench-components-"))
    seeded = seed(home, "http://127.0.0.1:9", grants=grants, database_url=database_url)
    tokens = seeded.tokens_file.read_text().split()
    overrides: dict[str, Any] = {"home": home, "upstreams": {"openai": "http://127.0.0.1:9/v1"}}
    if database_url:
        overrides["database_url"] = database_url
    vault = open_vault(load_settings(**overrides), migrate=False)
    runtime = ProxyRuntime(vault)
    try:
        row = runtime.catalog.get("openai")
        assert row is not None
        adapter = runtime.adapter(row.id)
        hashed = [token_hash(t) for t in tokens]
        view = runtime._load_grant(hashed[0])
        assert view is not None
        entry = view.entries["openai"]
        assert entry.key is not None
        key = entry.key
        body = BODIES["json"].encode()
        headers = [("content-type", "application/json"), ("authorization", f"Bearer {tokens[0]}")]
        request = ProxyRequest("POST", "openai", "chat/completions", [], headers, body)
        header_map = dict(headers)
        secret = runtime.keys.reveal(key)
        turn = iter(range(10**9))

        def cold_lookup() -> Any:
            return runtime._load_grant(hashed[next(turn) % len(hashed)])

        def admit() -> Any:
            return runtime.admission.admit(view.id, "openai", entry.limits, 50, utcnow())

        def outcome() -> Outcome:
            return Outcome(
                account_id=view.account_id,
                grant_id=view.id,
                client_name=view.client_name,
                provider="openai",
                endpoint="POST chat/completions",
                status=200,
                model="gpt-4o-mini",
                admitted=True,
                day="day:x",
                month="month:x",
            )

        batch = 100

        def record_batch() -> None:
            write_batch(vault.engine, runtime.recorder.budget, [outcome() for _ in range(batch)])

        steps: dict[str, Callable[[], Any]] = {
            "token_hash (sha256 of the okap token)": lambda: token_hash(tokens[0]),
            "grant view from the database (cache miss)": cold_lookup,
            "key decryption (AES-256-GCM, every request)": lambda: runtime.keys.reveal(key),
            "parse body + route + scope": lambda: adapter.route(
                "POST", "chat/completions", parse_body(request, header_map)
            ),
            "build the upstream httpx.Request": lambda: build_upstream_request(
                row, request, "chat/completions", body, secret
            ),
            "admission: rate windows + spend hold (one transaction)": admit,
            "usage from the JSON answer": lambda: adapter.usage_from_json(json.loads(RESPONSE)),
            "metrics: one request counted (counter, 2 histograms, spend)": lambda: (
                runtime.metrics.proxy_request("openai", 200, "chat", 0.0009, 0.0005, 150)
            ),
            "metrics: admission wait observed": lambda: runtime.metrics.admission_waited(2e-5),
        }
        result = {name: timed(fn, calls) for name, fn in steps.items()}
        samples: list[Outcome] = []

        def log_row() -> Any:
            samples[:] = samples or [outcome()]
            return samples[0].log_row()

        result["audit row (Outcome.log_row)"] = timed(log_row, calls)
        result["thread hand-off (anyio.to_thread.run_sync of a no-op)"] = hand_off(calls)
        per_batch = timed(record_batch, max(calls // 20, 20))
        result[f"audit + settlement, per request (batches of {batch})"] = {
            k: round(v / batch, 1) if isinstance(v, float) else v for k, v in per_batch.items()
        }
        return {
            "grants": grants,
            "database": vault.settings.effective_database_url.split(":")[0],
            "calls": calls,
            "steps": result,
        }
    finally:
        vault.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", default="10,10000")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--database-url", help="PostgreSQL URL of an empty database")
    args = parser.parse_args(argv)
    runs = [measure(int(g), args.calls, args.database_url) for g in args.grants.split(",")]
    print(components_table(runs))
    print(json.dumps(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
