"""Issue #19: the drivers BI tools and applications use, unchanged, against `tally serve-sql`
(real subprocess servers, no mocks): asyncpg (binary results, prepared statements), pgjdbc
from Debian (server-prepared statements past prepareThreshold, DatabaseMetaData,
setReadOnly), psycopg 3 + SQLAlchemy (``.limit()``/``.offset()``, named cursors, read-only
transactions), node-postgres, psql's ``\\l``, and dimension values (``SELECT DISTINCT``)
under two tenants' tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy

from tests.conftest import ROOT, in_own_thread, run_tally, unavailable
from tests.sqlapi.conftest import PASSWORD, USER, Servers

JDBC_JAR = Path("/usr/share/java/postgresql.jar")
JDBC_SOURCE = Path(__file__).parent / "jdbc" / "TallyJdbcCheck.java"
NODE_SCRIPT = Path(__file__).parent / "node" / "pg_check.js"


def _tally_query(servers: Servers, *args: str) -> list[list[Any]]:
    result = run_tally("query", *args, "--format", "json", env=servers.env)
    assert result.returncode == 0, result.stderr
    rows: list[list[Any]] = json.loads(result.stdout)["rows"]
    return rows


def _number(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).normalize()


# ---------------------------------------------------------------------------- asyncpg


def test_asyncpg_fetches_binary_types_and_reruns_prepared_statements(servers: Servers) -> None:
    """asyncpg asks for binary results on every statement (it could not run `select 1`):
    dates, numerics, bigints and text arrive typed, equal to `tally query`; a prepared
    statement runs again with new parameters (LIMIT $2 typed as an integer)."""
    import asyncpg

    async def run() -> dict[str, Any]:
        conn = await asyncpg.connect(servers.url())
        try:
            one = await conn.fetchval("select 1")
            rows = await conn.fetch(
                "SELECT metric_time__month, account__plan, revenue, new_accounts FROM metrics "
                "WHERE account__region = $1 ORDER BY 1, 2",
                "EMEA",
            )
            statement = await conn.prepare(
                "SELECT account__plan, revenue FROM metrics WHERE account__plan <> $1 "
                "ORDER BY 1 LIMIT $2"
            )
            first = await statement.fetch("free", 2)
            again = [await statement.fetch("pro", 3) for _ in range(3)]
            types = await conn.fetch(
                "SELECT oid, typname FROM pg_catalog.pg_type WHERE typname = $1", "int8"
            )
            return {"one": one, "rows": rows, "first": first, "again": again, "types": types}
        finally:
            await conn.close()

    got = in_own_thread(asyncio.run, run())
    assert got["one"] == 1
    rows = got["rows"]
    assert rows and isinstance(rows[0][0], dt.date) and isinstance(rows[0][2], Decimal | None)
    assert all(isinstance(r[3], int | None) for r in rows)
    expected = _tally_query(
        servers,
        "--metrics", "revenue,new_accounts", "--group-by", "metric_time__month,account__plan",
        "--where", "{{ Dimension('account__region') }} = 'EMEA'",
        "--order-by", "metric_time__month,account__plan",
    )  # fmt: skip
    assert [(r[0].isoformat(), r[1], _number(r[2]), r[3]) for r in rows] == [
        (m[:10], p, _number(v), None if n is None else int(n)) for m, p, v, n in expected
    ]
    assert [r[0] for r in got["first"]] == ["enterprise", "pro"]
    assert all([r[0] for r in run] == ["enterprise", "free", "starter"] for run in got["again"])
    assert [tuple(r) for r in got["types"]] == [(20, "int8")]


# ---------------------------------------------------------------------------- pgjdbc


@pytest.fixture(scope="module")
def jdbc_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TallyJdbcCheck compiled with the JDK's javac (Debian's pgjdbc on the class path)."""
    if not JDBC_JAR.exists() or shutil.which("javac") is None or shutil.which("java") is None:
        unavailable(
            "pgjdbc or a JDK is missing (./dev test installs them: apt-get install "
            "default-jre-headless libpostgresql-jdbc-java)"
        )
    out = tmp_path_factory.mktemp("jdbc")
    compiled = subprocess.run(
        ["javac", "-d", str(out), str(JDBC_SOURCE)], capture_output=True, text=True, timeout=120
    )
    assert compiled.returncode == 0, compiled.stderr
    return out


