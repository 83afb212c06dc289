"""``okap-server migrate`` applies the schema explicitly; ``--check`` only reports."""

from __future__ import annotations

from okap_server.db.engine import make_engine
from okap_server.db.migrate import head_revision, is_up_to_date
from okap_server.settings import Settings
from tests.server.cli.conftest import CliRunner


def test_migrate(cli: CliRunner, cli_env: Settings) -> None:
    check = cli("migrate", "--check")
    assert check.code == 1 and "pending" in check.out
    done = cli("migrate")
    assert done.code == 0 and f"to {head_revision()}" in done.out
    engine = make_engine(cli_env.effective_database_url)
    try:
        assert is_up_to_date(engine)
    finally:
        engine.dispose()
    assert cli("migrate", "--check").code == 0
    assert "up to date" in cli("migrate").out


def test_replicas_starting_together_migrate_once(settings: Settings) -> None:
    """Several processes opening a fresh database at once all succeed."""
    import threading

    from okap_server.db.migrate import upgrade

    engines = [make_engine(settings.effective_database_url) for _ in range(3)]
    barrier = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def start(engine: object) -> None:
        barrier.wait()
        try:
            upgrade(engine)  # type: ignore[arg-type]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        assert all(is_up_to_date(e) for e in engines)
    finally:
        for engine in engines:
            engine.dispose()
