"""Sub-daily truncation on MariaDB (issue 17): MySQL has no DATE_TRUNC, so Tally writes hour,
minute, second and millisecond truncations with MySQL functions MariaDB also has; each must
give the start of its period, as DuckDB's DATE_TRUNC does."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlglot import exp

from semantic.compiler.dialects import render
from semantic.compiler.time import instant_floor, trunc
from tests.conftest import require_service

AT = dt.datetime(2026, 3, 1, 5, 43, 21, 987654)


@pytest.mark.parametrize("grain", ["hour", "minute", "second", "millisecond"])
def test_mariadb_truncates_to_the_start_of_the_period(grain: str) -> None:
    """The rendered truncation of 05:43:21.987654 is 05:00, 05:43, 05:43:21 and
    05:43:21.987 on MariaDB, as Python's floor (and DuckDB) give."""
    require_service("mariadb")
    import pymysql

    value = exp.cast(
        exp.Literal.string(AT.isoformat(sep=" ")),
        exp.DataType.build("DATETIME(6)", dialect="mysql"),
    )
    sql = "SELECT " + render(trunc(value, grain), "mysql", pretty=False)
    conn = pymysql.connect(host="127.0.0.1", user="root", password="")
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            (got,) = cursor.fetchone()
    finally:
        conn.close()
    assert got == instant_floor(AT, grain), sql
