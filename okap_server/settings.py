"""The vault's one validated settings object.

Values come from ``OKAP_*`` environment variables and, optionally, a TOML file named by
``OKAP_CONFIG``. Environment variables win over the file. ``OKAP_UPSTREAM_<PROVIDER>`` overrides
the upstream base URL of one provider.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as PydanticSettingsError

UPSTREAM_ENV_PREFIX = "OKAP_UPSTREAM_"


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line naming it."""


class DefaultLimits(BaseModel):
    """Limits applied to a grant whose request names none: never unlimited by default."""

    monthly_spend: float | None = Field(default=5.0, ge=0)
    daily_spend: float | None = Field(default=1.0, ge=0)
    requests_per_minute: int | None = Field(default=60, ge=1)
    requests_per_day: int | None = Field(default=1000, ge=1)


class CustomProvider(BaseModel):
    """An OpenAI-compatible provider added in config, e.g. a local Ollama or vLLM."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    base_url: str
    auth_style: str = Field(default="bearer", pattern=r"^(bearer|x-api-key|x-goog-api-key|none)$")
    name: str | None = None
    # The provider id ``genai-prices`` prices it under (e.g. ``azure``, ``aws``), if any.
    prices_provider: str | None = Field(default=None, max_length=64)


class Settings(BaseSettings):
    """Everything the vault can be told. See README "Configuration"."""

    model_config = SettingsConfigDict(
        env_prefix="OKAP_",
        extra="ignore",
        env_nested_delimiter="__",
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".okap")
    database_url: str | None = None
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8400, ge=1, le=65535)
    # Server processes on one port (uvicorn workers). Limits hold across them: they are kept
    # in the database, as across replicas.
    workers: int = Field(default=1, ge=1, le=64)
    master_key: SecretStr | None = None
    # During a rolling rotation: the key being retired, still accepted for decryption.
    master_key_previous: SecretStr | None = None
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    # Observability (issue 21, okap_server/telemetry): ``json`` logs one object per line;
    # GET /metrics needs a ``metrics:read`` token unless public (a private network's scrape);
    # OpenTelemetry traces, configured by the standard OTEL_* variables, when ``otel``.
    log_format: str = Field(default="text", pattern=r"^(text|json)$")
    metrics_public: bool = False
    otel: bool = False
    # prometheus-client's own variable: where ``--workers`` processes share their metrics
    # (``okap-server serve`` sets and empties it; telemetry/multiprocess.py).
    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"),
    )
    # Team vaults (issue 8): the reverse proxies whose X-Forwarded-For / X-Forwarded-Proto
    # are believed, as comma-separated IPs or CIDR networks. Empty (the default): forwarded
    # headers are ignored and the peer address is the client, as it is without a proxy.
    trusted_proxies: str = ""
    # Request bodies (issue 15, web/bodies.py): pages and forms, the OAuth/OKAP protocol
    # (authorization_details JSON), each bounded; a body must arrive within the timeout,
    # extended by a second per body_min_bytes_per_second received (the proxy's too).
    form_max_body_bytes: int = Field(default=64 * 1024, ge=4096, le=16 * 1024 * 1024)
    protocol_max_body_bytes: int = Field(default=128 * 1024, ge=32 * 1024, le=16 * 1024 * 1024)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    body_min_bytes_per_second: int = Field(default=64 * 1024, ge=1)
    # The server (cli/protocol.py): a request's headers must arrive within this; at most
    # this many connections at once (None: as many as the process's open-file limit allows).
    header_timeout_seconds: float = Field(default=20.0, gt=0, le=3600)
    max_connections: int | None = Field(default=None, ge=1)
    # Long-polls (/okap/authorize and its poll URL) waiting at once in one process, in all
    # and on one request; past either, the poll answers at once with the current state.
    okap_max_waiting: int = Field(default=256, ge=0, le=100_000)
    okap_max_waiting_per_request: int = Field(default=2, ge=1, le=1000)

    upstreams: dict[str, str] = Field(default_factory=dict)
    providers: list[CustomProvider] = Field(default_factory=list)

    default_limits: DefaultLimits = Field(default_factory=DefaultLimits)
    open_browser: bool = False
    # A desktop notification for each new pending request (a personal vault; on with
    # ``open_browser`` too): freedesktop notifications over D-Bus, or ``notify-send``.
    desktop_notifications: bool = False
    pending_request_ttl_seconds: int = Field(default=600, ge=10, le=86_400)
    # An approved request's token must be collected (device poll, OKAP poll, code redeemed)
    # within this long, or the approval lapses (as a code would: RFC 6749 §4.1.2).
    approval_ttl_seconds: int = Field(default=600, ge=10, le=3600)
    okap_wait_seconds: float = Field(default=25.0, ge=0, le=300)
    session_ttl_seconds: int = Field(default=7 * 86_400, ge=60)
    # Foundation (issue 2): how long a printed setup link works; doctor's upstream probe.
    setup_token_ttl_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    doctor_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # Authorization server (issue 3). Codes live at most 60 s (RFC 9700 §4.5), PAR request_uris
    # briefly (RFC 9126 §2.2); grants without an asked expiry get default_grant_days.
    code_ttl_seconds: int = Field(default=60, ge=1, le=60)
    par_ttl_seconds: int = Field(default=90, ge=5, le=600)
    device_poll_interval_seconds: int = Field(default=5, ge=1, le=60)
    okap_poll_interval_seconds: int = Field(default=2, ge=1, le=60)
    # Dashboard (issue 6): how often an open dashboard page checks for new pending requests.
    dashboard_poll_seconds: float = Field(default=3.0, ge=0.2, le=300)
    key_test_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    default_grant_days: int = Field(default=90, ge=1, le=3660)
    max_grant_days: int = Field(default=366, ge=1, le=3660)
    # Token exchange (RFC 8693): how many times a grant may be delegated down a chain.
    delegation_max_depth: int = Field(default=4, ge=1, le=16)
    # ... and how many live (unrevoked, unexpired) children one grant may have at a time.
    delegation_max_children: int = Field(default=100, ge=1, le=100_000)
    signin_max_failures: int = Field(default=10, ge=1, le=1000)
    # Floods (issue 15): undecided requests are capped per source address (an IPv6 /64 is
    # one source), per client on one source (client ids are self-asserted) and in total; the
    # front doors that create them are rate-limited per source and per client on a source,
    # in each server process (SPEC.md "Floods and lockouts").
    pending_max_per_source: int = Field(default=30, ge=1, le=100_000)
    pending_max_per_client: int = Field(default=10, ge=1, le=100_000)
    pending_max_total: int = Field(default=1000, ge=1, le=1_000_000)
    front_door_per_minute: int = Field(default=30, ge=1, le=100_000)
    front_door_client_per_minute: int = Field(default=10, ge=1, le=100_000)
    # Calls per minute per management token on /api/v1, in each server process.
    api_per_minute: int = Field(default=600, ge=1, le=100_000)
    user_code_max_failures: int = Field(default=10, ge=1, le=1000)

    # How long a request waits for the database (a grant's first load, its admission, the
    # readiness probe) before it is answered 503: a database that accepts connections but
    # never answers must not hang every request.
    database_wait_seconds: float = Field(default=5.0, gt=0, le=120)
    proxy_connect_timeout: float = Field(default=10.0, gt=0)
    proxy_read_timeout: float = Field(default=600.0, gt=0)
    proxy_max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    proxy_retry_attempts: int = Field(default=3, ge=1, le=10)
    proxy_retry_max_seconds: float = Field(default=20.0, ge=0)
    proxy_retry_base_seconds: float = Field(default=0.5, ge=0)
    proxy_grant_cache_seconds: float = Field(default=0.5, ge=0, le=300)
    # On PostgreSQL, replicas tell each other of revoked and edited grants (LISTEN/NOTIFY)
    # so the change is seen at once; the cache TTL above bounds it when a notice is missed.
    proxy_grant_notify: bool = True
    # Log each proxy call in the server's access log too (the audit has every one anyway).
    proxy_access_log: bool = False
    proxy_audit_flush_seconds: float = Field(default=0.25, gt=0, le=60)
    proxy_sweep_seconds: float = Field(default=60.0, gt=0)
    housekeeping_seconds: float = Field(default=60.0, gt=0)
    # Webhooks (issue 21, README "Webhooks"): the delivery worker's poll, each attempt's
    # bound, and the retry schedule (exponential with jitter, about a day in all, then the
    # endpoint is disabled). http to loopback is allowed by default (a personal vault's
    # receiver is often on the same machine); private and link-local targets are not.
    webhooks_enabled: bool = True
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_cap_seconds: float = Field(default=4 * 3600.0, gt=0)
    webhook_max_attempts: int = Field(default=15, ge=1, le=100)
    webhook_allow_loopback: bool = True
    webhook_allow_private: bool = False
    proxy_reservation_seconds: int = Field(default=1800, ge=60)
    default_max_output_tokens: int = Field(default=4096, ge=1)
    # The hold's input bound for a request that names input held elsewhere (a previous
    # response, a conversation, a file, a cache, a PDF, audio or video): its input can be no
    # more than the model's context window, so the default is the largest window of a model
    # the shipped price table lists (1,048,576 tokens: GPT-4.1, Gemini 2.5). SPEC "Spend limits".
    proxy_reference_input_tokens: int = Field(default=1_048_576, ge=1)
    # The input bound of each image, billed by its pixels, not its bytes: the largest an
    # image costs with a listed model is 48,169 tokens (gpt-4o-mini, high detail, 2048x768).
    proxy_image_input_tokens: int = Field(default=50_000, ge=1)
    # A model no price lists is refused under a spend limit, never billed at $0; set this to
    # hold and charge such models at one rate, USD per million tokens (shown on the consent
    # page before approval). README "Prices".
    fallback_price_per_million: float | None = Field(default=None, ge=0)
    # The operator's own prices (private models, negotiated rates); its entries win.
    prices_file: Path | None = None
    # Where ``okap-server prices refresh`` fetches the genai-prices data (default: the
    # library's own update URL).
    prices_update_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_addresses(cls, value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item[:60]!r} is not an IP address or CIDR network") from None
        return ",".join(items)

    @field_validator("database_url")
    @classmethod
    def _database_url_is_known(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("upstreams")
    @classmethod
    def _upstreams_are_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for provider, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{provider}: must start with http:// or https://")
        return {k.lower(): v.rstrip("/") for k, v in value.items()}

    @model_validator(mode="before")
    @classmethod
    def _collect_upstream_env(cls, data: Any) -> Any:
        """Fold ``OKAP_UPSTREAM_<PROVIDER>`` variables into ``upstreams``."""
        if not isinstance(data, dict):
            return data
        found = {
            name[len(UPSTREAM_ENV_PREFIX) :].lower(): value
            for name, value in os.environ.items()
            if name.startswith(UPSTREAM_ENV_PREFIX) and len(name) > len(UPSTREAM_ENV_PREFIX)
        }
        if found:
            merged = dict(data.get("upstreams") or {})
            merged.update(found)
            data = {**data, "upstreams": merged}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("OKAP_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'okap.db'}"

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://127.0.0.1:{self.port}"

    @property
    def effective_page_url(self) -> str:
        """Where browsers are sent for the person's pages (sign-in, consent, dashboard).

        The public URL, except that a loopback IP literal host becomes ``localhost``: cookies
        are scoped by host, not port (RFC 6265 §8.5), and apps' loopback redirects are IP
        literals (RFC 8252 §7.3), so the vault's cookies must never live on ``127.0.0.1``.
        """
        public = self.effective_public_url
        parts = urlsplit(public)
        try:
            loopback_literal = ipaddress.ip_address(parts.hostname or "").is_loopback
        except ValueError:
            loopback_literal = False
        if not loopback_literal:
            return public
        netloc = "localhost" + (f":{parts.port}" if parts.port is not None else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [item for item in self.trusted_proxies.split(",") if item]

    @property
    def master_key_file(self) -> Path:
        return self.home / "master.key"


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning a validation failure into one line naming the setting."""
    config_file = os.environ.get("OKAP_CONFIG")
    if config_file and not Path(config_file).is_file():
        raise SettingsError(f"OKAP_CONFIG: no such file: {config_file}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
    except PydanticSettingsError as exc:  # e.g. OKAP_UPSTREAMS that is not JSON
        field = re.search(r'field "([^"]+)"', str(exc))
        name = f"OKAP_{field.group(1).upper()}" if field else "OKAP settings"
        raise SettingsError(f"{name}: not valid JSON") from None
    except ValueError as exc:  # e.g. a TOML syntax error
        raise SettingsError(f"OKAP_CONFIG: {exc}") from None


def describe_validation_error(exc: ValidationError) -> str:
    first: Mapping[str, Any] = exc.errors()[0]
    loc = "__".join(str(part) for part in first["loc"]).upper()  # nested: env_nested_delimiter
    name = f"OKAP_{loc}" if loc else "OKAP settings"
    return f"{name}: {first['msg']}"
