"""Issue #19: the access generation guards reused principals (registry/access_cache.py).

A principal is reused while the counter is unchanged, so (1) every table authentication
reads must carry the trigger that bumps it: a test lists the tables the real code reads and
compares them with the triggers in the migrated database, so a model added to a principal
later (or a SQLite table rebuild that silently dropped a trigger) fails here; (2) each write
that shapes a principal bumps it, whoever makes it (service, ORM save, queryset update);
(3) a reused principal still expires by the clock, and costs one query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlglot
import time_machine
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import update_last_login
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from sqlglot import exp

from registry.access_cache import access_generation, token_access
from registry.models import AccessProfile, ApiToken, Domain, RoleGrant, Team, TeamMembership
from registry.permissions import principal_for, user_can, user_grants
from registry.roles import Action
from registry.services.access import (
    TokenInvalid,
    access_profile_set,
    role_grant,
    role_revoke,
    token_authenticate,
    token_create,
    token_revoke,
)
from registry.services.audit import access_context_bind, access_context_reset
from semantic.sqlapi.auth import Identity, identity_recheck

pytestmark = [pytest.mark.registry_db, pytest.mark.django_db(transaction=True)]
PASSWORD = "s3cret-pw-19"


@dataclass
class World:
    user: Any
    raw: str
    token: ApiToken
    team: Team
    domain: Domain


@pytest.fixture(autouse=True)
def _own_access_context() -> Iterator[None]:
    # Authenticating binds the token to the audit context, as a request does; this test's
    # token must not outlive it in the next test's audit rows.
    bound = access_context_bind(token=None, principal=None)
    yield
    access_context_reset(bound)


@pytest.fixture
def world() -> World:
    """rita: analyst, editor in a domain her team owns, a profile, and a token."""
    user = get_user_model().objects.create_user("rita", password=PASSWORD)
    team = Team.objects.create(slug="finance", name="Finance")
    domain = Domain.objects.create(slug="money", name="Money", owner=team)
    TeamMembership.objects.create(team=team, user=user)
    role_grant(user=user, role="analyst")
    role_grant(user=user, role="editor", domain="money")
    access_profile_set(user=user, attributes={"tenant_id": "t13"})
    created = token_create(acting_user=None, user=user, scopes="read,compile,query")
    return World(user, created.raw, created.token, team, domain)


def _tables_read(queries: list[dict[str, Any]]) -> set[str]:
    dialect = "sqlite" if connection.vendor == "sqlite" else "postgres"
    found: set[str] = set()
    for query in queries:
        tree = sqlglot.parse_one(query["sql"], read=dialect)
        if isinstance(tree, exp.Select):
            found |= {table.name for table in tree.find_all(exp.Table)}
    return found


def _tables_with_trigger() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE '%\\_access\\_gen\\_%' ESCAPE '\\'"
            )
        else:
            cursor.execute(
                "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE t.tgname LIKE '%\\_access\\_gen'"
            )
        return {row[0] for row in cursor.fetchall()}


def test_every_table_a_principal_is_read_from_bumps_the_generation(world: World) -> None:
    """What token_authenticate, principal_for, the query right and the SQL API's re-checks
    (token and password sessions) read, each table of it has the generation's trigger."""
    with CaptureQueriesContext(connection) as captured:
        token = token_authenticate(world.raw)
        principal_for(token.user, token=token)
        user_can(token.user, Action.QUERY, token=token)
        account = authenticate(username="rita", password=PASSWORD)
        assert account is not None
        user_grants(account)
        principal_for(account)
        for identity in (Identity(principal_for(account), account), Identity(None, account, token)):  # type: ignore[arg-type]
            identity_recheck(identity, session="rita", grants=True)
    read = _tables_read(captured.captured_queries) - {"registry_accessgeneration"}
    # The reads the principal is made of are all there (the capture is not vacuous)…
    assert {
        "registry_apitoken",
        get_user_model()._meta.db_table,
        "registry_rolegrant",
        "registry_teammembership",
        "registry_team",
        "registry_domain",
        "registry_accessprofile",
    } <= read
    # …and none of them lacks the trigger.
    assert read - _tables_with_trigger() == set()


