"""The SQL API as BI tools use it: psql, psycopg 3, SQLAlchemy, pandas against a real
`tally serve-sql` subprocess on the demo warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import pandas
import psycopg
import pytest
import sqlalchemy

from tests.conftest import run_tally
from tests.sqlapi.conftest import PASSWORD, USER, Servers, start_sql_server, stop

BI_QUERY = (
    "SELECT metric_time__month, account__plan, MEASURE(revenue) FROM metrics "
    "WHERE account__region = 'EMEA' GROUP BY 1, 2 ORDER BY 1, 2"
)


def psql(servers: Servers, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(servers.sql_port), "-U", USER, "-d", "tally",
         "-X", "-v", "ON_ERROR_STOP=1", *args],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PGPASSWORD": PASSWORD},
    )  # fmt: skip


def test_psql_lists_and_describes_the_metrics_table(servers: Servers) -> None:
    """psql 15's \\dt and \\d metrics work: the table, its columns and types."""
    listed = psql(servers, "-c", r"\dt")
    assert listed.returncode == 0, listed.stderr
    assert "tally  | metrics | table" in listed.stdout
    described = psql(servers, "-c", r"\d+ metrics")
    assert described.returncode == 0, described.stderr
    assert 'Table "tally.metrics"' in described.stdout
    assert "metric_time__month" in described.stdout and "date" in described.stdout
    # Column comments carry the metric descriptions.
    assert "Amount of paid invoices, by invoice issue date." in described.stdout


def test_psql_runs_a_metric_query(servers: Servers) -> None:
    """A BI-style grouped query through psql answers with rows and a row count."""
    result = psql(servers, "-A", "-t", "-F", ",", "-c", BI_QUERY)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines and all(line.count(",") == 2 for line in lines)
    assert lines[0].startswith("20")


