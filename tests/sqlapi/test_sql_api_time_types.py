"""The SQL API names a time dimension over text too (issue 16): the warehouse's refused
DATE_TRUNC reaches a SQL client as the dimension, its model and its column type, not a
generic warehouse error (the SQL API streams through stream_compiled, which names it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import psycopg
import pytest

from semantic.warehouse.time_types import MSG_NOT_TIME
from tests.sqlapi.conftest import Servers, start_sql_server, stop

QUERY = "SELECT user__signed_up_at__month, MEASURE(events_tracked) FROM metrics GROUP BY 1"


def test_a_select_truncating_a_text_column_names_the_dimension(
    servers: Servers, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh.duckdb"
    shutil.copyfile(servers.warehouse, warehouse)
    con = duckdb.connect(str(warehouse))
    con.execute("ALTER TABLE users ALTER signed_up_at TYPE VARCHAR")
    con.close()
    process, port = start_sql_server({**servers.env, "WAREHOUSE_URL": f"duckdb:///{warehouse}"})
    try:
        with (
            psycopg.connect(servers.url(port=port)) as conn,
            pytest.raises(psycopg.Error) as refused,
        ):
            conn.execute(QUERY).fetchall()
        assert refused.value.sqlstate == "58000"
        assert refused.value.diag.message_primary == MSG_NOT_TIME.format(
            names="'signed_up_at'",
            what="'signed_up_at' of semantic model 'users' (expr: signed_up_at) is a VARCHAR "
            "column",
        )
    finally:
        stop(process)
