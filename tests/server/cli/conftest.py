"""Running ``okap-server`` in-process (fast) and as a real subprocess (end to end)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from okap_server.cli import main
from okap_server.settings import Settings


@dataclass
class CliResult:
    code: int
    out: str
    err: str


CliRunner = Callable[..., CliResult]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any OKAP_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKAP_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_subprocess(
    *argv: str, env: dict[str, str], stdin: str = "", cwd: Path | None = None, timeout: float = 60
) -> CliResult:
    done = subprocess.run(
        [sys.executable, "-m", "okap_server.cli", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def settings_env(settings: Settings) -> dict[str, str]:
    """The test's vault, and its own free public URL: doctor looks for a server there, and
    must not find whatever else on this machine listens on the default port."""
    return {
        "OKAP_HOME": str(settings.home),
        "OKAP_DATABASE_URL": settings.effective_database_url,
        "OKAP_PUBLIC_URL": settings.effective_public_url,
    }


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The process environment pointing the CLI at this test's vault."""
    for name in list(os.environ):
        if name.startswith("OKAP_"):
            monkeypatch.delenv(name)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    yield settings


@pytest.fixture
def cli(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``okap-server ARGV`` in this process with ``stdin`` piped in."""

    def run(*argv: str, stdin: str = "") -> CliResult:
        capsys.readouterr()
        code = main(list(argv), stdin=io.StringIO(stdin))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
