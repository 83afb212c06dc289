"""``okap-server doctor``: check the vault end to end, one pass/fail line per check."""

from __future__ import annotations

import argparse
import contextlib
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from okap_server.accounts.models import Account
from okap_server.catalog import ProviderCatalog, ProviderRow
from okap_server.cli.common import (
    POINT_AT_A_VAULT,
    database_label,
    describe_database_error,
    engine_or_fail,
    no_vault_message,
    settings_from_env,
    vault_label,
)
from okap_server.cli.doctor_result import Result
from okap_server.cli.doctor_server import check_server
from okap_server.cli.prices import describe_unpriced, load_prices
from okap_server.db.engine import sqlite_path
from okap_server.db.migrate import current_revision, head_revision
from okap_server.grants.models import Grant
from okap_server.prices import PriceFileError
from okap_server.prices.unpriced import unpriced_in_live_grants
from okap_server.settings import Settings
from okap_server.vault.crypto import DecryptionError, KeyRing
from okap_server.vault.keys import KeyStore
from okap_server.vault.masterkey import MasterKeyError, load_keyring, read_check
from okap_server.vault.models import ProviderKey, VaultMeta

# A clock before this is certainly wrong (okap did not exist); drift beyond this is flagged.
EARLIEST_SANE = datetime(2025, 1, 1, tzinfo=UTC)
MAX_DRIFT_SECONDS = 120.0
LOOPBACK_HOSTS = ("localhost", "::1")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "doctor", help="check database, master key, stored keys, prices, upstreams in use and clock"
    )
    parser.add_argument(
        "--offline", action="store_true", help="skip the provider upstream reachability check"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    print(f"vault: {vault_label(settings)}", flush=True)
    results = list(diagnose(settings, offline=args.offline))
    for result in results:
        print(f"{result.status:<5} {result.name}: {result.detail}", flush=True)
    failed = sum(r.status == "FAIL" for r in results)
    print(f"{failed} check(s) failed" if failed else "all checks passed")
    return 1 if failed else 0


def diagnose(settings: Settings, *, offline: bool) -> Iterator[Result]:
    database_file = sqlite_path(settings.effective_database_url)
    if database_file is not None and not database_file.exists():
        # Checking must not create: opening the database here would leave an empty vault.
        yield Result("FAIL", "vault", no_vault_message(settings))
        return
    yield from check_files(settings)
    yield check_public_url(settings)
    engine = engine_or_fail(settings)
    try:
        db = check_database(settings, engine)
        yield db
        if db.status != "ok":
            yield Result("FAIL", "master key", "not checked: the database is not usable")
        else:
            yield check_tables(engine)
            yield from check_secrets(settings, engine)
        yield from check_prices(settings, engine, db.status == "ok")
        yield check_server(settings, engine if db.status == "ok" else None)
        dates: list[datetime] = []
        if offline:
            yield Result("skip", "upstreams", "not checked (--offline)")
        elif db.status != "ok":
            yield Result("skip", "upstreams", "not checked: the database is not usable")
        else:
            yield from check_upstreams(settings, dates, providers_in_use(settings, engine))
        yield check_clock(engine, dates, db.status == "ok")
    finally:
        engine.dispose()


def check_public_url(settings: Settings) -> Result:
    """Tokens and passwords cross this URL: plain HTTP is only safe on this machine."""
    url = settings.effective_public_url
    host = urlsplit(url).hostname or ""
    if url.startswith("https://") or host in LOOPBACK_HOSTS or host.startswith("127."):
        return Result("ok", "public url", url)
    return Result(
        "warn", "public url", f"{url} is plain HTTP off this machine: put TLS in front of it"
    )


def check_files(settings: Settings) -> Iterator[Result]:
    home = settings.home
    try:
        if not home.exists():
            yield Result("ok", "home", f"{home} does not exist yet; it is created at start")
            return
        mode = stat.S_IMODE(home.stat().st_mode)
        db_file = sqlite_path(settings.effective_database_url)
        loose = [p for p in (home, db_file, settings.master_key_file) if _loose(p)]
    except OSError as exc:
        yield Result("FAIL", "home", f"{home}: {exc.strerror}")
        return
    if loose:
        names = ", ".join(str(p) for p in loose)
        yield Result("FAIL", "home", f"readable by other users: {names} (chmod go-rwx)")
    else:
        yield Result("ok", "home", f"{home} (mode {mode:o}), files owner-only")


def _loose(path: Any) -> bool:
    return path is not None and path.exists() and bool(stat.S_IMODE(path.stat().st_mode) & 0o077)


def check_database(settings: Settings, engine: Engine) -> Result:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current, head = current_revision(engine), head_revision()
    except Exception as exc:  # any driver error: report it, never a traceback
        return Result("FAIL", "database", describe_database_error(settings, exc))
    where = database_label(settings)
    if current is None:
        return Result("FAIL", "database", f"{where} holds no vault: {POINT_AT_A_VAULT}")
    if current != head:
        return Result(
            "FAIL",
            "database",
            f"{where} at revision {current or 'none'}, {head} pending: run `okap-server migrate`",
        )
    return Result("ok", "database", f"{where} reachable, schema at revision {head} (latest)")


def check_secrets(settings: Settings, engine: Engine) -> Iterator[Result]:
    try:
        if read_check(engine) is None:
            yield Result("ok", "master key", "no secret stored yet (new vault)")
            return
        keyring = load_keyring(settings, engine, create=False)
    except (MasterKeyError, ValueError, SQLAlchemyError) as exc:
        yield Result("FAIL", "master key", str(exc).splitlines()[0])
        return
    source = "OKAP_MASTER_KEY" if settings.master_key else str(settings.master_key_file)
    yield Result("ok", "master key", f"from {source}, opens this vault (id {keyring.current_id})")
    yield _decrypt_all(engine, keyring)


def _decrypt_all(engine: Engine, keyring: KeyRing) -> Result:
    store = KeyStore(keyring)
    bad: list[str] = []
    with Session(engine) as session:
        try:
            rows = session.exec(select(ProviderKey).order_by(col(ProviderKey.id))).all()
        except Exception as exc:  # a row whose columns do not even load
            return Result("FAIL", "stored keys", f"a row cannot be read: {_first_line(exc)}")
        for key in rows:
            try:
                store.reveal(key)
            except (DecryptionError, UnicodeDecodeError):
                bad.append(f"{key.id} ({key.provider}, {key.label!r})")
    if bad:
        return Result(
            "FAIL", "stored keys", f"{len(bad)} of {len(rows)} do not decrypt: " + ", ".join(bad)
        )
    return Result("ok", "stored keys", f"all {len(rows)} decrypt")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]


