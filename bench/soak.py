"""A bounded soak of the okap proxy: minutes of mixed streaming and plain load on loopback,
watching the server for memory growth and file-descriptor leaks, then checking that every
request it answered is in the audit (``request_log``).

Run: ``python -m bench.soak`` (3 minutes of warm-up, then 3 measured), or
``python -m bench.soak --duration 600 --concurrency 32 --db postgres``. The load is paused at
the end of warm-up and at the end so both are sampled at rest. It prints a JSON summary and a
verdict (``soak: PASS`` / ``soak: FAIL: ...``, on stderr), and exits 1 if a bound is broken:
RSS growth at rest after warm-up over ``--max-rss-growth-mb`` (default 5), an RSS slope over
the last half above ``--max-rss-slope`` (0.5 MB per 10,000 requests), descriptor growth at
rest over ``--max-fd-growth`` (default 8), a failed request, or an answered request missing
from the audit. ``--trace DIR`` runs the server under ``bench/memtrace.py``.
Not run in CI (see bench/README.md, "Soak").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.okap_target import seed
from bench.procs import Service, free_port, status_kb
from okap_server.db.engine import make_engine
from okap_server.proxy.models import RequestLog

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64}


@dataclass
class Tally:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    streamed: int = 0
    in_flight: int = 0
    samples: list[dict[str, float]] = field(default_factory=list)
    # The server at rest (no request in flight) after warm-up and at the end.
    idle: dict[str, dict[str, float]] = field(default_factory=dict)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sample(pid: int, started: float, tally: Tally) -> dict[str, float]:
    return {
        "t": round(time.monotonic() - started, 1),
        "requests": tally.ok + tally.failed,
        "rss_mb": round(status_kb(pid, "VmRSS") / 1024, 2),
        "fds": fd_count(pid),
    }


async def worker(
    n: int, url: str, token: str, go: asyncio.Event, stop: asyncio.Event, tally: Tally
) -> None:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
        i = 0
        while True:
            await go.wait()
            if stop.is_set():
                return
            stream = (n + i) % 2 == 0
            i += 1
            tally.sent += 1
            tally.in_flight += 1
            try:
                body = {**BODY, "stream": stream}
                async with client.stream("POST", url, json=body, headers=headers) as response:
                    data = await response.aread()
                if response.status_code == 200 and (not stream or b"[DONE]" in data):
                    tally.ok += 1
                    tally.streamed += stream
                else:
                    tally.failed += 1
            except httpx.HTTPError:
                tally.failed += 1
            finally:
                tally.in_flight -= 1


async def at_rest(
    go: asyncio.Event, tally: Tally, pid: int, started: float, settle: float
) -> dict[str, float]:
    """Pause the load, let the server go idle (recorder flushed, overflow connections
    returned), and sample it: the same state at both ends, so in-flight requests, their
    sockets and buffers do not count as growth."""
    go.clear()
    while tally.in_flight:
        await asyncio.sleep(0.05)
    await asyncio.sleep(settle)
    return sample(pid, started, tally)


async def drive(args: argparse.Namespace, url: str, token: str, pid: int) -> Tally:
    tally = Tally()
    go, stop = asyncio.Event(), asyncio.Event()
    go.set()
    started = time.monotonic()
    tasks = [
        asyncio.create_task(worker(n, url, token, go, stop, tally)) for n in range(args.concurrency)
    ]
    warm = started + args.warmup
    end = warm + args.duration
    while time.monotonic() < end:
        await asyncio.sleep(min(args.sample_every, max(end - time.monotonic(), 0)))
        tally.samples.append(sample(pid, started, tally))
        if "after_warmup" not in tally.idle and time.monotonic() >= warm:
            tally.idle["after_warmup"] = await at_rest(go, tally, pid, started, args.settle)
            if args.tracemalloc:
                os.kill(pid, signal.SIGUSR1)  # bench.memtrace: start tracing
            go.set()
        elif args.tracemalloc and len(tally.samples) % 12 == 0:
            os.kill(pid, signal.SIGUSR1)  # bench.memtrace: a snapshot
    tally.idle["end"] = await at_rest(go, tally, pid, started, args.settle)
    tally.idle.setdefault("after_warmup", tally.idle["end"])  # no measured time at all
    stop.set()
    go.set()
    await asyncio.gather(*tasks)
    return tally


def slope_per_10k(points: list[dict[str, float]]) -> float | None:
    """Least-squares MB of RSS per 10,000 requests over ``points``."""
    if len(points) < 3:
        return None
    xs = [p["requests"] for p in points]
    ys = [p["rss_mb"] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return round(cov / var * 10_000, 3)


def audit_count(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RequestLog)).scalar_one())
    finally:
        engine.dispose()


def summarise(args: argparse.Namespace, tally: Tally, logged: int) -> dict[str, Any]:
    base, last = tally.idle["after_warmup"], tally.idle["end"]
    measured = [s for s in tally.samples if s["t"] >= base["t"]]
    second_half = measured[len(measured) // 2 :]
    rss_growth = round(last["rss_mb"] - base["rss_mb"], 2)
    slope = slope_per_10k(measured)
    slope_late = slope_per_10k(second_half)
    fd_growth = int(last["fds"] - base["fds"])
    requests = last["requests"] - base["requests"]
    summary: dict[str, Any] = {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "concurrency": args.concurrency,
        "db": args.db,
        "requests_sent": tally.sent,
        "answered_ok": tally.ok,
        "streamed_ok": tally.streamed,
        "failed": tally.failed,
        "audit_rows": logged,
        "records_missing": max(tally.ok - logged, 0),
        "requests_measured": int(requests),
        "rss_mb_after_warmup": base["rss_mb"],
        "rss_mb_end": last["rss_mb"],
        "rss_growth_mb": rss_growth,
        "rss_slope_mb_per_10k": slope,
        "rss_slope_last_half_mb_per_10k": slope_late,
        "rss_peak_mb": max(s["rss_mb"] for s in tally.samples),
        "fds_after_warmup": base["fds"],
        "fds_end": last["fds"],
        "fd_growth": fd_growth,
        "bounds": {
            "rss_growth_mb": args.max_rss_growth_mb,
            "rss_slope_last_half_mb_per_10k": args.max_rss_slope,
            "fd_growth": args.max_fd_growth,
        },
    }
    broken = []
    if rss_growth > args.max_rss_growth_mb:
        broken.append(f"RSS grew {rss_growth} MB after warm-up (bound {args.max_rss_growth_mb})")
    if slope_late is not None and slope_late > args.max_rss_slope:
        broken.append(
            f"RSS still rising over the last half: {slope_late} MB per 10k requests "
            f"(bound {args.max_rss_slope})"
        )
    if fd_growth > args.max_fd_growth:
        broken.append(f"{fd_growth} more descriptors at rest (bound {args.max_fd_growth})")
    if tally.failed:
        broken.append(f"{tally.failed} requests failed")
    if logged < tally.ok:
        broken.append(f"{tally.ok - logged} answered requests missing from the audit")
    summary["passed"] = not broken
    summary["verdict"] = "PASS" if not broken else "FAIL: " + "; ".join(broken)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=180.0, help="seconds before the baseline")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--max-rss-growth-mb", type=float, default=5.0)
    parser.add_argument(
        "--max-rss-slope",
        type=float,
        default=0.5,
        help="MB of RSS per 10,000 requests, fitted over the last half of the measured time",
    )
    parser.add_argument("--max-fd-growth", type=int, default=8)
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds at rest before each idle sample"
    )
    parser.add_argument("--keep", action="store_true", help="keep the vault home and logs")
    parser.add_argument(
        "--trace",
        type=Path,
        default=None,
        help="run the server under bench.memtrace, writing its figures to this folder",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="with --trace: trace Python allocations from the end of warm-up (slow)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra environment variable for the server (e.g. MALLOC_ARENA_MAX=2)",
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="okap-soak-"))
    database_url = f"sqlite:///{workdir / 'home' / 'okap.db'}"
    pg_name = None
    if args.db == "postgres":
        import psycopg

        pg_name = f"okap_soak_{os.getpid()}"
        with psycopg.connect(args.pg_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        base = args.pg_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        database_url = f"{base}/{pg_name}"
    upstream_port, okap_port = free_port(), free_port()
    upstream = Service(
        "upstream",
        [sys.executable, "-m", "bench.upstream", "--port", str(upstream_port)],
        upstream_port,
        health_path="/",
    )
    okap: Service | None = None
    try:
        upstream.start(workdir)
        seeded = seed(
            workdir / "home", f"http://127.0.0.1:{upstream_port}", database_url=database_url
        )
        env = {
            **seeded.env,
            "OKAP_DATABASE_URL": database_url,
            "OKAP_PROXY_AUDIT_FLUSH_SECONDS": "0.25",
            **dict(item.split("=", 1) for item in args.server_env),
        }
        server = ["-m", "okap_server.cli"]
        if args.trace:
            server = ["-m", "bench.memtrace", str(args.trace.resolve())]
        okap = Service(
            "okap",
            [sys.executable, *server, "serve", "--port", str(okap_port)],
            okap_port,
            env=env,
        ).start(workdir)
        token = seeded.tokens_file.read_text().split()[0]
        url = f"http://127.0.0.1:{okap_port}/v1/openai/chat/completions"
        tally = asyncio.run(drive(args, url, token, okap.pid))
        okap.stop()  # a clean shutdown flushes the recorder
        summary = summarise(args, tally, audit_count(database_url))
    finally:
        if okap is not None:
            okap.stop()
        upstream.stop()
        if pg_name is not None:
            import psycopg

            with psycopg.connect(args.pg_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary["samples"] = tally.samples
    print(json.dumps(summary, indent=2))
    print(f"soak: {summary['verdict']}", file=sys.stderr)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
