"""The keyword arguments ``OkapClient`` and ``AsyncOkapClient`` share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict

from okap_client.cache import TokenCache
from okap_client.flows import DeviceCode


class ClientOptions(TypedDict, total=False):
    app_name: str | None
    app_url: str | None
    client_id: str | None
    flow: Literal["browser", "device", "okap"] | None
    cache: TokenCache | None
    open_browser: Callable[[str], bool | None] | None
    on_device_code: Callable[[DeviceCode], None] | None
    notify: Callable[[str], None] | None
    authorization_timeout: float
    timeout: float


class AccessOptions(TypedDict, total=False):
    """What ``request_access`` and ``get_access`` take besides ``provider``."""

    models: Sequence[str] | None
    capabilities: Sequence[str] | None
    limits: Mapping[str, float | int | None] | None
    expires: str | datetime | timedelta | None
    reason: str | None
    monthly_limit: float | None
    daily_limit: float | None
    requests_per_minute: int | None
    authorization_details: Sequence[Mapping[str, Any]] | None
    flow: Literal["browser", "device", "okap"] | None