def check_tables(engine: Engine) -> Result:
    """Every row of the small, vital tables loads (a corrupt value shows up here)."""
    with Session(engine) as session:
        for model in (Account, ProviderKey, Grant, VaultMeta):
            try:
                count = len(session.exec(select(model)).all())
            except Exception as exc:
                name = getattr(model, "__tablename__", model.__name__)
                return Result(
                    "FAIL", "rows", f"table {name}: a row cannot be read: {_first_line(exc)}"
                )
            del count
    return Result("ok", "rows", "accounts, keys, grants and vault metadata all load")


def _probe(row: ProviderRow, timeout: float) -> tuple[ProviderRow, str | None, str | None, float]:
    """(row, error, Date header, milliseconds). Any HTTP answer means reachable."""
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.get(row.upstream)
    except httpx.HTTPError as exc:
        return row, type(exc).__name__, None, (time.perf_counter() - started) * 1000
    return row, None, response.headers.get("date"), (time.perf_counter() - started) * 1000


def providers_in_use(settings: Settings, engine: Engine) -> set[str]:
    """Providers this vault can call: those with a stored key, and those that take none."""
    with Session(engine) as session:
        keyed = set(session.exec(select(ProviderKey.provider).distinct()).all())
    rows = ProviderCatalog.from_settings(settings).rows()
    return keyed | {row.id for row in rows if row.key_sending.header is None}


def check_upstreams(
    settings: Settings, dates: list[datetime], in_use: set[str]
) -> Iterator[Result]:
    """Reachability of the upstreams this vault calls; a provider it holds no key for is
    listed as not used, and cannot fail the run (a vault with one key has one upstream)."""
    everything = ProviderCatalog.from_settings(settings).rows()
    rows = [row for row in everything if row.id in in_use]
    for row in everything:
        if row.id not in in_use:
            yield Result("skip", f"upstream {row.id}", "not used (no stored key)")
    with ThreadPoolExecutor(max_workers=min(16, len(rows) or 1)) as pool:
        probes = list(pool.map(lambda r: _probe(r, settings.doctor_timeout_seconds), rows))
    for row, error, date, millis in probes:
        name = f"upstream {row.id}"
        if error:
            yield Result("FAIL", name, f"{row.upstream} unreachable ({error})")
            continue
        yield Result("ok", name, f"{row.upstream} reachable ({millis:.0f} ms)")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                dates.append(parsedate_to_datetime(date))


def check_prices(settings: Settings, engine: Engine, database_ok: bool) -> Iterator[Result]:
    """The prices read, and every model live grants name has one: a call to a model with
    none is refused under a spend limit."""
    try:
        prices, catalog = load_prices(settings)
    except PriceFileError as exc:
        yield Result("FAIL", "prices", str(exc))
        return
    info = prices.info
    yield Result(
        "ok", "prices", f"{info.source}, genai-prices {info.package_version}, {info.data_date}"
    )
    if not database_ok:
        return
    with Session(engine) as session:
        unpriced = unpriced_in_live_grants(session, prices, catalog, settings.default_limits)
    for item in unpriced:
        yield Result("warn", "unpriced model", describe_unpriced(item))


def check_clock(engine: Engine, dates: list[datetime], database_ok: bool) -> Result:
    now = datetime.now(UTC)
    if now < EARLIEST_SANE:
        return Result("FAIL", "clock", f"this machine says {now:%Y-%m-%d}, which is too early")
    references: list[tuple[str, datetime]] = [("upstream", d) for d in dates]
    if database_ok and engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            db_now = connection.execute(text("SELECT now()")).scalar_one()
        references.append(("database server", db_now))
    for source, other in references:
        drift = abs((other - now).total_seconds())
        if drift > MAX_DRIFT_SECONDS:
            return Result(
                "FAIL", "clock", f"differs from the {source} clock by {drift:.0f} s (sync with NTP)"
            )
    compared = f", agrees with {len(references)} other clock(s)" if references else ""
    return Result("ok", "clock", f"UTC {now:%Y-%m-%d %H:%M:%S}{compared}")
