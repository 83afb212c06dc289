"""``okap-server ceilings``: set an account's and a key's spend ceilings, see what is left."""

from __future__ import annotations

from sqlmodel import Session, select

from okap_server.accounts.models import Account
from okap_server.db.engine import make_engine
from okap_server.settings import Settings
from okap_server.vault.models import ProviderKey
from tests.server.cli.conftest import CliRunner

PASSWORD = "a good long password"


def _stored(settings: Settings) -> tuple[Account, ProviderKey]:
    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as session:
            account = session.exec(select(Account)).one()
            key = session.exec(select(ProviderKey)).one()
            return account, key
    finally:
        engine.dispose()


def test_set_show_and_clear_ceilings(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    assert cli("keys", "add", "openai", stdin="sk-proj-ceiling00000000000001").code == 0
    done = cli("ceilings", "set", "--daily", "2.50", "--monthly", "40")
    assert done.code == 0, done.err
    assert "daily $2.50" in done.out and "monthly $40" in done.out
    account, key = _stored(cli_env)
    assert (account.daily_ceiling_micros, account.weekly_ceiling_micros) == (2_500_000, None)
    assert account.monthly_ceiling_micros == 40_000_000
    keyed = cli("ceilings", "key", key.id, "--monthly", "15")
    assert keyed.code == 0 and "$15 a month" in keyed.out
    shown = cli("ceilings", "show")
    assert shown.code == 0
    assert "$0.00 spent of $2.50, $2.50 left" in shown.out
    assert "$0.00 spent of $15.00, $15.00 left" in shown.out
    assert "this week   $0.00 spent, no ceiling" in shown.out
    cleared = cli("ceilings", "set", "--daily", "none")
    assert cleared.code == 0 and "daily none" in cleared.out
    account, _ = _stored(cli_env)
    assert account.daily_ceiling_micros is None and account.monthly_ceiling_micros == 40_000_000


def test_bad_ceilings_change_nothing(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    negative = cli("ceilings", "set", "--weekly", "-3")
    assert negative.code != 0
    assert "weekly ceiling: must not be negative; nothing was changed" in negative.err
    words = cli("ceilings", "set", "--monthly", "lots")
    assert words.code != 0 and "'lots' is not a number of USD" in words.err
    assert cli("ceilings", "set").code != 0
    unknown = cli("ceilings", "key", "key_nope", "--monthly", "1")
    assert unknown.code != 0 and "no key with id 'key_nope'" in unknown.err
    engine = make_engine(cli_env.effective_database_url)
    try:
        with Session(engine) as session:
            stored = session.exec(select(Account)).one()
            assert stored.weekly_ceiling_micros is None and stored.monthly_ceiling_micros is None
    finally:
        engine.dispose()
