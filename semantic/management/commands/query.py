from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from semantic.audited import metric_query_run
from semantic.management.commands._query_args import (
    add_query_arguments,
    as_user_from_options,
    principal_from_options,
    query_from_options,
)
from semantic.services import saved_query_apply
from tally.management.base import TallyCommand
from tally.spreadsheet import csv_safe_row


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


class Command(TallyCommand):
    help = "Run a metric query on the warehouse and print the rows (table, csv or json)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_query_arguments(parser)
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
        parser.add_argument("--show-sql", action="store_true", help="print the SQL first")

    def handle(self, *args: Any, **opts: Any) -> None:
        query = query_from_options(opts, dialect=settings.WAREHOUSE.dialect)
        if opts["saved_query"]:
            query = saved_query_apply(
                name=opts["saved_query"], query=query, release_ref=opts["release"]
            )
        principal, user = as_user_from_options(opts)
        answer = metric_query_run(
            query=query,
            release_ref=opts["release"],
            principal=principal or principal_from_options(opts),
            acting_user=user,
        )
        if opts["show_sql"]:
            self.stdout.write(answer.compiled.sql)
        columns = list(answer.columns)
        rows = [[_plain(v) for v in row] for row in answer.rows]
        if opts["format"] == "json":
            body = {
                "columns": columns,
                "rows": rows,
                "release": answer.compiled.release,
                "versions": answer.compiled.versions,
                "truncated": answer.truncated,
            }
            self.stdout.write(json.dumps(body, indent=2, default=str))
        elif opts["format"] == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(csv_safe_row(columns))
            writer.writerows(csv_safe_row(row) for row in rows)
        else:
            self._table(columns, rows)
        if opts["explain"]:
            for stage, seconds in answer.compiled.timings.items():
                self.stdout.write(f"-- {stage}: {seconds * 1000:.3f} ms")

    def _table(self, columns: list[str], rows: list[list[Any]]) -> None:
        text = [[("" if v is None else str(v)) for v in row] for row in rows]
        widths = [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(columns)]
        self.stdout.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        self.stdout.write("  ".join("-" * w for w in widths))
        for row in text:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        self.stdout.write(f"({len(rows)} rows)")
