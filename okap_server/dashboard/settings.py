"""Per-account settings kept in ``Account.preferences``: default limits for apps that ask
for none, and whether an open dashboard jumps to a new request's consent page.

The default limits themselves are applied by ``okap_server.authorization.defaults``, on the
consent page and when approving from the Pending list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col

from okap_server.accounts.models import Account, WebSession
from okap_server.accounts.passwords import hash_password, verify_password
from okap_server.audit.events import record_event
from okap_server.authorization.defaults import DEFAULT_LIMITS_KEY
from okap_server.grants.capabilities import LIMIT_LABELS
from okap_server.settings import DefaultLimits

AUTO_OPEN_KEY = "auto_open_consent"
DEFAULT_LIMIT_FIELDS = ("monthly_spend", "daily_spend", "requests_per_minute", "requests_per_day")


class PreferencesError(Exception):
    """A setting was refused; the message is safe to show and names the field."""


def auto_open_consent(account: Account) -> bool:
    return bool((account.preferences or {}).get(AUTO_OPEN_KEY, False))


def parse_default_limits(form: dict[str, str]) -> DefaultLimits:
    values: dict[str, Any] = {}
    labels = LIMIT_LABELS  # the labels of the form, and of every other limit form
    for name in DEFAULT_LIMIT_FIELDS:
        text = form.get(name, "").strip().replace(",", "").lstrip("$")
        if not text:
            values[name] = None
            continue
        try:
            number = float(text)
        except ValueError:
            raise PreferencesError(f"{labels[name]}: must be a number") from None
        if name.endswith("_spend"):
            if number < 0 or number > 1_000_000:
                raise PreferencesError(f"{labels[name]}: must be between 0 and 1,000,000")
            values[name] = round(number, 6)
        else:
            if not number.is_integer() or number < 1:
                raise PreferencesError(f"{labels[name]}: must be a whole number, at least 1")
            values[name] = int(number)
    if all(v is None for v in values.values()):
        raise PreferencesError(
            "Set at least one default limit: an app that asks for none should not spend "
            "without a cap."
        )
    return DefaultLimits.model_validate(values)


def save_preferences(
    session: Session, account: Account, limits: DefaultLimits, auto_open: bool
) -> None:
    """Replace the JSON dict (so the change is written) and commit."""
    prefs = dict(account.preferences or {})
    prefs[DEFAULT_LIMITS_KEY] = limits.model_dump()
    prefs[AUTO_OPEN_KEY] = auto_open
    account.preferences = prefs
    session.add(account)
    session.commit()


def change_password(
    session: Session,
    account: Account,
    current: str,
    new: str,
    confirm: str,
    *,
    keep_session: str,
    ip: str | None,
) -> None:
    """Check the current password, set the new one, and sign out every other browser."""
    if not verify_password(account.password_hash, current):
        raise PreferencesError("Current password: that is not your current password.")
    if new != confirm:
        raise PreferencesError("New password: the two new passwords differ.")
    try:
        account.password_hash = hash_password(new)
    except ValueError as exc:
        raise PreferencesError(f"New password: {exc}.") from None
    session.add(account)
    session.exec(
        delete(WebSession).where(
            col(WebSession.account_id) == account.id, col(WebSession.id_hash) != keep_session
        )
    )
    record_event(session, "password_changed", account_id=account.id, ip=ip, via="dashboard")
    session.commit()
