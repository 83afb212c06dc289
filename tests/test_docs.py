"""The README's promises stay true: its two commands, every setting, every provider, every
command; CI runs the README's test command; the container image is built as documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pydantic import AliasChoices

from okap_server.catalog import BUILTIN_PROVIDERS
from okap_server.cli import build_parser
from okap_server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
VENV = "python3 -m venv .venv && . .venv/bin/activate && "
INSTALL = VENV + 'pip install ".[server]" && okap-server serve'
TESTS = VENV + 'pip install -e ".[test]" && python -m pytest'


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert blocks[:2] == [INSTALL + "\n", TESTS + "\n"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert TESTS in ci
    assert "set -euo pipefail" in ci and "apt-get install -y" in ci and "chromium" in ci
    checks = (
        "ruff check .",
        "ruff format --check .",
        "mypy okap_server okap_client",
        "lint-imports",
    )
    for check in checks:
        assert check in ci


def environment_name(name: str) -> str:
    """A setting's variable: ``OKAP_<NAME>``, or the first name of its alias (a library's
    own variable, such as ``PROMETHEUS_MULTIPROC_DIR``)."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"OKAP_{name.upper()}"


def test_readme_documents_every_setting() -> None:
    missing = [
        environment_name(name)
        for name in Settings.model_fields
        if f"`{environment_name(name)}`" not in README
    ]
    assert not missing, f"add these settings to README.md 'Configuration': {missing}"


def test_readme_lists_every_provider_and_its_default_upstream() -> None:
    for row in BUILTIN_PROVIDERS:
        assert re.search(rf"\| `{row.id}`.*\| `{re.escape(row.upstream)}` \|", README), row.id


def test_readme_documents_every_command() -> None:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name in commands.choices:
        assert f"`okap-server {name}" in README, name


def test_container_image_is_slim_non_root_and_checks_health() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2 and "-slim" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert "OKAP_HOME=/data" in dockerfile and 'VOLUME ["/data"]' in dockerfile
    assert "OKAP_HOST=0.0.0.0" in dockerfile
    healthcheck = next(line for line in dockerfile.splitlines() if "/healthz" in line)
    assert "python" in healthcheck and "curl" not in healthcheck
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "postgres" in compose and "OKAP_DATABASE_URL: postgresql://" in compose
    assert 'OKAP_WEBHOOK_ALLOW_LOOPBACK: "false"' in compose  # others reach a team vault