def _jdbc(classes: Path, servers: Servers, password: str = PASSWORD) -> dict[str, str]:
    result = subprocess.run(
        ["java", "-cp", f"{classes}{os.pathsep}{JDBC_JAR}", "TallyJdbcCheck",
         f"jdbc:postgresql://127.0.0.1:{servers.sql_port}/tally", USER, password],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_pgjdbc_prepared_metadata_and_read_only(jdbc_classes: Path, servers: Servers) -> None:
    """pgjdbc: one PreparedStatement executed 10 times (server-prepared with binary results
    after the 5th) answers as `tally query`; DatabaseMetaData's keys, indexes, functions and
    types answer (empty where nothing applies); setReadOnly(true) + a fetch-size read inside
    a transaction; the catalog is `tally`."""
    got = _jdbc(jdbc_classes, servers)
    expected = _tally_query(
        servers,
        "--metrics", "revenue,new_accounts", "--group-by", "metric_time__month,account__plan",
        "--where", "{{ Dimension('account__plan') }} <> 'free'",
        "--order-by", "metric_time__month,account__plan", "--limit", "6",
    )  # fmt: skip
    rows = [row.split("|") for row in got["prepared"].split(";")]
    assert [(m, p, _number(v), int(n)) for m, p, v, n in rows] == [
        (m[:10], p, _number(v), int(n or 0)) for m, p, v, n in expected
    ]
    assert got["int8"].startswith("pro|") and got["int8"].split("|")[1].isdigit()
    assert got["product"] == "PostgreSQL" and got["catalogs"] == "tally"
    assert got["tables"] == "metrics" and int(got["columns"]) > 50
    for empty in ("primary_keys", "index_info", "imported_keys", "exported_keys", "functions"):
        assert got[empty] == "0", empty
    assert int(got["type_info"]) >= 10
    assert got["read_only"] == "enterprise;free;pro" and got["is_read_only"] == "false"


# ---------------------------------------------------------------------------- psycopg 3


def test_sqlalchemy_psycopg3_limit_offset_and_distinct(servers: Servers) -> None:
    """SQLAlchemy on psycopg 3 renders ``LIMIT %(param_1)s::INTEGER`` and ``OFFSET``;
    ``.distinct()`` on a dimension answers its values (no metric)."""
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{servers.sql_port}/tally"
    )
    metrics = sqlalchemy.table(
        "metrics",
        sqlalchemy.column("account__plan"),
        sqlalchemy.column("revenue"),
        schema="tally",
    )
    base = sqlalchemy.select(metrics.c.account__plan, metrics.c.revenue).order_by(
        metrics.c.account__plan
    )
    with engine.connect() as conn:
        assert "::INTEGER" in str(base.limit(2).compile(conn))
        everything = conn.execute(base).fetchall()
        page = conn.execute(base.limit(2).offset(1)).fetchall()
        plans = conn.execute(
            sqlalchemy.select(metrics.c.account__plan).distinct().order_by(metrics.c.account__plan)
        ).scalars()
        assert list(plans) == [row[0] for row in everything]
    engine.dispose()
    assert len(everything) == 4 and page == everything[1:3]


def test_psycopg3_named_cursor_and_read_only_transactions(servers: Servers) -> None:
    """psycopg's server-side cursor (DECLARE … CURSOR, FETCH FORWARD n, CLOSE), BEGIN READ
    ONLY, START TRANSACTION READ ONLY and SET SESSION CHARACTERISTICS."""
    sql = "SELECT metric_time__month, revenue FROM metrics WHERE account__plan = %s ORDER BY 1"
    with psycopg.connect(servers.url(), autocommit=True) as conn:
        expected = conn.execute(sql, ["pro"]).fetchall()
    with psycopg.connect(servers.url()) as conn:
        conn.read_only = True  # BEGIN READ ONLY
        with conn.cursor(name="months") as cursor:
            cursor.itersize = 4
            cursor.execute(sql, ["pro"])
            assert cursor.fetchmany(3) == expected[:3]
            assert cursor.fetchall() == expected[3:]
        conn.commit()
    with psycopg.connect(servers.url(), autocommit=True) as conn:
        for statement in (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "START TRANSACTION READ ONLY",
            "DECLARE c NO SCROLL CURSOR FOR SELECT DISTINCT account__plan FROM metrics",
            "MOVE 1 FROM c",
        ):
            conn.execute(statement)
        assert conn.execute("FETCH 2 FROM c").fetchall() == [("free",), ("pro",)]
        assert conn.execute("FETCH ALL FROM c").fetchall() == [("starter",)]
        conn.execute("CLOSE c")
        with pytest.raises(psycopg.errors.InvalidCursorName):
            conn.execute("FETCH NEXT FROM c")
        conn.execute("ROLLBACK")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("BEGIN; DECLARE s SCROLL CURSOR FOR SELECT revenue FROM metrics")


