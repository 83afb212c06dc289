"""The issue's scale checks: grants table size, a 100 MB stream, N workers, limits across them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import targets
from bench.okap_target import Seeded, seed
from bench.procs import Service, reset_peak_rss, run_load, status_kb
from bench.report import median_of

BIG_STREAM_BYTES = 100 * 1024 * 1024
Log = Callable[[str], None]


def _rounds(settings: Any, target: targets.Target, body: str, c: int, tokens: Path) -> list[Any]:
    return [
        run_load(
            target.url,
            body,
            concurrency=c,
            duration=settings.duration,
            warmup=settings.warmup,
            headers=target.headers,
            tokens_file=tokens,
            watch=target.watch,
            cpus=settings.load_cpus,
        )
        for _ in range(settings.scale_rounds)
    ]


def grants_check(
    settings: Any, workdir: Path, upstream: Service, body: str, log: Log
) -> list[dict[str, Any]]:
    """Same load with 10 grants and with 10,000; then 10,000 tokens in turn (cold cache)."""
    rows: list[dict[str, Any]] = []
    for grants, token_counts in ((10, (10,)), (10_000, (10, 10_000))):
        target, seeded = targets.okap(
            workdir,
            upstream,
            cpus=settings.server_cpus,
            name=f"okap-{grants}-grants",
            grants=grants,
            database_url=settings.database_url(f"g{grants}"),
            log_level=settings.okap_log_level,
        )
        try:
            all_tokens = seeded.tokens_file.read_text().split()
            for count in token_counts:
                tokens = workdir / f"tokens-{grants}-{count}.txt"
                tokens.write_text("\n".join(all_tokens[:count]) + "\n")
                for c in settings.concurrencies:
                    log(f"scale: {grants} grants, {count} tokens, c={c}")
                    rounds = _rounds(settings, target, body, c, tokens)
                    rows.append(
                        {
                            "grants": grants,
                            "tokens": count,
                            "concurrency": c,
                            "rounds": rounds,
                            "median": median_of(rounds),
                        }
                    )
        finally:
            assert target.service is not None
            target.service.stop()
    return rows


def big_stream(target: targets.Target, body: str, token: str | None) -> dict[str, Any]:
    """One ~100 MB SSE answer through ``target``; how much its RSS grew meanwhile."""
    assert target.service is not None
    pids = target.service.pids()
    pid = pids[-1]  # the serving process (the only one, or uvicorn's worker)
    reset_peak_rss(pid)
    before = status_kb(pid, "VmRSS")
    headers = {"x-bench-stream-bytes": str(BIG_STREAM_BYTES), "content-type": "application/json"}
    for header in target.headers:
        name, value = header.split(":", 1)
        headers[name] = value.strip()
    if token:
        headers["authorization"] = f"Bearer {token}"
    received = 0
    started = time.perf_counter()
    with (
        httpx.Client(timeout=120, trust_env=False) as client,
        client.stream("POST", target.url, content=body, headers=headers) as response,
    ):
        for chunk in response.iter_raw(1 << 20):
            received += len(chunk)
        status = response.status_code
    seconds = time.perf_counter() - started
    peak = status_kb(pid, "VmHWM")
    return {
        "target": target.name,
        "status": status,
        "bytes": received,
        "seconds": round(seconds, 2),
        "mb_per_s": round(received / seconds / 1e6, 1),
        "rss_before_mb": round(before / 1024, 1),
        "rss_peak_mb": round(peak / 1024, 1),
        "rss_growth_mb": round((peak - before) / 1024, 1),
    }


def workers_check(
    settings: Any, workdir: Path, upstream: Service, seeded: Seeded, body: str, log: Log
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for workers in settings.workers:
        target, _ = targets.okap(
            workdir,
            upstream,
            cpus=None,
            name=f"okap-{workers}w",
            workers=workers,
            log_level=settings.okap_log_level,
            seeded=seeded,
        )
        try:
            log(f"scale: okap with {workers} worker(s), c=32")
            rounds = [
                run_load(
                    target.url,
                    body,
                    concurrency=32,
                    duration=settings.duration,
                    warmup=settings.warmup,
                    tokens_file=seeded.tokens_file,
                    watch=target.watch,
                )
                for _ in range(settings.scale_rounds)
            ]
            rows.append(
                {
                    "workers": workers,
                    "database": settings.okap_db,
                    "concurrency": 32,
                    "rounds": rounds,
                    "median": median_of(rounds),
                }
            )
        finally:
            assert target.service is not None
            target.service.stop()
    return rows


def limit_across_workers(
    settings: Any, workdir: Path, upstream: Service, body: str, log: Log
) -> dict[str, Any]:
    """A grant allowing 50 requests a day, hammered through 2 workers: at most 50 pass."""
    limit, workers = 50, max(2, max(settings.workers))
    seeded = seed(
        workdir / "okap-limit-home",
        f"http://127.0.0.1:{upstream.port}",
        database_url=settings.database_url("limit"),
        limits={"requests_per_minute": None, "requests_per_day": limit},
    )
    target, _ = targets.okap(
        workdir, upstream, cpus=None, name="okap-limit", workers=workers, seeded=seeded
    )
    try:
        log(f"scale: rate limit of {limit}/day across {workers} workers")
        result = run_load(
            target.url,
            body,
            concurrency=32,
            duration=2.0,
            warmup=0.0,
            tokens_file=seeded.tokens_file,
        )
    finally:
        assert target.service is not None
        target.service.stop()
    statuses: dict[str, int] = result["statuses"]  # type: ignore[assignment]
    ok, refused = statuses.get("200", 0), statuses.get("429", 0)
    return {
        "workers": workers,
        "limit": limit,
        "ok": ok,
        "refused": refused,
        "sent": sum(statuses.values()),
        "statuses": statuses,
    }
