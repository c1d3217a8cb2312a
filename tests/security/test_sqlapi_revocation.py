"""Issue 18, principle 7: a SQL API session is re-checked before its statements. A revoked
or expired token ends it at the next metric query (FATAL 28000 and an audit row), and so
does a removed role; a changed tenant binding of its token, or a changed attribute of its
user's profile, applies to the running session at once. Issue 19: the re-check reuses the
session's principal while the access generation is unchanged, so these hold with the
periodic full re-check (TALLY_SQL_RECHECK_S) an hour away: every change bumps it."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest

from tests.conftest import in_own_thread
from tests.security.sqlapi_support import PASSWORD, sql_server, tally_shell, url

SUM_REVENUE = "SELECT revenue FROM metrics"
# The periodic full re-check out of the way: the access generation must carry each change.
NO_TIMER = {"TALLY_SQL_RECHECK_S": "3600"}


def _new_token(name: str, **kwargs: str) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    out = tally_shell(
        "from django.contrib.auth.models import User\n"
        "from registry.services.access import token_create\n"
        f"print(token_create(acting_user=None, name={name!r}, {args}).raw)\n"
    )
    return out.strip().splitlines()[-1]


def _prefix(raw: str) -> str:
    return raw.split("_")[1]


def _session_events(prefix: str) -> list[dict[str, object]]:
    out = tally_shell(
        "import json\n"
        "from registry.models import AuditEvent\n"
        "rows = AuditEvent.objects.filter(action='sql.session_end', "
        f"token__prefix={prefix!r}).values('action', 'payload', 'principal')\n"
        "print(json.dumps(list(rows)))\n"
    )
    return list(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            "from registry.services.access import token_revoke\n"
            "token_revoke(token=token, acting_user=None)\n",
            "token revoked",
        ),
        (
            "from django.utils import timezone\n"
            "ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())\n",
            "token expired",
        ),
    ],
    ids=["revoked", "expired"],
)
def test_a_dead_token_ends_the_running_session(change: str, reason: str) -> None:
    raw = _new_token(f"bi-{reason.split()[1]}", user=None, service="bi", scopes="read,query")
    with (
        sql_server(**NO_TIMER) as port,
        psycopg.connect(url(port, user="bi", password=raw)) as conn,
    ):
        assert conn.execute(SUM_REVENUE).fetchall()
        tally_shell(
            "from registry.models import ApiToken\n"
            f"token = ApiToken.objects.get(prefix={_prefix(raw)!r})\n" + change
        )
        with pytest.raises(psycopg.OperationalError) as info:
            conn.execute(SUM_REVENUE).fetchall()
        assert info.value.sqlstate == "28000"
        assert reason in str(info.value)
        assert conn.closed or conn.broken
    events = _session_events(_prefix(raw))
    assert len(events) == 1, events
    assert events[0]["payload"]["reason"] == reason.replace(" ", "_")  # type: ignore[index]


def test_a_removed_role_ends_a_password_session() -> None:
    with sql_server(**NO_TIMER) as port, psycopg.connect(url(port, user="carl")) as conn:
        assert conn.execute(SUM_REVENUE).fetchall()
        tally_shell(
            "from django.contrib.auth.models import User\n"
            "from registry.services.access import role_revoke\n"
            "role_revoke(user=User.objects.get(username='carl'), role='analyst')\n"
        )
        with pytest.raises(psycopg.OperationalError) as info:
            conn.execute(SUM_REVENUE).fetchall()
        assert info.value.sqlstate == "28000"
        assert "may no longer query" in str(info.value)
    # A new session is refused as well.
    with sql_server() as port, pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(url(port, user="carl", password=PASSWORD)).close()
    assert 'role "carl" may not query metrics' in str(refused.value)


def test_a_changed_tenant_binding_applies_to_the_running_session() -> None:
    raw = _new_token("bi-tenant", service="bi-moving", tenant="t13", scopes="read,query")
    with sql_server(**NO_TIMER) as port:
        with psycopg.connect(url(port, user="bi", password=raw)) as conn:
            before = conn.execute(SUM_REVENUE).fetchall()
            tally_shell(
                "from registry.models import ApiToken\n"
                f"ApiToken.objects.filter(prefix={_prefix(raw)!r}).update(tenant='t14')\n"
            )
            after = conn.execute(SUM_REVENUE).fetchall()
        with psycopg.connect(url(port, user="bi", password=raw)) as fresh:
            expected = fresh.execute(SUM_REVENUE).fetchall()
    assert after == expected
    assert after != before


def test_a_deactivated_user_ends_a_password_session_at_the_next_metric_query() -> None:
    with sql_server(**NO_TIMER) as port, psycopg.connect(url(port, user="fred")) as conn:
        assert conn.execute(SUM_REVENUE).fetchall()
        tally_shell(
            "from django.contrib.auth.models import User\n"
            "User.objects.filter(username='fred').update(is_active=False)\n"
        )
        with pytest.raises(psycopg.OperationalError) as info:
            conn.execute(SUM_REVENUE).fetchall()
        assert info.value.sqlstate == "28000"
        assert "user deactivated" in str(info.value)


def _user_token(username: str, *, tenant: str) -> str:
    """A new analyst (row policies apply) with tenant_id=``tenant`` in their profile, and a
    token of theirs that may query."""
    out = tally_shell(
        "from django.contrib.auth.models import User\n"
        "from registry.services.access import access_profile_set, role_grant, token_create\n"
        f"u = User.objects.create_user({username!r})\n"
        "role_grant(user=u, role='analyst')\n"
        f"access_profile_set(user=u, attributes={{'tenant_id': {tenant!r}}})\n"
        "print(token_create(acting_user=None, user=u, scopes='read,query').raw)\n"
    )
    return out.strip().splitlines()[-1]


def test_a_removed_role_ends_a_token_session_at_the_next_query() -> None:
    raw = _user_token("gina", tenant="t13")
    with (
        sql_server(**NO_TIMER) as port,
        psycopg.connect(url(port, user="gina", password=raw)) as conn,
    ):
        assert conn.execute(SUM_REVENUE).fetchall()
        tally_shell(
            "from django.contrib.auth.models import User\n"
            "from registry.services.access import role_revoke\n"
            "role_revoke(user=User.objects.get(username='gina'), role='analyst')\n"
        )
        with pytest.raises(psycopg.OperationalError) as info:
            conn.execute(SUM_REVENUE).fetchall()
        assert info.value.sqlstate == "28000"
        assert 'role "gina" may no longer query metrics' in str(info.value)
    events = _session_events(_prefix(raw))
    assert [e["payload"]["reason"] for e in events] == ["query_right_removed"]  # type: ignore[index]


def test_a_changed_profile_attribute_applies_to_the_next_query() -> None:
    raw = _user_token("hana", tenant="t13")
    with sql_server(**NO_TIMER) as port:
        with psycopg.connect(url(port, user="hana", password=raw)) as conn:
            before = conn.execute(SUM_REVENUE).fetchall()
            tally_shell(
                "from django.contrib.auth.models import User\n"
                "from registry.services.access import access_profile_set\n"
                "access_profile_set(user=User.objects.get(username='hana'), "
                "attributes={'tenant_id': 't14'})\n"
            )
            after = conn.execute(SUM_REVENUE).fetchall()
        with psycopg.connect(url(port, user="hana", password=raw)) as fresh:
            expected = fresh.execute(SUM_REVENUE).fetchall()
    assert after == expected
    assert after != before


# A prepared statement (asyncpg: Parse once, then Bind and Execute) keeps its mapping from
# one execution to the next (semantic/sqlapi/session.py MappedMemo): who runs it must not be.
PREPARED = "SELECT account__plan, revenue FROM metrics WHERE account__plan <> $1 ORDER BY 1"


def _prepared_twice(port: int, raw: str, between: str) -> tuple[list[tuple], Exception | list]:
    """Runs PREPARED twice on one asyncpg connection with ``between`` run in `tally shell`
    in between; returns the first rows and the second rows or the error."""
    import asyncpg

    async def run() -> tuple[list[tuple], Exception | list]:
        conn = await asyncpg.connect(url(port, user="bi", password=raw))
        try:
            statement = await conn.prepare(PREPARED)
            first = [tuple(r) for r in await statement.fetch("free")]
            await asyncio.to_thread(tally_shell, between)
            try:
                return first, [tuple(r) for r in await statement.fetch("free")]
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                return first, exc
        finally:
            if not conn.is_closed():
                await conn.close()

    return in_own_thread(asyncio.run, run())


def test_a_revoked_token_stops_its_prepared_statement_at_the_next_execution() -> None:
    """The second execution of a prepared statement re-checks the token (FATAL 28000, audited),
    though its mapping is kept: the memo holds no right to query."""
    raw = _new_token("bi-prepared", service="bi-prepared", tenant="t13", scopes="read,query")
    with sql_server(**NO_TIMER) as port:
        first, second = _prepared_twice(
            port,
            raw,
            "from registry.models import ApiToken\n"
            "from registry.services.access import token_revoke\n"
            f"token_revoke(token=ApiToken.objects.get(prefix={_prefix(raw)!r}), "
            "acting_user=None)\n",
        )
    assert first
    # asyncpg reports the FATAL 28000 as the connection it closed, with the server's text.
    assert isinstance(second, Exception), second
    assert "terminating connection: token revoked" in str(second)
    events = _session_events(_prefix(raw))
    assert [e["payload"]["reason"] for e in events] == ["token_revoked"]  # type: ignore[index]


def test_a_changed_tenant_binding_applies_to_the_next_execution_of_a_prepared_statement() -> None:
    """The same prepared statement with the same parameter, run again after the token's tenant
    changed, answers with the new tenant's rows (what a fresh session gets), not the rows or
    the principal of its first execution."""
    raw = _new_token("bi-prepared-tenant", service="bi-moving2", tenant="t13", scopes="read,query")
    with sql_server(**NO_TIMER) as port:
        before, after = _prepared_twice(
            port,
            raw,
            "from registry.models import ApiToken\n"
            f"ApiToken.objects.filter(prefix={_prefix(raw)!r}).update(tenant='t14')\n",
        )
        with psycopg.connect(url(port, user="bi", password=raw)) as fresh:
            expected = fresh.execute(PREPARED.replace("$1", "%s"), ["free"]).fetchall()
    assert isinstance(after, list), after
    assert after == [tuple(r) for r in expected]
    assert after != before