# ---------------------------------------------------------------------------- node, psql


def test_node_postgres_queries_and_prepared_statements(servers: Servers) -> None:
    """node-postgres (npm `pg`, a dev dependency in package.json): simple and parameterised
    queries and a named prepared statement run twice."""
    modules = ROOT / "node_modules" / "pg"
    if shutil.which("node") is None or not modules.exists():
        unavailable("node or node_modules/pg is missing (./dev test runs npm ci)")
    result = subprocess.run(
        ["node", str(NODE_SCRIPT), servers.url()],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "NODE_PATH": str(ROOT / "node_modules"), "TZ": "UTC"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    expected = _tally_query(
        servers,
        "--metrics",
        "revenue",
        "--group-by",
        "account__plan",
        "--order-by",
        "account__plan",
    )
    assert [[p, _number(v)] for p, v in got["simple"]] == [[p, _number(v)] for p, v in expected]
    assert got["simple_types"] == [1043, 1700]
    assert len(got["params"]) == 3 and {row[1] for row in got["params"]} == {"pro"}
    assert got["plans"] == got["plans_again"] == [p for p, _v in expected]


def test_psql_l_lists_the_tally_database(servers: Servers) -> None:
    r"""`\l` (psql -l) shows one database, tally, not DuckDB's memory/system/temp."""
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(servers.sql_port), "-U", USER, "-d", "tally",
         "-X", "-A", "-t", "-l"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PGPASSWORD": PASSWORD},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [line.split("|")[0] for line in result.stdout.strip().splitlines()] == ["tally"]


# ---------------------------------------------------------------------------- tenants


def _tenant_token(servers: Servers, tenant: str) -> str:
    result = run_tally(
        "shell", "-c",
        "from registry.services.access import token_create; "
        f"print(token_create(acting_user=None, service='bi-{tenant}-values', tenant={tenant!r}, "
        "scopes='read,query').raw)",
        env=servers.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_dimension_values_under_two_tenants_tokens(servers: Servers) -> None:
    """SELECT DISTINCT / GROUP BY of a dimension with no metric lists its values for the
    caller: each tenant's token sees its own tenant id and accounts only, the auditor sees
    every tenant, and the HTTP endpoint agrees."""
    import requests

    with psycopg.connect(servers.url(password=servers.token)) as conn:
        tenants = [r[0] for r in conn.execute("SELECT DISTINCT account__tenant_id FROM metrics")]
    assert len(tenants) >= 2 and "t13" in tenants
    other = next(t for t in tenants if t != "t13")
    seen: dict[str, set[Any]] = {}
    for tenant, token in (("t13", servers.tenant_token), (other, _tenant_token(servers, other))):
        with psycopg.connect(servers.url(user="bi", password=token)) as conn:
            ids = conn.execute(
                "SELECT account__tenant_id FROM metrics GROUP BY account__tenant_id"
            ).fetchall()
            accounts = {r[0] for r in conn.execute("SELECT DISTINCT account FROM metrics")}
            plans = conn.execute(
                "SELECT DISTINCT account__plan FROM metrics WHERE account__plan <> %s LIMIT %s",
                ["free", 10],
            ).fetchall()
        assert ids == [(tenant,)]
        assert plans and ("free",) not in plans
        http = requests.get(
            f"{servers.http}/api/v1/metrics/new_accounts/dimensions/account__tenant_id/values",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert http.status_code == 200, http.text
        assert http.json()["values"] == [tenant]
        seen[tenant] = accounts
    assert seen["t13"] and seen[other] and not seen["t13"] & seen[other]
