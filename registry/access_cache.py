"""Authenticated principals, reused while nothing about access has changed (issue #19).

Deriving a token's principal reads the token, its user and access profile, the user's role
grants and teams: several queries on every SQL statement and MCP call. Instead each call
reads one counter, the *access generation* (``AccessGeneration``, one row), which database
triggers bump in the transaction of every write that can change a principal: tokens, users,
role grants, team memberships, teams, domains, access profiles (migration 0006; a test
checks that every table authentication reads has its trigger). A principal derived at
generation G is reused while the counter still reads G; the token's expiry is checked
against the clock on every call, and last_used_at is touched as before.

The counter is read before the rows it guards, so an entry is never older than its
generation says. Inside a transaction nothing is cached or reused: a value read there may
be one the transaction itself bumped and then rolls back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from registry.models import ApiToken
from registry.permissions import principal_for
from registry.services.access import token_admit, token_authenticate, token_digest
from semantic.compiler.principal import Principal

GENERATION_SQL = "SELECT value FROM registry_accessgeneration WHERE id = 1"
# Live tokens remembered per process; the least recently used goes first.
MAX_ENTRIES = 1024


def access_generation() -> int | None:
    """The access generation now (one indexed read), or None inside a transaction or when
    the counter row is missing: then nothing may be reused."""
    if connection.in_atomic_block:
        return None
    with connection.cursor() as cursor:
        cursor.execute(GENERATION_SQL)
        row = cursor.fetchone()
    return int(row[0]) if row is not None else None


@dataclass(frozen=True)
class TokenAccess:
    """A live token (with its user) and the principal derived from it at ``generation``."""

    token: ApiToken
    principal: Principal
    generation: int | None


_entries: OrderedDict[tuple[str, ...], TokenAccess] = OrderedDict()
_lock = threading.Lock()


def _key(raw: str) -> tuple[str, ...]:
    # The settings that shape a principal besides the rows (a test may override them); the
    # token itself only as its HMAC, as the registry stores it.
    return (
        token_digest(raw.strip()),
        str(getattr(settings, "TALLY_DEFAULT_ROLE", "") or ""),
        str(getattr(settings, "TALLY_GOVERNANCE_TEAM", "")),
    )


def token_access(raw: str) -> TokenAccess:
    """``token_authenticate`` and the token's principal (``principal_for``), reused from an
    earlier call while the access generation is unchanged.

    Raises:
        TokenInvalid: malformed, unknown, revoked, expired (by the clock, on every call),
            or its user is inactive.
    """
    generation = access_generation()
    key = _key(raw) if generation is not None else None
    if key is not None:
        with _lock:
            found = _entries.get(key)
            if found is not None and found.generation == generation:
                _entries.move_to_end(key)
            elif found is not None:
                del _entries[key]
                found = None
        if found is not None:
            token_admit(found.token)
            return found
    token = token_authenticate(raw)
    access = TokenAccess(token, principal_for(token.user, token=token), generation)
    if key is not None:
        with _lock:
            _entries[key] = access
            _entries.move_to_end(key)
            while len(_entries) > MAX_ENTRIES:
                _entries.popitem(last=False)
    return access
