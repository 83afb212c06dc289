"""What every ``okap-server`` command shares: settings, opening the vault, clear failures."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from okap_server.accounts.models import Account
from okap_server.context import Vault, open_vault
from okap_server.db.engine import make_engine, sqlite_path
from okap_server.db.migrate import current_revision
from okap_server.proxy.notify import GrantChangeChannel
from okap_server.settings import Settings, load_settings
from okap_server.vault.masterkey import MasterKeyError


class CliError(Exception):
    """A command failed; the message is one clear line and holds no secret."""


def settings_from_env() -> Settings:
    return load_settings()


def database_label(settings: Settings) -> str:
    """The database URL as it may be shown: never with its password."""
    return make_url(settings.effective_database_url).render_as_string(hide_password=True)


def vault_label(settings: Settings) -> str:
    """Where this command's vault is: the home folder, and the database when it lives elsewhere.

    Printed by every command (first line or ``--help``), so nobody edits one vault while
    believing they are looking at another."""
    if settings.database_url is None:
        return f"home {settings.home}"
    return f"database {database_label(settings)} (home {settings.home})"


POINT_AT_A_VAULT = (
    "set OKAP_HOME to its folder or OKAP_DATABASE_URL to its database, "
    "or create one with `okap-server serve`"
)


def no_vault_message(settings: Settings) -> str:
    return f"there is no vault at {vault_label(settings)}: {POINT_AT_A_VAULT}"


def vault_exists(settings: Settings) -> bool:
    """Whether a vault was ever set up here, found without creating a file or a table."""
    path = sqlite_path(settings.effective_database_url)
    if path is not None and not path.exists():
        return False
    engine = make_engine(settings.effective_database_url)
    try:
        return current_revision(engine) is not None
    finally:
        engine.dispose()


def unknown_provider(name: str, known: Iterable[str]) -> str:
    """ "did you mean openai?" and the list: a typo should cost one glance, not a doc search."""
    ids = list(known)
    close = difflib.get_close_matches(name.lower(), ids, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else "."
    return f"unknown provider {name!r}{hint} Known providers: {', '.join(ids)}"


def describe_database_error(settings: Settings, exc: BaseException) -> str:
    """One line for a driver failure, without SQL, parameters or a password."""
    orig = getattr(exc, "orig", None) or exc
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return f"database {database_label(settings)}: {detail}"


def home_problem(settings: Settings) -> str | None:
    """Why OKAP_HOME cannot hold the vault's files, or None when it can."""
    home = settings.home
    try:
        if home.exists() and not home.is_dir():
            return f"OKAP_HOME {home} is not a directory"
    except OSError as exc:
        return f"OKAP_HOME {home}: {exc.strerror}"
    return None


@contextmanager
def translated_failures(settings: Settings) -> Iterator[None]:
    """Turn the ways opening a vault fails into one clean CliError line."""
    try:
        yield
    except MasterKeyError as exc:
        raise CliError(str(exc)) from None
    except PermissionError as exc:
        raise CliError(f"cannot use {exc.filename or settings.home}: permission denied") from None
    except SQLAlchemyError as exc:
        raise CliError(describe_database_error(settings, exc)) from None
    except (NotADirectoryError, FileExistsError) as exc:
        raise CliError(f"cannot use {exc.filename or settings.home}: not a directory") from None
    except OSError as exc:
        raise CliError(f"cannot use {exc.filename or settings.home}: {exc.strerror}") from None


def open_vault_or_fail(
    settings: Settings, *, create_key: bool = True, migrate: bool = True, existing: bool = False
) -> Vault:
    """Open (and by default create) the vault; ``existing`` is for read-only commands, which
    must never leave a new, empty vault behind at a mistyped place."""
    problem = home_problem(settings)
    if problem:
        raise CliError(problem)
    with translated_failures(settings):
        if existing and not vault_exists(settings):
            raise CliError(no_vault_message(settings))
        return open_vault(settings, create_key=create_key, migrate=migrate)


def tell_replicas(vault: Vault) -> None:
    """Let a command's grant changes reach the running vault's caches: on PostgreSQL the
    change is published on the replicas' notify channel after its commit, as a change made
    in the dashboard is. (A SQLite vault's server re-reads a grant within its cache TTL.)"""
    if vault.settings.proxy_grant_notify and GrantChangeChannel.supported(vault.engine):
        channel = GrantChangeChannel(vault.engine, on_change=lambda _: None, on_reset=lambda: None)
        vault.grant_listeners.append(channel.publish)


def engine_or_fail(settings: Settings) -> Engine:
    """An engine for commands that must not load the master key (migrate, doctor)."""
    problem = home_problem(settings)
    if problem:
        raise CliError(problem)
    with translated_failures(settings):
        return make_engine(settings.effective_database_url)


def account_by_name(session: Session, username: str | None) -> Account:
    """The named account; with no name, the only account or else the owner (oldest admin)."""
    if username is not None:
        account = session.exec(select(Account).where(Account.username == username)).first()
        if account is None:
            raise CliError(f"no account named {username!r}")
        return account
    owner = session.exec(
        select(Account).order_by(col(Account.is_admin).desc(), col(Account.created_at))
    ).first()
    if owner is None:
        raise CliError(
            "this vault has no account yet: open the setup link printed by "
            "`okap-server serve`, or run `okap-server users add NAME`"
        )
    return owner
