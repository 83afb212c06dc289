"""Secrets stay secret: a realistic slice of traffic (three providers through their SDKs,
streams, errors, the OAuth and OKAP front doors, the dashboard) with every log record
captured at DEBUG, every answer, page, audit row and database byte searched for a provider
key or an okap token. Token lookups go by hash, and secret comparisons are constant-time."""

from __future__ import annotations

import ast
import hashlib
import http.client
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import psycopg
import pytest
from sqlalchemy import event
from sqlmodel import select

import okap_server
from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from okap_server.db.engine import sqlite_path
from okap_server.proxy.models import RequestLog
from okap_server.settings import Settings
from tests.security.conftest import OPENAI_SECRET
from tests.server.authorization.conftest import RedirectListener, code_from, redeem, start_code_flow
from tests.server.proxy.test_sdks import anthropic_client, google_client, openai_client
from tests.support.fake_upstream import BreakStream, FakeUpstream, Respond
from tests.support.grants import FAKE_KEYS, entry, make_grant, revoke
from tests.support.person import Person

HI = [{"role": "user", "content": "hi"}]
DASHBOARD_SECRET = "sk-ant-api03-DASHBOARDadded0123456789abcdefXYZ"
# The app's own SDK loggers run in this process too; they are the app's, not the vault's.
APP_LOGGERS = ("openai", "anthropic", "google_genai", "google")
VAULT_LOGGERS = (
    "",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "httpx",
    "httpcore",
    "sqlalchemy",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "okap",
    "okap_server",
    "authlib",
    "fastapi",
    "starlette",
)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.formatter_ = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(APP_LOGGERS):
            return
        text = f"{record.name} {record.getMessage()} {record.args!r}"
        if record.exc_info:
            text += self.formatter_.formatException(record.exc_info)
        if record.stack_info:
            text += record.stack_info
        self.lines.append(text)


