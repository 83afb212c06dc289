"""While the vault serves, what start-up built is frozen out of the garbage collector's
walks (``okap_server/heap.py``); once it stops, the collector has it back."""

from __future__ import annotations

import gc

import httpx

from okap_server.context import Vault
from okap_server.heap import frozen_heap
from tests.support.live import serve_vault


def test_frozen_while_inside_and_given_back_after() -> None:
    kept: list[list[int]] = [[] for _ in range(1000)]  # objects alive at the start
    with frozen_heap():
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0


def test_the_serving_vault_freezes_its_start_up_heap(vault: Vault) -> None:
    with serve_vault(vault) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert gc.get_freeze_count() > 10_000  # modules, routes, the price book...
    assert gc.get_freeze_count() == 0
