"""What the benchmark points its load at: direct, the baselines, okap, LiteLLM.

Each target is a running :class:`Service` plus how a client calls it (URL, headers, tokens).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.okap_target import BENCH_KEY, Seeded, seed
from bench.procs import Service, free_port

LITELLM_VENV = Path.home() / ".cache" / "okap-bench" / "litellm-venv"
LITELLM_MASTER_KEY = "sk-bench-litellm-master"


@dataclass
class Target:
    name: str
    url: str
    service: Service | None
    headers: list[str] = field(default_factory=list)
    tokens_file: Path | None = None

    @property
    def watch(self) -> list[int]:
        return self.service.pids() if self.service is not None else []


def start_upstream(workdir: Path, cpus: set[int] | None) -> Service:
    port = free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--port", str(port)]
    return Service("upstream", argv, port, "/healthz", cpus=cpus).start(workdir)


def direct(upstream: Service) -> Target:
    return Target(
        "direct",
        f"http://127.0.0.1:{upstream.port}/v1/chat/completions",
        None,
        headers=[f"Authorization: Bearer {BENCH_KEY}"],
    )


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def passthrough(workdir: Path, upstream: Service, client: str, cpus: set[int] | None) -> Target:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.passthrough",
        "--port",
        str(port),
        "--upstream",
        f"http://127.0.0.1:{upstream.port}",
        "--client",
        client,
    ]
    service = Service(f"passthrough-{client}", argv, port, "/v1/healthz", cpus=cpus)
    return Target(
        f"passthrough-{client}",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        service.start(workdir),
        headers=["Authorization: Bearer app-token-is-swapped"],
    )


def okap(
    workdir: Path,
    upstream: Service,
    *,
    cpus: set[int] | None,
    name: str = "okap",
    grants: int = 1,
    database_url: str | None = None,
    workers: int = 1,
    log_level: str = "INFO",
    seeded: Seeded | None = None,
    factory: str | None = None,
) -> tuple[Target, Seeded]:
    """A seeded vault served by the real ``okap-server serve`` (or uvicorn --workers N)."""
    if seeded is None:
        seeded = seed(
            workdir / f"{name}-home",
            f"http://127.0.0.1:{upstream.port}",
            grants=grants,
            database_url=database_url,
        )
    port = free_port()
    env = {**seeded.env, "OKAP_LOG_LEVEL": log_level, "OKAP_PORT": str(port)}
    if workers == 1 and factory is None:
        argv = [sys.executable, "-m", "okap_server.cli", "serve", "--port", str(port)]
    else:
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory or "bench.okap_target:app_from_env",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            log_level.lower(),
            "--no-server-header",
            "--no-proxy-headers",
        ]
    service = Service(name, argv, port, "/healthz", env=env, cpus=cpus)
    target = Target(
        name,
        f"http://127.0.0.1:{port}/v1/openai/chat/completions",
        service.start(workdir),
        tokens_file=seeded.tokens_file,
    )
    return target, seeded


def ensure_litellm(log: Path) -> Path:
    """LiteLLM's proxy from PyPI in its own venv (it pins its own FastAPI and friends)."""
    executable = LITELLM_VENV / "bin" / "litellm"
    if executable.exists():
        return executable
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True, stdout=out)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return executable


def litellm(workdir: Path, upstream: Service, cpus: set[int] | None) -> Target:
    executable = ensure_litellm(workdir / "litellm-install.log")
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: http://127.0.0.1:{upstream.port}/v1\n"
        f"      api_key: {BENCH_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_MASTER_KEY}\n"
    )
    port = free_port()
    argv = [str(executable), "--config", str(config), "--port", str(port), "--num_workers", "1"]
    env = {
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price map at start-up
        "DISABLE_SCHEMA_UPDATE": "true",
    }
    service = Service("litellm", argv, port, "/health/liveliness", env=env, cpus=cpus)
    return Target(
        "litellm",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        service.start(workdir, timeout=180),
        headers=[f"Authorization: Bearer {LITELLM_MASTER_KEY}"],
    )