def test_grouped_query_equals_tally_query(servers: Servers) -> None:
    """The SQL API returns the same rows as `tally query` for the same question."""
    with psycopg.connect(servers.url()) as conn:
        rows = conn.execute(BI_QUERY).fetchall()
    cli = run_tally(
        "query", "--metrics", "revenue", "--group-by", "metric_time__month,account__plan",
        "--where", "{{ Dimension('account__region') }} = 'EMEA'",
        "--order-by", "metric_time__month,account__plan", "--format", "json",
        env=servers.env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    expected = [
        (month[:10], plan, None if value is None else Decimal(str(value)))
        for month, plan, value in json.loads(cli.stdout)["rows"]
    ]
    got = [(m.isoformat(), p, None if v is None else Decimal(str(float(v)))) for m, p, v in rows]
    assert got == expected and len(got) > 10


def test_psycopg_extended_protocol_with_parameters(servers: Servers) -> None:
    """Server-side parameters ($1…) bind into the WHERE and LIMIT; bare and SUM() metric
    columns, aliases and ORDER BY DESC map onto the metric query."""
    with psycopg.connect(servers.url()) as conn:
        cursor = conn.execute(
            "SELECT account__plan AS plan, SUM(revenue) AS total, signups FROM metrics "
            "WHERE account__region = %s AND metric_time__day >= %s "
            "GROUP BY plan ORDER BY total DESC LIMIT %s",
            ["EMEA", "2025-01-01", 2],
        )
        assert [d.name for d in cursor.description] == ["plan", "total", "signups"]
        rows = cursor.fetchall()
        assert len(rows) == 2 and rows[0][1] >= rows[1][1]
        assert isinstance(rows[0][2], int)
        assert conn.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 15")
        assert conn.execute("SHOW standard_conforming_strings").fetchone() == ("on",)
        conn.execute("SET application_name = 'report'")
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("report",)


def test_sqlalchemy_reflects_tables_and_columns(servers: Servers) -> None:
    """SQLAlchemy's PostgreSQL dialect connects and reflects tally.metrics with comments."""
    engine = sqlalchemy.create_engine(
        servers.url().replace("postgresql://", "postgresql+psycopg://")
    )
    try:
        inspector = sqlalchemy.inspect(engine)
        assert inspector.get_table_names(schema="tally") == ["metrics"]
        assert "metrics" in inspector.get_table_names()
        columns = {c["name"]: c for c in inspector.get_columns("metrics", schema="tally")}
        assert {"revenue", "account__plan", "metric_time__year"} <= columns.keys()
        assert isinstance(columns["revenue"]["type"], sqlalchemy.Numeric)
        assert isinstance(columns["signups"]["type"], sqlalchemy.BigInteger)
        assert isinstance(columns["metric_time__month"]["type"], sqlalchemy.Date)
        assert columns["revenue"]["comment"] == "Amount of paid invoices, by invoice issue date."
    finally:
        engine.dispose()


def test_pandas_read_sql_returns_a_dataframe(servers: Servers) -> None:
    """pandas.read_sql through SQLAlchemy gets typed columns."""
    engine = sqlalchemy.create_engine(
        servers.url().replace("postgresql://", "postgresql+psycopg://")
    )
    try:
        with engine.connect() as conn:
            frame = pandas.read_sql(
                sqlalchemy.text("SELECT metric_time__year, events_tracked FROM metrics ORDER BY 1"),
                conn,
            )
    finally:
        engine.dispose()
    assert list(frame.columns) == ["metric_time__year", "events_tracked"]
    assert len(frame) >= 2 and frame["events_tracked"].sum() > 0


@pytest.mark.parametrize(
    ("sql", "sqlstate", "text"),
    [
        ("SELEC revenue FROM metrics", "42601", "syntax error"),
        ("INSERT INTO metrics (account__plan) VALUES ('x')", "25006", "read-only"),
        ("DROP TABLE metrics", "25006", "read-only"),
        ("COPY metrics TO STDOUT", "0A000", "COPY is not supported"),
        (
            "SELECT a.revenue FROM metrics a JOIN metrics b ON TRUE",
            "0A000",
            "JOIN is not supported",
        ),
        ("SELECT * FROM metrics", "0A000", "SELECT * is not supported"),
        ("SELECT revenue FROM metrics WHERE revenue > 5", "0A000", "filtering on metric revenue"),
        ("SELECT revenu FROM metrics", "42703", 'column "revenu" does not exist'),
        ("SELECT revenue FROM invoices", "42P01", 'relation "invoices" does not exist'),
        ("SELECT COUNT(*) FROM metrics", "0A000", "COUNT()"),
        ("SELECT * FROM read_csv('/etc/passwd')", "42501", "disabled by configuration"),
        # PostgreSQL raises; DuckDB's default would answer inf (a number, not an error).
        ("SELECT 1/0", "22012", "Division by zero"),
        ("SELECT 1.5 / 0, 2", "22012", "Division by zero"),
    ],
)
def test_bad_statements_get_postgres_errors_and_the_server_goes_on(
    servers: Servers, sql: str, sqlstate: str, text: str
) -> None:
    """Each refusal is an ErrorResponse with its SQLSTATE naming the construct; the same
    connection answers the next query."""
    with psycopg.connect(servers.url(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(sql)
        assert caught.value.sqlstate == sqlstate
        assert text in str(caught.value)
        assert conn.execute("SELECT 1 AS one").fetchone() == (1,)


def test_unknown_combination_reports_the_compiler_message(servers: Servers) -> None:
    """A metric grouped by an item it cannot reach: the compiler's own message, 42703."""
    with psycopg.connect(servers.url(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("SELECT revenue, event__feature FROM metrics")
        assert caught.value.sqlstate == "42703"


def test_api_token_is_a_password_and_roles_decide(servers: Servers) -> None:
    """A Tally API token works as the password (any user name); a person without a
    query role is refused with 28000 at connect."""
    with psycopg.connect(servers.url(user="powerbi", password=servers.token)) as conn:
        assert conn.execute("SELECT revenue FROM metrics").fetchone()[0] > 0
    with pytest.raises(psycopg.OperationalError) as bad_token:
        psycopg.connect(servers.url(password="tly_000000000000_nope"))
    assert "password authentication failed" in str(bad_token.value)
    with pytest.raises(psycopg.OperationalError) as viewer:
        psycopg.connect(servers.url(user="visitor", password="visitor-pw"))
    assert 'role "visitor" may not query metrics' in str(viewer.value)


def test_row_policies_apply_as_over_http(servers: Servers) -> None:
    """A tenant-bound token sees only its tenant's rows over SQL, exactly as over HTTP."""
    import requests

    sql = (
        "SELECT metric_time__year, account__plan, revenue FROM metrics "
        "ORDER BY metric_time__year, account__plan"
    )
    with psycopg.connect(servers.url(user="bi", password=servers.tenant_token)) as conn:
        tenant = conn.execute(sql).fetchall()
    with psycopg.connect(servers.url(password=servers.token)) as conn:
        everyone = conn.execute(sql).fetchall()
    http = requests.post(
        f"{servers.http}/api/v1/query",
        json={
            "metrics": ["revenue"],
            "group_by": ["metric_time__year", "account__plan"],
            "order_by": ["metric_time__year", "account__plan"],
        },
        headers={"Authorization": f"Bearer {servers.tenant_token}"},
        timeout=60,
    )
    assert http.status_code == 200, http.text
    as_http = [(y[:10], p, v) for y, p, v in http.json()["rows"]]
    as_sql = [(y.isoformat(), p, None if v is None else float(v)) for y, p, v in tenant]
    assert as_sql == as_http
    total = sum(float(v or 0) for *_k, v in tenant)
    assert 0 < total < sum(float(v or 0) for *_k, v in everyone)


def test_wrong_password_is_refused_with_28p01(servers: Servers) -> None:
    """A wrong password gets FATAL 28P01 and no session; the server keeps serving."""
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(servers.url(password="wrong"))
    assert 'password authentication failed for user "ana"' in str(caught.value)
    with psycopg.connect(servers.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_cancel_request_stops_a_slow_query(servers: Servers) -> None:
    """psycopg's conn.cancel() sends a CancelRequest; the running query ends with 57014."""
    with psycopg.connect(servers.url(), autocommit=True) as conn:
        timer = threading.Timer(0.5, conn.cancel)
        timer.start()
        # A count over 10^11 rows: only the cancel ends it.
        with pytest.raises(psycopg.errors.QueryCanceled) as caught:
            conn.execute("SELECT count(*) FROM generate_series(1, 100000000000) AS s(x)")
        assert "canceling statement due to user request" in str(caught.value)
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_row_cap_is_an_error_not_a_silent_cut(servers: Servers) -> None:
    """Above TALLY_SQL_ROW_CAP the client gets 54000 after the capped rows; a LIMIT under
    the cap answers normally."""
    process, port = start_sql_server({**servers.env, "TALLY_SQL_ROW_CAP": "10"})
    try:
        with psycopg.connect(servers.url(port=port), autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as caught:
                conn.execute("SELECT metric_time__day, events_tracked FROM metrics").fetchall()
            assert caught.value.sqlstate == "54000"
            assert "more than 10 rows" in str(caught.value)
            rows = conn.execute(
                "SELECT metric_time__day, events_tracked FROM metrics LIMIT 10"
            ).fetchall()
            assert len(rows) == 10
    finally:
        stop(process)


@pytest.mark.slow
def test_fifty_concurrent_connections_for_twenty_seconds(servers: Servers) -> None:
    """50 clients, each connecting and querying in a loop for ~20 s: no error anywhere."""
    errors: list[BaseException] = []
    counts = [0] * 50
    deadline = time.monotonic() + 20

    def client(index: int) -> None:
        try:
            while time.monotonic() < deadline:
                with psycopg.connect(servers.url(), autocommit=True) as conn:
                    for _ in range(5):
                        rows = conn.execute(
                            "SELECT metric_time__year, revenue FROM metrics WHERE "
                            "account__plan = %s ORDER BY 1",
                            ["pro" if index % 2 else "enterprise"],
                        ).fetchall()
                        assert rows
                        counts[index] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert all(count > 0 for count in counts)


def test_prepared_statements_run_again_with_new_parameters(servers: Servers) -> None:
    """psycopg's server-side prepared statements (named Parse, Describe, repeated Bind)."""
    with psycopg.connect(servers.url(), autocommit=True) as conn:
        sql = "SELECT metric_time__year, revenue FROM metrics WHERE account__plan = %s ORDER BY 1"
        pro = conn.execute(sql, ["pro"], prepare=True).fetchall()
        enterprise = conn.execute(sql, ["enterprise"], prepare=True).fetchall()
        assert pro and enterprise and pro != enterprise
        assert conn.execute(sql, ["pro"], prepare=True).fetchall() == pro


def test_tls_when_configured(servers: Servers, tmp_path: Path) -> None:
    """With --tls-cert/--tls-key the server answers SSLRequest with S and speaks TLS."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    process, port = start_sql_server(servers.env, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        url = servers.url(port=port) + "?sslmode=require"
        with psycopg.connect(url) as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("SELECT revenue FROM metrics").fetchone()[0] > 0
        # Without TLS configured the same request is answered N, and plain connections work.
        with psycopg.connect(servers.url() + "?sslmode=prefer") as conn:
            assert not conn.pgconn.ssl_in_use
    finally:
        stop(process)


def test_bare_time_columns_answer_as_their_day_columns(servers: Servers) -> None:
    """A bare time column (metric_time, account__created_at) is the item at its own grain,
    which the compiler names __day as MetricFlow does; the SQL API still answers under the
    name selected (it looked the bare name up in the compiled columns and failed)."""
    with psycopg.connect(servers.url()) as conn:
        bare = conn.execute(
            "SELECT metric_time, account__created_at, revenue FROM metrics "
            "WHERE metric_time >= '2026-03-01' ORDER BY 1, 2 LIMIT 50"
        )
        names = [d.name for d in bare.description or ()]
        bare_rows = bare.fetchall()
        day_rows = conn.execute(
            "SELECT metric_time__day, account__created_at__day, revenue FROM metrics "
            "WHERE metric_time__day >= '2026-03-01' ORDER BY 1, 2 LIMIT 50"
        ).fetchall()
    assert names == ["metric_time", "account__created_at", "revenue"]
    assert bare_rows == day_rows and len(bare_rows) == 50
