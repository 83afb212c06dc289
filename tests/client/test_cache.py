import stat
from datetime import UTC, datetime, timedelta

from okap_client import OkapToken, TokenCache
from okap_client.cache import config_dir

VAULT = "http://127.0.0.1:8400"
ASKED = [{"provider": "openai", "models": ["gpt-4o-mini", "gpt-4.1"], "capabilities": ["chat"]}]
# The person narrowed the request to one model.
GRANTED = [{"provider": "openai", "models": ["gpt-4o-mini"], "capabilities": ["chat"]}]


def token(key="okap_one", hours=1, details=GRANTED):
    return OkapToken(key, VAULT, details, expires_at=datetime.now(UTC) + timedelta(hours=hours))


def test_the_file_is_owner_only(tmp_path):
    cache = TokenCache(tmp_path / "cfg" / "okap" / "tokens.json")
    cache.put(VAULT, "app", ASKED, token())
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700


def test_the_same_request_gets_the_persons_answer_even_if_narrowed(tmp_path):
    cache = TokenCache(tmp_path / "tokens.json")
    cache.put(VAULT, "app", ASKED, token())
    assert cache.find(VAULT, "app", ASKED).key == "okap_one"
    assert cache.find(VAULT, "other-app", ASKED) is None
    assert cache.find("http://elsewhere:8400", "app", ASKED) is None


def test_a_different_request_is_served_only_if_the_grant_covers_it(tmp_path):
    cache = TokenCache(tmp_path / "tokens.json")
    cache.put(VAULT, "app", ASKED, token())
    narrower = [{"provider": "openai", "models": ["gpt-4o-mini"], "capabilities": ["chat"]}]
    wider = [{"provider": "openai", "models": ["gpt-4.1"], "capabilities": ["chat"]}]
    assert cache.find(VAULT, "app", narrower).key == "okap_one"
    assert cache.find(VAULT, "app", wider) is None


def test_expired_tokens_are_not_served_and_are_pruned(tmp_path):
    cache = TokenCache(tmp_path / "tokens.json")
    cache.put(VAULT, "app", ASKED, token("okap_old", hours=-1))
    assert cache.find(VAULT, "app", ASKED) is None
    cache.put(VAULT, "app2", ASKED, token("okap_new"))
    assert [e.token.key for e in cache.entries()] == ["okap_new"]


def test_forget_drops_every_copy(tmp_path):
    cache = TokenCache(tmp_path / "tokens.json")
    cache.put(VAULT, "app", ASKED, token("okap_a"))
    cache.put(VAULT, "app", GRANTED, token("okap_a"))
    cache.put(VAULT, "b", ASKED, token("okap_b"))
    assert cache.forget("okap_a") == 2
    assert [e.token.key for e in cache.entries()] == ["okap_b"]


def test_a_damaged_file_reads_as_empty(tmp_path):
    cache = TokenCache(tmp_path / "tokens.json")
    cache.path.write_text("{not json")
    assert cache.entries() == []
    cache.put(VAULT, "app", ASKED, token())
    assert len(cache.entries()) == 1


def test_config_folder_follows_xdg(tmp_path):
    assert config_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "okap"
    assert config_dir({"OKAP_CONFIG_DIR": str(tmp_path / "x")}) == tmp_path / "x"
    assert config_dir({}).parts[-2:] == (".config", "okap")
