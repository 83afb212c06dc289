"""The vault as a real ``okap-server serve`` process, configured through its environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream


def server_env(settings: Settings, fake: FakeUpstream) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKAP_")}
    upstreams = fake.upstreams()
    env.update(
        PYTHONUNBUFFERED="1",
        OKAP_HOME=str(settings.home),
        OKAP_DATABASE_URL=settings.effective_database_url,
        OKAP_PUBLIC_URL=settings.effective_public_url,
        OKAP_UPSTREAM_OPENAI=upstreams["openai"],
        OKAP_UPSTREAM_ANTHROPIC=upstreams["anthropic"],
        OKAP_PROXY_AUDIT_FLUSH_SECONDS="0.05",
        OKAP_PROXY_SWEEP_SECONDS="0.2",
        OKAP_PROXY_RETRY_BASE_SECONDS="0.01",
        OKAP_LOG_LEVEL="WARNING",
    )
    return env


@contextmanager
def vault_process(
    env: dict[str, str], port: int, log: Path, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``okap-server serve [args]`` as a real process, ready when /healthz answers."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "okap_server.cli", "serve", "--port", str(port), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the vault did not start:\n" + log.read_text())
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            interrupt(process)


def interrupt(process: subprocess.Popen[Any]) -> None:
    """Stop a server as Ctrl-C would (a clean shutdown), killing it if that takes 30 s."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
