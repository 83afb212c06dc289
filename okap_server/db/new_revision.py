"""Write a new Alembic revision from the tables (developer tool).

Usage: ``python -m okap_server.db.new_revision "message"``. It migrates a scratch SQLite
database to head, then autogenerates the difference.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from okap_server.db.engine import make_engine
from okap_server.db.migrate import autogenerate, upgrade


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "change"
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        upgrade(engine)
        autogenerate(engine, message)
        engine.dispose()


if __name__ == "__main__":
    main()
