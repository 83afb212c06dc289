"""The subset rules of token exchange (``authorization/attenuation.py``) as pure functions:
which child model patterns a parent's allow-list covers."""

from __future__ import annotations

import pytest

from okap_server.authorization.attenuation import model_within


@pytest.mark.parametrize(
    ("child", "parents", "within"),
    [
        ("gpt-4o-mini", [], True),  # a parent with no list allows every model
        ("gpt-4o-mini", ["gpt-4o-mini"], True),
        ("gpt-4o-mini", ["gpt-*"], True),
        ("gpt-4o*", ["gpt-*"], True),  # a narrower prefix glob
        ("gpt-*", ["gpt-*"], True),
        ("gpt-*", ["*"], True),
        ("claude-*", ["gpt-*"], False),
        ("gpt-*", ["gpt-4o*"], False),  # wider
        ("gpt-?o", ["gpt-4o"], False),  # a glob under a plain name
        ("*", ["gpt-*"], False),
        ("GPT-4O-MINI", ["gpt-*"], False),  # case-sensitive, as the proxy matches
        ("gpt-[4]o", ["gpt-*"], False),  # containment of other globs is not proved
    ],
)
def test_a_child_model_is_within_its_parents_allow_list_only_when_provably(
    child: str, parents: list[str], within: bool
) -> None:
    assert model_within(child, parents) is within
