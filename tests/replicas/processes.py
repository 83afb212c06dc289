"""Real ``okap-server serve`` replicas in child processes, sharing one database and key.

Each replica is started exactly as an operator would start one (``python -m okap_server.cli
serve``) with its settings in ``OKAP_*`` environment variables, and is stopped with SIGTERM
so its clean shutdown (which flushes the proxy's audit records) is exercised too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.live import free_port


@dataclass
class Replica:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def replica_env(base: Mapping[str, str], home: Path, port: int) -> dict[str, str]:
    """A clean environment: nothing OKAP_* leaks in from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKAP_")}
    env.update(base)
    env.update(
        {
            "OKAP_HOME": str(home),
            "OKAP_HOST": "127.0.0.1",
            "OKAP_PORT": str(port),
            "OKAP_LOG_LEVEL": "WARNING",
        }
    )
    env.setdefault("OKAP_PUBLIC_URL", f"http://127.0.0.1:{port}")
    return env


def wait_ready(replica: Replica, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            raise RuntimeError(f"replica {replica.name} exited:\n{replica.log()[-3000:]}")
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"replica {replica.name} did not become ready:\n{replica.log()[-3000:]}")


def start_replica(name: str, env: Mapping[str, str], workdir: Path) -> Replica:
    port = free_port()
    log_path = workdir / f"replica-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "okap_server.cli", "serve"],
            env=replica_env(env, workdir / f"home-{name}", port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Replica(name, f"http://127.0.0.1:{port}", process, log_path)


@contextmanager
def running_replicas(
    names: list[str], env: Mapping[str, str], workdir: Path
) -> Iterator[list[Replica]]:
    """Start every replica at once (they come up in parallel), wait for each, stop each."""
    with ExitStack() as stack:
        replicas = []
        for name in names:
            replica = start_replica(name, env, workdir)
            stack.callback(replica.stop)
            replicas.append(replica)
        for replica in replicas:
            wait_ready(replica)
        yield replicas
