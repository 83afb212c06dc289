"""``okap-server serve`` caps glibc's malloc arenas for itself and its workers, unless the
operator chose a number (``okap_server/cli/arenas.py``; the soak in ``bench/`` shows why)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.server.cli.conftest import clean_env

# Caps the arenas in a fresh interpreter, then asks a child what it inherited.
PROBE = """
import subprocess, sys
from okap_server.cli.arenas import cap_malloc_arenas
print(cap_malloc_arenas())
child = "import os; print(os.environ.get('MALLOC_ARENA_MAX'))"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout)
"""


def probe(**env: str) -> list[str]:
    base = {k: v for k, v in clean_env().items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas are Linux's")
def test_the_process_and_its_workers_get_two_arenas() -> None:
    assert probe() == ["True", "2"]


def test_an_operators_own_setting_is_left_alone() -> None:
    assert probe(MALLOC_ARENA_MAX="4") == ["False", "4"]
