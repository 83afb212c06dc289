"""The minimal baseline: FastAPI + one pooled upstream client, swapping one header.

No token check, no grant, no limits, no audit: only what any Python ASGI proxy pays to
receive a request, forward it and relay the answer (streams chunk by chunk). The upstream
client is httpx (what okap uses), httpx2 or aiohttp, to show what the client choice costs.

Run: ``python -m bench.passthrough --port 9200 --upstream http://127.0.0.1:9100 --client httpx``
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

FAKE_KEY = "sk-bench-real-key-0123456789"
DROP = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "authorization"}
)
Forward = Callable[[str, str, dict[str, str], bytes], Awaitable[Response]]


def _out_headers(pairs: Any) -> dict[str, str]:
    return {
        k: v
        for k, v in pairs
        if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server")
    }


def httpx_forwarder(
    upstream: str, module: str = "httpx"
) -> tuple[Forward, Callable[[], Awaitable[None]]]:
    """httpx, or httpx2 (pydantic's successor, which the openai SDK now uses): same API."""
    httpx: Any = importlib.import_module(module)

    client = httpx.AsyncClient(
        base_url=upstream,
        limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
        timeout=60.0,
        trust_env=False,
    )

    async def forward(method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        request = client.build_request(method, path, headers=headers, content=body)
        upstream_response = await client.send(request, stream=True)
        out = _out_headers(upstream_response.headers.items())
        if "text/event-stream" in upstream_response.headers.get("content-type", ""):
            return StreamingResponse(
                upstream_response.aiter_raw(),
                status_code=upstream_response.status_code,
                headers=out,
                background=BackgroundTask(upstream_response.aclose),
            )
        content = await upstream_response.aread()
        await upstream_response.aclose()
        return Response(content, status_code=upstream_response.status_code, headers=out)

    return forward, client.aclose


def aiohttp_forwarder(upstream: str) -> tuple[Forward, Callable[[], Awaitable[None]]]:
    import aiohttp

    holder: dict[str, aiohttp.ClientSession] = {}

    def session() -> aiohttp.ClientSession:
        if "s" not in holder:  # created inside the running loop
            holder["s"] = aiohttp.ClientSession(
                base_url=upstream,
                connector=aiohttp.TCPConnector(limit=512),
                auto_decompress=False,
            )
        return holder["s"]

    async def forward(method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        upstream_response = await session().request(method, path, headers=headers, data=body)
        out = _out_headers(upstream_response.headers.items())
        if "text/event-stream" in upstream_response.headers.get("content-type", ""):

            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in upstream_response.content.iter_any():
                    yield chunk

            return StreamingResponse(
                chunks(),
                status_code=upstream_response.status,
                headers=out,
                background=BackgroundTask(upstream_response.release),
            )
        content = await upstream_response.read()
        upstream_response.release()
        return Response(content, status_code=upstream_response.status, headers=out)

    async def close() -> None:
        if "s" in holder:
            await holder["s"].close()

    return forward, close


def create_app(upstream: str, client: str) -> FastAPI:
    if client == "aiohttp":
        forward, close = aiohttp_forwarder(upstream)
    else:
        forward, close = httpx_forwarder(upstream, client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.api_route("/v1/{path:path}", methods=["GET", "POST"])
    async def proxy(path: str, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k not in DROP}
        headers["authorization"] = f"Bearer {FAKE_KEY}"
        return await forward(request.method, "/v1/" + path, headers, body)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9100")
    parser.add_argument("--client", choices=["httpx", "httpx2", "aiohttp"], default="httpx")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.upstream, args.client),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
