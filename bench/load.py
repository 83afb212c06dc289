"""A bounded asyncio HTTP/1.1 load generator (uvloop + httptools), run in its own process.

``concurrency`` keep-alive connections each send one request at a time for ``warmup +
duration`` seconds; only requests that complete inside the measured window count. For each it
records the latency (request written → response complete) and the time to first body byte
(for a stream: the first event). When ``--watch-pid`` is given it also reads those processes'
CPU time (utime + stime from ``/proc/<pid>/stat``) at the window's start and end.

Prints one JSON object. Example::

    python -m bench.load --url http://127.0.0.1:9100/v1/chat/completions \\
        --body '{"model":"gpt-4o-mini","messages":[]}' --concurrency 32 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import httptools

from bench.loop import run

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (fields 14 and 15 of /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Closed(Exception):
    """The server closed the connection before the response was complete."""


class Client(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[None] | None = None
        self.first_byte = 0.0
        self.status = 0
        self.received = 0
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(Closed())

    def _fail(self, exc: BaseException) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        self.received += len(body)

    def on_message_complete(self) -> None:
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def send(self, request: bytes) -> asyncio.Future[None]:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.first_byte, self.status, self.received = 0.0, 0, 0
        self.transport.write(request)
        return self.done


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    received: int = 0


def build_requests(url: str, body: bytes, headers: list[str], tokens: list[str]) -> list[bytes]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    head += "Content-Type: application/json\r\nAccept: */*\r\n"
    head += "".join(f"{h}\r\n" for h in headers)
    head += f"Content-Length: {len(body)}\r\n"
    if not tokens:
        return [head.encode() + b"\r\n" + body]
    return [(head + f"Authorization: Bearer {t}\r\n\r\n").encode() + body for t in tokens]


async def drive(args: argparse.Namespace, requests: list[bytes]) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    tally = Tally()
    now = time.perf_counter()
    window_start = now + args.warmup
    window_end = window_start + args.duration
    cpu: dict[str, float] = {}
    pids: list[int] = args.watch_pid or []

    def mark(name: str) -> None:
        cpu[name] = cpu_seconds(pids)
        cpu[name + "_wall"] = time.perf_counter()

    loop.call_later(args.warmup, mark, "start")
    loop.call_later(args.warmup + args.duration, mark, "end")
    counter = [0]

    async def connect() -> Client:
        _, protocol = await loop.create_connection(Client, host, port)
        return protocol

    async def worker(index: int) -> None:
        await asyncio.sleep(index * 0.001)
        client: Client | None = None
        while time.perf_counter() < window_end:
            if client is None or client.transport is None or not client.keep_alive:
                try:
                    client = await connect()
                except OSError:
                    tally.errors += 1
                    await asyncio.sleep(0.05)
                    continue
            request = requests[counter[0] % len(requests)]
            counter[0] += 1
            started = time.perf_counter()
            try:
                await asyncio.wait_for(client.send(request), args.timeout)
            except (Closed, httptools.HttpParserError, TimeoutError, OSError):
                if window_start <= time.perf_counter() <= window_end:
                    tally.errors += 1
                if client.transport is not None:
                    client.transport.close()
                client = None
                continue
            finished = time.perf_counter()
            if not (window_start <= finished <= window_end):
                continue
            tally.statuses[client.status] = tally.statuses.get(client.status, 0) + 1
            if client.status >= 400:
                tally.errors += 1
                continue
            tally.latencies.append(finished - started)
            tally.ttfbs.append(client.first_byte - started)
            tally.received += client.received
        if client is not None and client.transport is not None:
            client.transport.close()

    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    latencies = sorted(tally.latencies)
    ttfbs = sorted(tally.ttfbs)
    ms = 1000.0

    def scaled(value: float | None) -> float | None:
        return None if value is None else round(value * ms, 3)

    count = len(latencies)
    cpu_used = cpu.get("end", 0.0) - cpu.get("start", 0.0) if pids else None
    return {
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "requests": count,
        "errors": tally.errors,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "rps": round(count / args.duration, 1),
        "p50_ms": scaled(percentile(latencies, 0.50)),
        "p90_ms": scaled(percentile(latencies, 0.90)),
        "p99_ms": scaled(percentile(latencies, 0.99)),
        "mean_ms": scaled(sum(latencies) / count if count else None),
        "ttfb_p50_ms": scaled(percentile(ttfbs, 0.50)),
        "ttfb_p99_ms": scaled(percentile(ttfbs, 0.99)),
        "bytes_per_response": round(tally.received / count) if count else None,
        "server_cpu_s": None if cpu_used is None else round(cpu_used, 3),
        "server_cpu_ms_per_request": (
            round(cpu_used * ms / count, 4) if cpu_used is not None and count else None
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bounded asyncio HTTP load generator")
    parser.add_argument("--url", required=True)
    body = parser.add_mutually_exclusive_group(required=True)
    body.add_argument("--body")
    body.add_argument("--body-file", type=Path)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--tokens-file", type=Path, help="bearer tokens, one a line, rotated")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--watch-pid", type=int, action="append")
    args = parser.parse_args(argv)
    payload = args.body.encode() if args.body is not None else args.body_file.read_bytes()
    tokens: list[str] = []
    if args.tokens_file is not None:
        tokens = [t.strip() for t in args.tokens_file.read_text().splitlines() if t.strip()]
    requests = build_requests(args.url, payload, args.header, tokens)
    result = run(drive(args, requests))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
