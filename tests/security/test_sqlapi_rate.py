"""Issue 18, principle 7: the SQL API's metric queries count against the user's query rate
(TALLY_RATE_QUERY), under the same cache key as the HTTP API's, so switching from HTTP to
SQL buys no more; past it a query gets 53400 with a hint saying when to retry."""

from __future__ import annotations

import psycopg
import pytest
import redis
import requests

from tests.security.sqlapi_support import registry, sql_server, url, web_server

METRIC_QUERY = "SELECT revenue FROM metrics"
REDIS_DB = 13


@pytest.fixture
def shared_cache(redis_url: str) -> str:
    location = f"redis://127.0.0.1:6379/{REDIS_DB}"
    client = redis.Redis.from_url(location)
    for key in client.scan_iter("*tally-throttle:*"):
        client.delete(key)
    return location


def test_sql_metric_queries_share_the_http_query_budget(shared_cache: str) -> None:
    settings = {"TALLY_RATE_QUERY": "3/min", "TALLY_CACHE_URL": shared_cache}
    token = registry().token
    with web_server(**settings) as http_port, sql_server(**settings) as sql_port:
        for _ in range(2):
            response = requests.post(
                f"http://127.0.0.1:{http_port}/api/v1/query",
                json={"metrics": ["revenue"]},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            assert response.status_code == 200, response.text
        with psycopg.connect(url(sql_port, password=token)) as conn:
            conn.autocommit = True
            assert conn.execute(METRIC_QUERY).fetchall()  # the third query of the minute
            with pytest.raises(psycopg.Error) as info:
                conn.execute(METRIC_QUERY)
            assert info.value.sqlstate == "53400"
            hint = info.value.diag.message_hint or ""
            assert "wait" in hint and "TALLY_RATE_QUERY" in hint
            # Catalog queries (BI tools' metadata) do not count; the session goes on.
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # The budget is the user's: the HTTP API is refused too.
        response = requests.post(
            f"http://127.0.0.1:{http_port}/api/v1/query",
            json={"metrics": ["revenue"]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert response.status_code == 429


def test_a_password_session_is_limited_per_user(shared_cache: str) -> None:
    settings = {"TALLY_RATE_QUERY": "2/min", "TALLY_CACHE_URL": shared_cache}
    with sql_server(**settings) as port:
        # Two sessions of one user share one budget.
        with (
            psycopg.connect(url(port, user="dora")) as first,
            psycopg.connect(url(port, user="dora")) as second,
        ):
            assert first.execute(METRIC_QUERY).fetchall()
            assert second.execute(METRIC_QUERY).fetchall()
            with pytest.raises(psycopg.Error) as info:
                first.execute(METRIC_QUERY)
            assert info.value.sqlstate == "53400"
        # Another user has a budget of their own.
        with psycopg.connect(url(port, user="emil")) as other:
            assert other.execute(METRIC_QUERY).fetchall()