def _service(name: str) -> Callable[[World], object]:
    writes: dict[str, Callable[[World], object]] = {
        "token_create": lambda w: token_create(acting_user=None, user=w.user, scopes="read"),
        "token_revoke": lambda w: token_revoke(token=w.token, acting_user=None),
        "token tenant update": lambda w: ApiToken.objects.filter(pk=w.token.pk).update(
            tenant="t14"
        ),
        "token expiry update": lambda w: ApiToken.objects.filter(pk=w.token.pk).update(
            expires_at=timezone.now() + dt.timedelta(days=1)
        ),
        "token delete": lambda w: ApiToken.objects.filter(pk=w.token.pk).delete(),
        "role_grant": lambda w: role_grant(user=w.user, role="auditor"),
        "role_revoke": lambda w: role_revoke(user=w.user, role="analyst"),
        "role grant delete": lambda w: RoleGrant.objects.filter(user=w.user).delete(),
        "access_profile_set": lambda w: access_profile_set(user=w.user, attributes={}),
        "access profile delete": lambda w: AccessProfile.objects.filter(user=w.user).delete(),
        "membership create": lambda w: TeamMembership.objects.create(
            team=Team.objects.create(slug="data-governance", name="Gov"), user=w.user
        ),
        "membership delete": lambda w: TeamMembership.objects.filter(user=w.user).delete(),
        "team slug": lambda w: Team.objects.filter(pk=w.team.pk).update(slug="fin"),
        "domain owner": lambda w: Domain.objects.filter(pk=w.domain.pk).update(owner=None),
        "domain slug": lambda w: Domain.objects.filter(pk=w.domain.pk).update(slug="cash"),
        "user deactivated (save)": lambda w: _save(w.user, is_active=False),
        "user superuser (update)": lambda w: (
            get_user_model().objects.filter(pk=w.user.pk).update(is_superuser=True)
        ),
        "user renamed": lambda w: _save(w.user, username="rita2"),
    }
    return writes[name]


def _save(user: Any, **fields: Any) -> None:
    for key, value in fields.items():
        setattr(user, key, value)
    user.save()


WRITES = [
    "token_create",
    "token_revoke",
    "token tenant update",
    "token expiry update",
    "token delete",
    "role_grant",
    "role_revoke",
    "role grant delete",
    "access_profile_set",
    "access profile delete",
    "membership create",
    "membership delete",
    "team slug",
    "domain owner",
    "domain slug",
    "user deactivated (save)",
    "user superuser (update)",
    "user renamed",
]


@pytest.mark.parametrize("write", WRITES)
def test_each_write_that_shapes_a_principal_bumps_the_generation(world: World, write: str) -> None:
    before = access_generation()
    assert before is not None
    _service(write)(world)
    after = access_generation()
    assert after is not None and after > before


def test_use_and_sign_in_do_not_bump_the_generation(world: World) -> None:
    """last_used_at (touched once a minute per token) and last_login (every sign-in) change
    nothing a principal is made of: bumping on them would empty every cache all day."""
    before = access_generation()
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5)):
        token_authenticate(world.raw)
    assert ApiToken.objects.get(pk=world.token.pk).last_used_at is not None
    update_last_login(None, world.user)
    Team.objects.filter(pk=world.team.pk).update(name="Finance & Ops")
    assert access_generation() == before


def test_a_reused_principal_costs_one_query_and_follows_the_next_change(world: World) -> None:
    first = token_access(world.raw)
    assert first.principal.attributes == {"tenant_id": "t13"}
    with CaptureQueriesContext(connection) as captured:
        again = token_access(world.raw)
    assert again is first
    assert len(captured.captured_queries) == 1, captured.captured_queries
    access_profile_set(user=world.user, attributes={"tenant_id": "t14"})
    moved = token_access(world.raw)
    assert moved.principal.attributes == {"tenant_id": "t14"}
    token_revoke(token=world.token, acting_user=None)
    with pytest.raises(TokenInvalid, match="token revoked"):
        token_access(world.raw)


def test_a_reused_principal_expires_by_the_clock(world: World) -> None:
    created = token_create(
        acting_user=None, user=world.user, scopes="read", expires_in=dt.timedelta(hours=1)
    )
    assert token_access(created.raw).token.pk == created.token.pk
    with (
        time_machine.travel(timezone.now() + dt.timedelta(hours=2)),
        CaptureQueriesContext(connection) as captured,
        pytest.raises(TokenInvalid, match="token expired"),
    ):
        token_access(created.raw)
    # Refused from the reused entry (the generation read only), by the clock alone.
    assert len(captured.captured_queries) == 1


def test_nothing_is_reused_inside_a_transaction(world: World) -> None:
    """A generation read inside a transaction may be one that it bumped and rolls back."""
    token_access(world.raw)
    with transaction.atomic():
        assert access_generation() is None
        with CaptureQueriesContext(connection) as captured:
            token_access(world.raw)
    assert len(captured.captured_queries) > 1
