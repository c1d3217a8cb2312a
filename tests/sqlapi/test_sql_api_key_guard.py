"""The SQL API runs the fan-out guard too (issue 16): a SELECT grouped by a dimension joined
through a key the warehouse data repeats is an error naming the fan-out, not multiplied sums
(the SQL API prepares its statements with compiled_prepare, as every executor does)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import psycopg
import pytest

from tests.sqlapi.conftest import Servers, start_sql_server, stop

QUERY = "SELECT account__plan, MEASURE(events_tracked) FROM metrics GROUP BY 1"


def test_a_select_joined_through_a_repeated_key_is_refused(
    servers: Servers, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh.duckdb"
    shutil.copyfile(servers.warehouse, warehouse)
    con = duckdb.connect(str(warehouse))
    # The demo's PRIMARY KEY constraint (a warehouse need not have one) goes first.
    con.execute(
        "CREATE TABLE loose AS SELECT * FROM accounts; DROP TABLE accounts; "
        "ALTER TABLE loose RENAME TO accounts; "
        "INSERT INTO accounts SELECT * FROM accounts WHERE id = (SELECT MAX(id) FROM accounts)"
    )
    con.close()
    process, port = start_sql_server({**servers.env, "WAREHOUSE_URL": f"duckdb:///{warehouse}"})
    try:
        with (
            psycopg.connect(servers.url(port=port)) as conn,
            pytest.raises(psycopg.errors.InvalidParameterValue) as refused,
        ):
            conn.execute(QUERY).fetchall()
        message = str(refused.value)
        assert "fan_out" in message or "fan-out" in message
        assert "'accounts' (table main.accounts)" in message
    finally:
        stop(process)
