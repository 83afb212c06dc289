"""Starting, watching and stopping the benchmark's processes; reading /proc about them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers are children of its supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def status_kb(pid: int, key: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/<pid>/status, in kB (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/<pid>/clear_refs``, Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def machine_busy_percent(seconds: float = 2.0) -> float:
    """How busy all CPUs were over ``seconds`` (from /proc/stat), before we start anything."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    spent = total1 - total0
    return round(100.0 * (1 - (idle1 - idle0) / spent), 1) if spent else 0.0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


@dataclass
class Service:
    """One server process of the benchmark, with its log file."""

    name: str
    argv: list[str]
    port: int
    health_path: str = "/healthz"
    env: dict[str, str] = field(default_factory=dict)
    cpus: set[int] | None = None
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self, workdir: Path, timeout: float = 60.0) -> Service:
        self.log = workdir / f"{self.name}.log"
        cpus = self.cpus
        environment = {**os.environ, **self.env}

        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environment,
                preexec_fn=pin,
                cwd=Path(__file__).resolve().parent.parent,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{self.health_path}"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up; see {self.log}")
            try:
                if httpx.get(url, timeout=2.0, trust_env=False).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s; see {self.log}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pids(self) -> list[int]:
        return descendants(self.pid)

    def peak_rss_mb(self) -> float:
        return round(sum(status_kb(p, "VmHWM") for p in self.pids()) / 1024, 1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def run_load(
    url: str,
    body: str,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    headers: Sequence[str] = (),
    tokens_file: Path | None = None,
    watch: Sequence[int] = (),
    cpus: set[int] | None = None,
) -> dict[str, object]:
    """Run ``bench.load`` in its own process and return its JSON."""
    argv = [
        sys.executable,
        "-m",
        "bench.load",
        "--url",
        url,
        "--body",
        body,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    ]
    for header in headers:
        argv += ["--header", header]
    if tokens_file is not None:
        argv += ["--tokens-file", str(tokens_file)]
    for pid in watch:
        argv += ["--watch-pid", str(pid)]

    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    done = subprocess.run(
        argv,
        capture_output=True,
        check=False,
        timeout=duration + warmup + 120,
        preexec_fn=pin,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result
