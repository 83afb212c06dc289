"""``okap-server serve`` as a real process: first start, setup link, probes, and refusals."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, create_engine, select

from okap_server.accounts.models import Account
from okap_server.accounts.service import create_account
from okap_server.context import Vault, open_vault
from okap_server.db.engine import make_engine
from okap_server.settings import Settings
from okap_server.vault.crypto import generate_master_key
from okap_server.vault.masterkey import encode_master_key
from okap_server.vault.models import ProviderKey
from tests.server.cli.conftest import clean_env, run_subprocess
from tests.support.databases import database_url_for
from tests.support.live import free_port
from tests.support.process import interrupt

# A page: on localhost, never on the 127.0.0.1 the vault listens on (web/page_origin.py).
SETUP_LINK = re.compile(r"(http://localhost:\d+/setup\?token=[A-Za-z0-9_-]+)")


@contextmanager
def serving(env: dict[str, str], port: int, cwd: Path) -> Iterator[tuple[str, list[str]]]:
    """Start ``okap-server serve`` and wait until it answers; yields (base url, output lines).

    A thread drains the output (a pipe read with select would miss lines already buffered);
    after the block, ``lines`` holds everything the server printed, access log included."""
    process = subprocess.Popen(
        [sys.executable, "-m", "okap_server.cli", "serve", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    try:
        while not any("Uvicorn running" in line for line in list(lines)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("serve did not start:\n" + "".join(lines))
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", lines
    finally:
        interrupt(process)
        reader.join(timeout=10)
        process.stdout.close()


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """OKAP_DATABASE_URL for postgres; nothing for sqlite (the embedded default is used)."""
    if backend == "sqlite":
        yield {}
    else:
        with database_url_for(backend, tmp_path) as url:
            yield {"OKAP_DATABASE_URL": url}


def test_first_start_prints_a_one_time_setup_link(tmp_path: Path, database: dict[str, str]) -> None:
    home = tmp_path / "fresh-home"
    port = free_port()
    env = clean_env(OKAP_HOME=str(home), **database)
    with serving(env, port, cwd=tmp_path) as (url, lines):
        output = "".join(lines)
        link = SETUP_LINK.search(output)
        assert link, output
        assert f"okap vault listening on {url}\n" in output
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
        assert httpx.get(f"{url}/readyz").status_code == 200
        with httpx.Client(timeout=30) as browser:
            form = browser.get(link.group(1))
            assert form.status_code == 200 and "Username" in form.text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf
            token = link.group(1).split("token=")[1]
            created = browser.post(
                link.group(1).split("?")[0],
                data={
                    "token": token,
                    "csrf_token": csrf.group(1),
                    "username": "alice",
                    "password": "a long enough password",
                },
            )
            assert (
                created.status_code == 303
                and created.headers["location"] == "/signin?created=alice"
            )
            assert browser.get(link.group(1)).status_code == 410
        with httpx.Client() as stranger:
            assert stranger.get(link.group(1)).status_code == 410
    access_log = "".join(lines)[link.end() :]
    assert "GET /setup?token=[redacted]" in access_log and token not in access_log
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "master.key").stat().st_mode) == 0o600
    if not database:
        db = home / "okap.db"
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        for sidecar in home.glob("okap.db-*"):
            assert stat.S_IMODE(sidecar.stat().st_mode) & 0o077 == 0
        engine = make_engine(f"sqlite:///{db}")
        with Session(engine) as session:
            [owner] = session.exec(select(Account)).all()
        engine.dispose()
        assert owner.username == "alice" and owner.is_admin
    # Restarted with an account: no new link.
    with serving(env, free_port(), cwd=tmp_path) as (_url, lines):
        assert not SETUP_LINK.search("".join(lines))


def test_wrong_master_key_stops_start_and_leaves_data_intact(
    settings: Settings, tmp_path: Path
) -> None:
    vault = open_vault(settings)
    with vault.session() as session:
        alice = create_account(session, "alice", "a long enough password")
        vault.keys.add(
            session,
            account_id=alice.id,
            provider="openai",
            label="work",
            secret="sk-proj-intact0000000000000000001",
        )
        session.commit()
        before = [(k.id, k.nonce, k.ciphertext) for k in session.exec(select(ProviderKey))]
    vault.dispose()
    key_file_before = settings.master_key_file.read_bytes()
    wrong = encode_master_key(generate_master_key())
    env = clean_env(
        OKAP_HOME=str(settings.home),
        OKAP_DATABASE_URL=settings.effective_database_url,
        OKAP_MASTER_KEY=wrong,
    )
    result = run_subprocess("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert result.code != 0
    assert result.err.count("\n") == 1, result.err
    assert "does not match this vault's secrets" in result.err and wrong not in result.err
    assert "Uvicorn running" not in result.out + result.err
    assert settings.master_key_file.read_bytes() == key_file_before
    reopened = open_vault(settings)
    try:
        with reopened.session() as session:
            rows = session.exec(select(ProviderKey)).all()
            assert [(k.id, k.nonce, k.ciphertext) for k in rows] == before
            assert reopened.keys.reveal(rows[0]) == "sk-proj-intact0000000000000000001"
    finally:
        reopened.dispose()


def test_a_bad_setting_stops_start_with_one_line_naming_it(tmp_path: Path) -> None:
    env = clean_env(OKAP_HOME=str(tmp_path / "home"), OKAP_PORT="abc")
    result = run_subprocess("serve", env=env, cwd=tmp_path)
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.startswith("okap-server: OKAP_PORT:")
    assert not (tmp_path / "home").exists()
    config = tmp_path / "okap.toml"
    config.write_text('public_url = "ftp://vault.example"\n')
    from_file = run_subprocess(
        "serve",
        env=clean_env(OKAP_HOME=str(tmp_path / "home"), OKAP_CONFIG=str(config)),
        cwd=tmp_path,
    )
    assert from_file.code == 2 and from_file.err.count("\n") == 1
    assert "OKAP_PUBLIC_URL" in from_file.err and "http://" in from_file.err


def test_an_unusable_okap_home_is_one_clear_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("I am a file")
    result = run_subprocess("serve", env=clean_env(OKAP_HOME=str(not_a_folder)), cwd=tmp_path)
    assert result.code == 2 and result.err.count("\n") == 1
    assert "is not a directory" in result.err
    assert not_a_folder.read_text() == "I am a file"


def test_readyz_answers_503_when_the_database_is_unreachable(
    vault: Vault, backend: str, tmp_path: Path
) -> None:
    from okap_server.app import create_app
    from tests.support.live import serve_app

    with serve_app(create_app(vault), free_port()) as url:
        assert httpx.get(f"{url}/readyz").status_code == 200
    if backend == "sqlite":
        gone = f"sqlite:///{tmp_path / 'no-such-folder' / 'okap.db'}"
    else:
        gone = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    cut_off = dataclasses.replace(vault, engine=create_engine(gone))
    with serve_app(create_app(cut_off), free_port()) as url:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "unreachable"
        assert httpx.get(f"{url}/healthz").status_code == 200  # alive, just not ready
    cut_off.engine.dispose()


def test_an_unreadable_okap_home_is_one_clear_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "okap.db").write_bytes(b"")
    env = clean_env(OKAP_HOME=str(home))
    if os.geteuid() == 0:  # root reads any folder: run as nobody, to whom it is closed
        tmp_path.chmod(0o711)
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root")
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-m",
                "okap_server.cli",
                "serve",
            ],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
        )
        result_code, err = done.returncode, done.stderr
    else:
        home.chmod(0)
        try:
            result = run_subprocess("serve", env=env, cwd=tmp_path)
        finally:
            home.chmod(0o700)
        result_code, err = result.code, result.err
    assert result_code == 2 and err.count("\n") == 1, err
    assert "permission denied" in err.lower() and str(home) in err
    assert sorted(p.name for p in home.iterdir()) == ["okap.db"]
    assert (home / "okap.db").read_bytes() == b""
