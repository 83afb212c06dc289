"""docker-compose.yml and deploy/Caddyfile, checked by reading (there is no Docker engine in
CI): two replicas with one master key, the https public address, forwarded headers trusted
from the reverse proxy's fixed address only, and only the proxy reachable from outside."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from okap_server.settings import Settings

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def replicas(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if "OKAP_MASTER_KEY" in s.get("environment", {})}


def test_two_replicas_share_the_database_and_the_master_key() -> None:
    services = compose()["services"]
    okap = replicas(services)
    assert len(okap) >= 2, sorted(services)
    envs = [service["environment"] for service in okap.values()]
    for name in ("OKAP_DATABASE_URL", "OKAP_MASTER_KEY", "OKAP_PUBLIC_URL", "OKAP_TRUSTED_PROXIES"):
        assert len({env[name] for env in envs}) == 1, name  # the same on every replica
    env = envs[0]
    assert env["OKAP_DATABASE_URL"].startswith("postgresql://")
    assert "@db:5432/" in env["OKAP_DATABASE_URL"] and "db" in services
    assert env["OKAP_MASTER_KEY"].startswith("${OKAP_MASTER_KEY:?")  # required, never a default
    assert env["OKAP_PUBLIC_URL"].startswith("https://")
    for service in okap.values():
        assert "ports" not in service  # replicas are reached through the proxy only
    assert "ports" not in services["db"]
    # The settings the replicas get are valid settings.
    Settings(trusted_proxies=env["OKAP_TRUSTED_PROXIES"], port=int(env["OKAP_PORT"]))


def test_forwarded_headers_are_trusted_from_the_reverse_proxy_only() -> None:
    spec = compose()
    services = spec["services"]
    caddy = services["caddy"]
    fixed = caddy["networks"]["okap"]["ipv4_address"]
    trusted = next(iter(replicas(services).values()))["environment"]["OKAP_TRUSTED_PROXIES"]
    assert trusted == fixed  # exactly the proxy: not a network other containers share
    subnet = spec["networks"]["okap"]["ipam"]["config"][0]["subnet"]
    assert fixed.rsplit(".", 1)[0] == subnet.split("/")[0].rsplit(".", 1)[0]
    assert {p.split(":")[-1].split("/")[0] for p in caddy["ports"]} == {"80", "443"}
    mounted = [v for v in caddy["volumes"] if v.endswith(":/etc/caddy/Caddyfile:ro")]
    assert mounted == ["./deploy/Caddyfile:/etc/caddy/Caddyfile:ro"]


def test_caddy_terminates_tls_and_balances_over_every_replica() -> None:
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    lines = [line.split("#")[0].strip() for line in caddyfile.splitlines()]
    upstreams = next(line for line in lines if line.startswith("reverse_proxy")).split()[1:-1]
    services = compose()["services"]
    for name, service in replicas(services).items():
        assert f"{name}:{service['environment']['OKAP_PORT']}" in upstreams
    assert len(upstreams) == len(replicas(services))
    assert "health_uri /readyz" in lines  # a replica without its database leaves rotation
    assert "flush_interval -1" in lines  # streamed answers are not buffered
    site = next(line for line in lines if line.endswith("{") and not line.startswith(("rev", "tr")))
    assert re.fullmatch(r"\{\$OKAP_DOMAIN:localhost\} \{", site), site
    public = next(iter(replicas(services).values()))["environment"]["OKAP_PUBLIC_URL"]
    assert public == "https://${OKAP_DOMAIN:-localhost}"  # the same name Caddy serves
