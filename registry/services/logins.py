"""Password sign-ins (web page, ``/admin/``, SQL API): throttled per account and per client
address, every failure and lock-out written to the audit log.

Counters live in Django's default cache, so with ``TALLY_CACHE_URL`` (Redis) every web
process and the SQL API server share them. Each counter is a fixed window that starts at the
first failure (``cache.add`` sets the expiry once; ``incr`` keeps it). While a counter is at
its limit every attempt is refused before the password is checked, a correct one included,
so a guessing run learns nothing from the lock. The password itself is never logged.

A sign-in with an API token (the SQL API's ``tly_…`` password) is throttled per client
address only: its user name is a free label, so counting its failures against that name
would let anyone lock a service's valid token (or a person's password sign-in) out by
sending wrong tokens under the name; and a token's secret is too long to guess, so the
per-account limit protects nothing there.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from registry.services.audit import access_context_bind, access_context_reset, audit_event_create
from tally.errors import UserError

MSG_LOCKED = "too many failed sign-ins {who}; sign-in is locked for {minutes} minute(s)"
HINT_LOCKED = (
    "wait and try again, or ask an administrator to check the audit log (action login.failed)"
)
KEY_FORMAT = "tally-login:{kind}:{ident}"
ACTION_FAILED = "login.failed"
ACTION_LOCKED = "login.locked"

Account = TypeVar("Account")


class LoginLocked(UserError):
    """Too many failed sign-ins for this account or from this address (HTTP 429)."""

    http_status = 429
    default_code = "login_locked"


def _account_key(username: str) -> str:
    # Hashed: user names are free text (spaces, any length) and cache keys are not.
    ident = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return KEY_FORMAT.format(kind="account", ident=ident)


def _address_key(ip: str | None) -> str:
    return KEY_FORMAT.format(kind="address", ident=ip or "unknown")


def _minutes() -> int:
    return max(1, math.ceil(settings.TALLY_LOGIN_WINDOW_S / 60))


def login_throttle_check(*, username: str, ip: str | None, per_account: bool = True) -> None:
    """Raises LoginLocked while the account (``per_account``) or the address is at its
    failure limit."""
    if (
        per_account
        and int(cache.get(_account_key(username), 0)) >= settings.TALLY_LOGIN_MAX_FAILURES_ACCOUNT
    ):
        who = f'for user "{username}"'
    elif int(cache.get(_address_key(ip), 0)) >= settings.TALLY_LOGIN_MAX_FAILURES_ADDRESS:
        who = "from this address"
    else:
        return
    raise LoginLocked(MSG_LOCKED.format(who=who, minutes=_minutes()), hint=HINT_LOCKED)


def _bump(key: str) -> int:
    window = int(settings.TALLY_LOGIN_WINDOW_S)
    cache.add(key, 0, timeout=window)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr: start a new window
        cache.set(key, 1, timeout=window)
        return 1


@transaction.atomic
def login_failure_record(
    *, username: str, ip: str | None, interface: str, per_account: bool = True
) -> None:
    """Counts a failed sign-in against the account (``per_account``) and the address and
    writes an audit row (a second row when this failure reaches a limit: the lock-out)."""
    account_failures = _bump(_account_key(username)) if per_account else 0
    address_failures = _bump(_address_key(ip))
    payload = {
        "interface": interface,
        "account_failures": account_failures,
        "address_failures": address_failures,
    }
    token = access_context_bind(ip=ip)
    try:
        name = username[:255]
        audit_event_create(
            actor=None, action=ACTION_FAILED, object_kind="user", object_name=name, payload=payload
        )
        locked = [
            scope
            for scope, count, limit in (
                ("account", account_failures, settings.TALLY_LOGIN_MAX_FAILURES_ACCOUNT),
                ("address", address_failures, settings.TALLY_LOGIN_MAX_FAILURES_ADDRESS),
            )
            # Exactly at the limit: one lock-out row per window, not one per refused try.
            if count == limit
        ]
        if locked:
            audit_event_create(
                actor=None,
                action=ACTION_LOCKED,
                object_kind="user",
                object_name=name,
                payload={**payload, "locked": locked, "window_s": settings.TALLY_LOGIN_WINDOW_S},
            )
    finally:
        access_context_reset(token)


def login_success_record(*, username: str) -> None:
    """Clears the account's failure count after a successful sign-in (the address's stays:
    one good password must not reset a guessing run over many accounts)."""
    cache.delete(_account_key(username))


def login_authenticate(
    *,
    username: str,
    ip: str | None,
    interface: str,
    check: Callable[[], Account | None],
    per_account: bool = True,
) -> Account | None:
    """Runs ``check`` (the password check; None = wrong) unless the account or address is
    locked; records the failure or clears the account's count. Raises LoginLocked (after
    auditing the refused attempt) while locked, even before a correct password is checked.

    ``per_account=False`` (an API token: ``username`` is only a label) throttles and counts
    per address alone."""
    scope = {"username": username, "ip": ip, "per_account": per_account}
    try:
        login_throttle_check(**scope)
    except LoginLocked:
        login_failure_record(**scope, interface=interface)
        raise
    account = check()
    if account is None:
        login_failure_record(**scope, interface=interface)
    elif per_account:
        login_success_record(username=username)
    return account
