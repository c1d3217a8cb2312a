"""The SQL API keeps the DuckDB warehouse open between queries (semantic.warehouse.held):
each query runs on a cursor of its own, so two principals' queries interleaved on the
reused database still see only their own rows."""

from __future__ import annotations

import psycopg

from tests.sqlapi.conftest import Servers

SQL = (
    "SELECT metric_time__year, account__plan, revenue FROM metrics "
    "WHERE account__region <> $1 ORDER BY metric_time__year, account__plan"
)


def test_two_principals_interleaved_see_only_their_own_rows(servers: Servers) -> None:
    """A tenant-bound token and an auditor alternate the same statement (extended protocol,
    then simple) on the same server: every answer of each equals its own first answer, and
    the tenant's total stays below everyone's."""
    with (
        psycopg.connect(servers.url(user="bi", password=servers.tenant_token)) as tenant,
        psycopg.connect(servers.url(password=servers.token)) as auditor,
    ):
        first = {"tenant": None, "auditor": None}
        for _ in range(4):
            for name, conn in (("tenant", tenant), ("auditor", auditor)):
                rows = conn.execute(SQL.replace("$1", "%s"), ["nowhere"]).fetchall()
                simple = conn.execute(SQL.replace("$1", "'nowhere'"), prepare=False).fetchall()
                assert rows == simple
                first[name] = first[name] or rows
                assert rows == first[name]
    tenant_total = sum(float(v or 0) for *_k, v in first["tenant"] or [])
    everyone = sum(float(v or 0) for *_k, v in first["auditor"] or [])
    assert 0 < tenant_total < everyone
