"""The SQL API answers a repeated SELECT from the result cache (issue 23, Build 4) without an
execution slot, and never across principals whose policies differ: a tenant-bound token is
not served the unrestricted user's answer, nor the other way round."""

from __future__ import annotations

import urllib.request

import psycopg

from tests.sqlapi.conftest import Servers, free_port, start_sql_server, stop

QUERY = "SELECT metric_time__year, account__plan, MEASURE(revenue) FROM metrics GROUP BY 1, 2"


def _counts(port: int) -> tuple[float, float]:
    """(result cache hits, executions that ever ran at once) from the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        lines = response.read().decode().splitlines()
    hits = sum(
        float(line.split()[-1])
        for line in lines
        if line.startswith('tally_result_cache_total{result="hit"}')
    )
    peak = next(float(x.split()[1]) for x in lines if x.startswith("tally_sqlapi_executions_peak "))
    return hits, peak


def test_a_repeated_select_is_served_from_the_cache_per_policy_binding(
    servers: Servers,
) -> None:
    metrics_port = free_port()
    # The production settings (the suite's turn the result cache off), cache on.
    env = {**servers.env, "DJANGO_SETTINGS_MODULE": "tally.settings", "TALLY_DEMO": "1",
           "TALLY_RESULT_CACHE_TTL_S": "300", "TALLY_SQL_METRICS_PORT": str(metrics_port)}  # fmt: skip
    process, port = start_sql_server(env)
    try:
        unrestricted = servers.url(user="bi", password=servers.token, port=port)
        tenant = servers.url(user="bi-t13", password=servers.tenant_token, port=port)
        with psycopg.connect(unrestricted) as conn:
            everyone = conn.execute(QUERY).fetchall()
            assert everyone
            hits, _ = _counts(metrics_port)
            assert conn.execute(QUERY).fetchall() == everyone
        assert _counts(metrics_port)[0] == hits + 1
        with psycopg.connect(tenant) as conn:
            own = conn.execute(QUERY).fetchall()
            assert _counts(metrics_port)[0] == hits + 1, "another binding must miss"
            assert own != everyone, "t13's row policy must show in its answer"
            assert conn.execute(QUERY).fetchall() == own
        assert _counts(metrics_port)[0] == hits + 2
        # The offset is applied to the cached rows as it is to streamed ones.
        paging = QUERY + " ORDER BY 1, 2 LIMIT 2 OFFSET 1"
        with psycopg.connect(unrestricted) as conn:
            paged = conn.execute(paging).fetchall()
            assert len(paged) == 2 and paged[0] in everyone and paged[1] in everyone
            assert conn.execute(paging).fetchall() == paged
        assert _counts(metrics_port)[0] == hits + 3
    finally:
        stop(process)
