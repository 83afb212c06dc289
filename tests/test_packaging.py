"""The built wheel is complete: templates, migrations and type markers ship inside it, and an
installed (non-editable) copy run from another directory finds its templates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("okap_vault-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_wheel_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        entry_points = archive.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    for required in (
        "okap_server/templates/base.html",
        "okap_server/templates/setup.html",
        "okap_server/templates/static/okap.css",
        "okap_server/py.typed",
        "okap_client/py.typed",
        "okap_server/db/migrations/env.py",
        "okap_server/db/migrations/script.py.mako",
        "okap_server/db/migrations/versions/0001_initial_schema.py",
        "okap_server/cli/__main__.py",
    ):
        assert required in names, required
    assert not any(n.startswith(("tests/", "templates/")) for n in names)
    assert re.search(r"okap-server = okap_server\.cli:main", entry_points)
    assert re.search(r"\bokap = okap_client\.cli:main", entry_points)
    text = metadata.decode()
    assert "Name: okap-vault" in text
    base = [
        line
        for line in text.splitlines()
        if line.startswith("Requires-Dist:") and "extra" not in line
    ]
    assert [line.split()[1].split(">")[0] for line in base] == ["httpx"]  # apps stay light
    assert "Provides-Extra: server" in text


def test_installed_wheel_serves_its_templates_from_another_directory(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKAP_")}
    env.update(PYTHONPATH=str(installed), PYTHONUNBUFFERED="1", OKAP_HOME=str(tmp_path / "home"))
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import okap_server, okap_server.web.templating as t;"
            "print(okap_server.__file__); print(t.templates_dir())",
        ],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(installed) for p in where), where
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "okap_server.cli", "serve", "--port", str(port)],
        env=env,
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        link = _setup_link(process)
        _wait_until_up(f"http://127.0.0.1:{port}/healthz")
        page = httpx.get(link)
        assert page.status_code == 200 and '<label for="username">Username</label>' in page.text
        css = httpx.get(f"http://127.0.0.1:{port}/static/okap.css")
        assert css.status_code == 200 and "--accent" in css.text
    finally:
        process.terminate()
        process.wait(timeout=15)
        assert process.stdout is not None
        process.stdout.close()


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer"
        time.sleep(0.1)


def _setup_link(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    for line in _lines(process):
        found = re.search(r"(http://\S+/setup\?token=\S+)", line)
        if found:
            return found.group(1)
        if time.monotonic() > deadline:
            break
    raise AssertionError("no setup link printed")


def _lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            return
        yield line
