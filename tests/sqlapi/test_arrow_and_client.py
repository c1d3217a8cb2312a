"""POST /api/v1/query?format=arrow and tally.client against a real runserver subprocess."""

from __future__ import annotations

import polars
import pyarrow as pa
import pytest
import requests

from tally.client import Tally, TallyApiError, TruncatedResult
from tests.sqlapi.conftest import Servers, start_web

QUERY = {
    "metrics": ["revenue", "active_accounts"],
    "group_by": ["metric_time__month", "account__plan"],
    "where": ["{{ Dimension('account__region') }} = 'EMEA'"],
    "order_by": ["metric_time__month", "account__plan"],
}


def post(servers: Servers, path: str, **kwargs: object) -> requests.Response:
    return requests.post(
        f"{servers.http}/api/v1/{path}",
        headers={"Authorization": f"Bearer {servers.token}"},
        timeout=60,
        **kwargs,
    )  # type: ignore[arg-type]


def test_arrow_stream_equals_json_rows(servers: Servers) -> None:
    """The IPC stream reads back to the JSON answer's columns and rows; the last batch
    says the result is complete."""
    as_json = post(servers, "query", json=QUERY).json()
    response = post(servers, "query?format=arrow", json=QUERY)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    reader = pa.ipc.open_stream(response.content)
    batches, last = [], None
    while True:
        try:
            batch, custom = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            break
        batches.append(batch)
        last = custom
    table = pa.Table.from_batches(batches, schema=reader.schema)
    assert table.column_names == as_json["columns"]
    assert reader.schema.metadata[b"tally.release"] == b"r1"
    assert dict(last) == {b"tally.truncated": b"false", b"tally.rows": str(table.num_rows).encode()}
    rows = [
        [v.isoformat() if hasattr(v, "isoformat") else v for v in row.values()]
        for row in table.to_pylist()
    ]
    assert rows == as_json["rows"] and len(rows) > 10


def test_arrow_errors_are_json_with_a_code(servers: Servers) -> None:
    """A bad query asked as Arrow is still a 400 JSON error, not a broken stream."""
    response = post(servers, "query?format=arrow", json={"metrics": ["revenu"]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_metric"


def test_client_returns_pandas_and_polars_frames(servers: Servers) -> None:
    """Tally(...).query gives a DataFrame; compile, metrics and dimensions answer."""
    client = Tally(servers.http, servers.token)
    frame = client.query(**QUERY)
    assert list(frame.columns) == QUERY["group_by"] + QUERY["metrics"]
    assert len(frame) > 10 and frame["revenue"].dtype == "float64"
    assert isinstance(client.query(metrics=["revenue"], frame="polars"), polars.DataFrame)
    compiled = client.compile(
        metrics=["revenue"], group_by=["metric_time__month"], dialect="snowflake"
    )
    assert compiled.sql.startswith("-- tally release r1") and compiled.dialect == "snowflake"
    assert "revenue" in {m["name"] for m in client.metrics()}
    assert "account__plan" in client.dimensions("revenue")


def test_client_sends_having(servers: Servers) -> None:
    """having= filters the aggregated rows (the unfiltered frame's rows that pass); a bad one
    raises the API's bad_having with its location."""
    client = Tally(servers.http, servers.token)
    by_plan = {"metrics": ["revenue"], "group_by": ["account__plan"]}
    every = client.query(**by_plan, frame="polars")
    kept = client.query(**by_plan, having=["revenue > 100000"], frame="polars")
    assert kept.sort("account__plan").to_dicts() == (
        every.filter(polars.col("revenue") > 100000).sort("account__plan").to_dicts()
    )
    assert 0 < len(kept) < len(every)
    assert "having_input" in client.compile(**by_plan, having=["revenue > 1"]).sql
    with pytest.raises(TallyApiError) as caught:
        client.query(**by_plan, having=["cost > 1"])
    assert caught.value.code == "bad_having" and caught.value.status == 400


def test_client_raises_the_api_error_message(servers: Servers) -> None:
    client = Tally(servers.http, servers.token)
    with pytest.raises(TallyApiError) as caught:
        client.query(metrics=["revenu"])
    assert caught.value.code == "unknown_metric" and caught.value.status == 400
    assert caught.value.hint == "did you mean 'revenue'?"
    with pytest.raises(TallyApiError) as denied:
        Tally(servers.http, "tly_000000000000_wrong").metrics()
    assert denied.value.status == 401 and denied.value.message


def test_client_sends_the_token_as_bearer_header() -> None:
    """The token goes out as Authorization: Bearer (one place builds it)."""
    client = Tally("http://127.0.0.1:9", token="tly_abc_def")
    assert client.session.headers["Authorization"] == "Bearer tly_abc_def"
    with pytest.raises(TallyApiError, match="cannot reach Tally"):
        client.metrics()


def test_row_cap_is_signalled_in_the_stream_and_raised_by_the_client(servers: Servers) -> None:
    """Above TALLY_QUERY_STREAM_ROW_CAP the last batch says truncated; the client raises
    TruncatedResult rather than returning part of the result."""
    web, port = start_web({**servers.env, "TALLY_QUERY_STREAM_ROW_CAP": "5"})
    try:
        url = f"http://127.0.0.1:{port}"
        response = requests.post(
            f"{url}/api/v1/query?format=arrow",
            json={"metrics": ["events_tracked"], "group_by": ["metric_time__day"]},
            headers={"Authorization": f"Bearer {servers.token}"},
            timeout=60,
        )
        reader = pa.ipc.open_stream(response.content)
        last = None
        rows = 0
        while True:
            try:
                batch, custom = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            rows += batch.num_rows
            last = custom
        assert rows == 5 and dict(last)[b"tally.truncated"] == b"true"
        with pytest.raises(TruncatedResult):
            Tally(url, servers.token).query(
                metrics=["events_tracked"], group_by=["metric_time__day"]
            )
    finally:
        web.terminate()
        web.wait(timeout=10)


def test_masked_pii_is_the_same_pseudonym_over_sql_json_and_arrow(servers: Servers) -> None:
    """A principal without view_pii gets pseudonyms (the salt bound on the warehouse
    session) and the same ones through every interface."""
    import psycopg

    body = {
        "metrics": ["signups"],
        "group_by": ["user__email"],
        "order_by": ["user__email"],
        "limit": 5,
    }
    headers = {"Authorization": f"Bearer {servers.tenant_token}"}
    as_json = requests.post(
        f"{servers.http}/api/v1/query", json=body, headers=headers, timeout=60
    ).json()
    arrow = requests.post(
        f"{servers.http}/api/v1/query?format=arrow", json=body, headers=headers, timeout=60
    )
    table = pa.ipc.open_stream(arrow.content).read_all()
    with psycopg.connect(servers.url(user="bi", password=servers.tenant_token)) as conn:
        over_sql = conn.execute(
            "SELECT user__email, signups FROM metrics ORDER BY user__email LIMIT 5"
        ).fetchall()
    emails = [row[0] for row in as_json["rows"]]
    assert emails and not any("@" in (e or "") for e in emails)
    assert table.column("user__email").to_pylist() == emails
    assert [row[0] for row in over_sql] == emails