@pytest.fixture
def everything_logged() -> Iterator[Capture]:
    capture = Capture()
    loggers = [logging.getLogger(name) for name in VAULT_LOGGERS]
    previous = [(lg, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(capture)
        lg.propagate = False
    yield capture
    for lg, level, propagate in previous:
        lg.removeHandler(capture)
        lg.setLevel(level)
        lg.propagate = propagate


def drive_traffic(
    vault: Vault, live_url: str, person: Person, listener: RedirectListener, fake: FakeUpstream
) -> tuple[list[str], list[str]]:
    """The slice of traffic; returns (tokens issued, everything the apps and person saw)."""
    seen: list[str] = []
    # The person adds a key through the dashboard.
    page = person.open("/keys")
    form = person.form_of(page.text, "/keys")
    fields = dict(form.fields) | {
        "provider": "anthropic",
        "label": "work",
        "secret": DASHBOARD_SECRET,
    }
    added = person.client.post("/keys", data=fields)
    seen.append(added.text + repr(added.headers))
    # Front door 1: the code flow; front door 2: the OKAP binding.
    with httpx.Client(base_url=live_url, timeout=20) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
        got = code_from(person.approve(consent).location, listener)
        issued = redeem(app, got["code"], verifier, listener.redirect_uri)
        code_token = issued.json()["access_token"]
        body = {
            "okap": "1.0",
            "authorization_details": [
                {"type": "ai_model_access", "provider": "anthropic", "limits": {"daily_spend": 1}}
            ],
            "client": {"name": "Notes", "url": "https://notes.example"},
        }
        pending = app.post("/okap/authorize", json=body).json()
        person.approve(pending["consent_url"])
        granted = app.get(pending["poll_url"])  # (the one answer that carries the token)
        okap_token = granted.json()["token"]
        seen.append(app.get("/okap/usage", headers={"authorization": f"Bearer {okap_token}"}).text)
        intro = app.post(
            "/oauth/introspect",
            data={"token": code_token},
            headers={"authorization": f"Bearer {code_token}"},
        )
        seen.append(intro.text)
    direct = make_grant(
        vault,
        entry("openai", models=["gpt-4o-mini", "text-embedding-*"]),
        entry("anthropic"),
        entry("google"),
    )
    token = direct.token
    oa = openai_client(live_url, token)
    seen.append(oa.chat.completions.create(model="gpt-4o-mini", messages=HI).to_json())
    seen.append(
        str(list(oa.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)))
    )
    seen.append(oa.embeddings.create(model="text-embedding-3-small", input="hi").to_json())
    with pytest.raises(openai.PermissionDeniedError) as denied:
        oa.chat.completions.create(model="gpt-4o", messages=HI)
    seen.append(repr(denied.value.body))
    echoed = {"error": {"message": f"Incorrect API key: {FAKE_KEYS['openai']}", "type": "x"}}
    fake.script("openai", Respond(401, body=echoed))
    with pytest.raises(openai.AuthenticationError) as bad_key:
        oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    seen.append(bad_key.value.response.text)
    fake.script("openai", Respond(503), Respond(200))
    seen.append(oa.chat.completions.create(model="gpt-4o-mini", messages=HI).to_json())
    code_client = openai_client(live_url, code_token)
    seen.append(code_client.chat.completions.create(model="gpt-4o-mini", messages=HI).to_json())
    an = anthropic_client(live_url, token)
    seen.append(an.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=HI).to_json())
    fake.script("anthropic", BreakStream(after_events=2))
    with (
        pytest.raises(Exception),  # noqa: PT011 - the SDK's own
        an.messages.stream(model="claude-haiku-4-5", max_tokens=20, messages=HI) as stream,
    ):
        seen.extend(stream.text_stream)
    okap_anthropic = anthropic_client(live_url, okap_token)
    seen.append(
        okap_anthropic.messages.create(
            model="claude-haiku-4-5", max_tokens=20, messages=HI
        ).to_json()
    )
    gemini = google_client(live_url, token)
    seen.append(str(gemini.models.generate_content(model="gemini-2.0-flash", contents="hi")))
    seen.append(
        str(list(gemini.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")))
    )
    conn = http.client.HTTPConnection(live_url.removeprefix("http://"), timeout=10)
    conn.request(
        "POST",
        f"/v1/google/v1beta/models/gemini-2.0-flash:generateContent?key={token}",
        body=b'{"contents": []}',
        headers={"content-type": "application/json"},
    )
    answer = conn.getresponse()
    seen.append(answer.read().decode() + repr(answer.getheaders()))
    conn.close()
    revoke(vault, direct.grant_id)
    with pytest.raises(anthropic.AuthenticationError) as revoked:
        an.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
    seen.append(str(revoked.value))
    with httpx.Client(base_url=live_url) as app:
        seen.append(app.post("/oauth/revoke", data={"token": code_token}).text)
    for path in ("/", "/apps", f"/apps/{direct.grant_id}", "/keys", "/activity", "/activity.csv"):
        seen.append(person.open(path).text)
    return [code_token, okap_token, token], seen


def audit_rows(vault: Vault) -> list[str]:
    with vault.session() as session:
        rows: list[Any] = [*session.exec(select(RequestLog)), *session.exec(select(SecurityEvent))]
    return [repr(row.model_dump()) for row in rows]


def test_no_key_or_token_in_any_log_answer_page_or_audit_row(
    vault: Vault,
    live_url: str,
    person: Person,
    openai_key: str,
    listener: RedirectListener,
    fake_upstream: FakeUpstream,
    everything_logged: Capture,
) -> None:
    statements: list[str] = []

    @event.listens_for(vault.engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append(f"{statement} {parameters!r}")

    tokens, seen = drive_traffic(vault, live_url, person, listener, fake_upstream)
    event.remove(vault.engine, "before_cursor_execute", record)
    rows = audit_rows(vault)
    assert len(rows) >= 15
    logged = "\n".join(everything_logged.lines)
    assert "HTTP Request" in logged and "SELECT" in logged  # the capture did see DEBUG lines
    keys = [OPENAI_SECRET, DASHBOARD_SECRET, *FAKE_KEYS.values()]
    for name, haystack in (
        ("logs", logged),
        ("answers and pages", "\n".join(seen)),
        ("audit", "\n".join(rows)),
    ):
        for secret in [*tokens, *keys]:
            assert secret not in haystack, f"a secret appears in the {name}"
    # Token lookups go by hash: the database saw hashes, never a token.
    sql = "\n".join(statements)
    for token in tokens:
        assert token not in sql
        assert hashlib.sha256(token.encode()).hexdigest() in sql
    # Keys reached the upstream (the check above is not vacuous).
    assert any(FAKE_KEYS["google"] in repr(r.headers) for r in fake_upstream.received)


def database_text(settings: Settings, vault: Vault) -> bytes:
    """Every byte of a SQLite database (file, WAL, shared memory), or every text, JSON and
    bytea value of every PostgreSQL table."""
    path = sqlite_path(settings.effective_database_url)
    if path is not None:
        vault.dispose()  # leave the WAL as it is: it is read as it lies on disk
        parts = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
        return b"".join(p.read_bytes() for p in parts if p.exists())
    url = settings.effective_database_url.replace("postgresql+psycopg://", "postgresql://")
    chunks: list[bytes] = []
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'json', 'jsonb', 'bytea', 'character')"
        ).fetchall()
        for table, column in columns:
            for (value,) in conn.execute(f'SELECT "{column}"::text FROM "{table}"'):  # noqa: S608
                if value is not None:
                    chunks.append(value.encode())
    return b"\n".join(chunks)


def test_no_key_or_token_in_plaintext_in_the_database(
    settings: Settings,
    vault: Vault,
    live_url: str,
    person: Person,
    openai_key: str,
    listener: RedirectListener,
    fake_upstream: FakeUpstream,
) -> None:
    tokens, _ = drive_traffic(vault, live_url, person, listener, fake_upstream)
    stored = database_text(settings, vault)
    assert len(stored) > 10_000
    for token in tokens:
        assert token.encode() not in stored
        assert hashlib.sha256(token.encode()).hexdigest().encode() in stored  # scan sees rows
    for key in [OPENAI_SECRET, DASHBOARD_SECRET, *FAKE_KEYS.values()]:
        assert key.encode() not in stored
        assert key[-12:].encode() not in stored  # not even a long tail of it


SECRET_WORDS = ("secret", "token", "csrf", "verifier", "password", "challenge")
SECRET_NAMES = ("code", "user_code", "device_code", "request_uri", "handle")
NOT_SECRETS = ("hash", "type", "status", "kind", "name", "prefix", "_id", "hint", "url", "len")


def _is_sql_column(node: ast.AST) -> bool:
    """``Model.column`` or ``col(...)``: compared by the database (on hashes, or on a
    short-lived, throttled user code), not by Python."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id[:1].isupper()
    return isinstance(node, ast.Call) and _names(node.func) == ["col"]


def _secret_named(name: str) -> bool:
    lowered = name.lower()
    if lowered in SECRET_NAMES:
        return True
    return any(w in lowered for w in SECRET_WORDS) and not any(n in lowered for n in NOT_SECRETS)


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.Subscript):
        return _names(node.value)
    if isinstance(node, ast.Call):
        return _names(node.func)
    return []


def test_secrets_are_compared_in_constant_time_and_never_with_equals() -> None:
    """No ``==`` or ``!=`` on anything named like a secret anywhere in the server; the
    comparisons that exist use hmac.compare_digest (or compare stored hashes in SQL)."""
    root = Path(okap_server.__file__).parent
    offenders: list[str] = []
    digests = 0
    for source in sorted(root.rglob("*.py")):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _names(node.func) == ["compare_digest"]:
                digests += 1
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            sides = [node.left, *node.comparators]
            if any(_is_sql_column(side) or isinstance(side, ast.Constant) for side in sides):
                continue
            for side in sides:
                for name in _names(side):
                    if _secret_named(name):
                        offenders.append(f"{source.relative_to(root)}:{node.lineno} {name}")
    assert offenders == [], offenders
    assert digests >= 4  # CSRF, pre-session CSRF, PKCE, token checksum at least
