from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.management.base import CommandParser

from semantic.audited import metric_query_compile, metric_query_run
from semantic.management.commands._query_args import (
    add_query_arguments,
    as_user_from_options,
    principal_from_options,
    query_from_options,
)
from semantic.services import saved_query_apply
from tally.errors import UserError
from tally.management.base import TallyCommand
from tally.spreadsheet import csv_safe_row

MSG_BAD_DECIMALS = "--decimals {value}: must be 0 or more"
MSG_CSV_AND_FORMAT = "--csv FILE writes CSV to the file; --format {format} has nothing to print"
MSG_CSV_UNWRITABLE = "--csv {path}: cannot write there ({reason})"
MSG_TRUNCATED = "(the answer has more rows than TALLY_QUERY_ROW_CAP; the first {rows} are shown)"


def _plain(value: Any, decimals: int | None) -> Any:
    # JSON and text cells: decimals as exact strings (or fixed point under --decimals).
    if isinstance(value, float | decimal.Decimal) and decimals is not None:
        return f"{value:.{decimals}f}" if value == value else str(value)  # NaN stays NaN
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _csv_cell(value: Any, decimals: int | None) -> Any:
    # csv_safe sees the value before it becomes text, so a negative number stays a number
    # (csv_safe would quote the string "-5.2" as a would-be formula).
    if isinstance(value, str):
        return value
    return _plain(value, decimals)


class Command(TallyCommand):
    help = "Run a metric query on the warehouse and print the rows (table, csv or json)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_query_arguments(parser)
        parser.add_argument(
            "--format", choices=["table", "csv", "json"], default=None, help="default: table"
        )
        parser.add_argument(
            "--csv", default=None, metavar="FILE", help="write the rows as CSV to FILE (as mf)"
        )
        parser.add_argument(
            "--decimals",
            type=int,
            default=None,
            help="show non-integer numbers in fixed point with N digits (table and CSV)",
        )
        parser.add_argument(
            "--explain", action="store_true", help="print the SQL without running it (as mf)"
        )
        parser.add_argument("--show-sql", action="store_true", help="also print the SQL, on stderr")
        parser.add_argument(
            "--quiet", action="store_true", help="no row count or file message, only the data"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        decimals = opts["decimals"]
        if decimals is not None and decimals < 0:
            raise UserError(
                MSG_BAD_DECIMALS.format(value=decimals),
                code="bad_argument",
                location="decimals",
                hint="e.g. --decimals 2",
            )
        if opts["csv"] and opts["format"] not in (None, "csv"):
            raise UserError(
                MSG_CSV_AND_FORMAT.format(format=opts["format"]),
                code="bad_argument",
                location="format",
                hint="drop --format, or drop --csv to print to stdout",
            )
        query = query_from_options(opts, dialect=settings.WAREHOUSE.dialect)
        if opts["saved_query"]:
            query = saved_query_apply(
                name=opts["saved_query"], query=query, release_ref=opts["release"]
            )
        principal, user = as_user_from_options(opts)
        principal = principal or principal_from_options(opts)
        if opts["explain"]:
            compiled = metric_query_compile(
                query=query, release_ref=opts["release"], principal=principal, acting_user=user
            )
            self.stdout.write(compiled.sql)
            self._timings(opts, compiled.timings)
            return
        answer = metric_query_run(
            query=query, release_ref=opts["release"], principal=principal, acting_user=user
        )
        # SQL and timings go to stderr: stdout carries only the data, whatever its format.
        if opts["show_sql"]:
            self.stderr.write(answer.compiled.sql)
        self._timings(opts, answer.compiled.timings)
        columns = list(answer.columns)
        if opts["csv"]:
            self._csv_file(Path(opts["csv"]), columns, answer.rows, decimals)
            if not opts["quiet"]:
                self.stderr.write(f"Wrote {len(answer.rows)} rows to {opts['csv']}")
        elif opts["format"] == "json":
            body = {
                "columns": columns,
                "rows": [[_plain(v, None) for v in row] for row in answer.rows],
                "release": answer.compiled.release,
                "versions": answer.compiled.versions,
                "truncated": answer.truncated,
            }
            self.stdout.write(json.dumps(body, indent=2, default=str))
        elif opts["format"] == "csv":
            self._csv(sys.stdout, columns, answer.rows, decimals)
        else:
            rows = [[_plain(v, decimals) for v in row] for row in answer.rows]
            self._table(columns, rows, quiet=opts["quiet"])
        if answer.truncated:
            self.stderr.write(MSG_TRUNCATED.format(rows=len(answer.rows)))

    def _timings(self, opts: dict[str, Any], timings: dict[str, float]) -> None:
        if opts["timings"]:
            for stage, seconds in timings.items():
                self.stderr.write(f"-- {stage}: {seconds * 1000:.3f} ms")

    @staticmethod
    def _csv(out: IO[str], columns: list[str], rows: Any, decimals: int | None) -> None:
        writer = csv.writer(out)
        writer.writerow(csv_safe_row(columns))
        writer.writerows([_csv_cell(v, decimals) for v in csv_safe_row(row)] for row in rows)

    def _csv_file(self, path: Path, columns: list[str], rows: Any, decimals: int | None) -> None:
        # Written next to the target and renamed over it: a failure leaves no half a file.
        directory = path.parent if str(path.parent) else Path(".")
        try:
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tally-", suffix=".csv")
        except OSError as exc:
            raise UserError(
                MSG_CSV_UNWRITABLE.format(path=path, reason=exc.strerror or exc),
                code="bad_argument",
                location="csv",
                hint="name a file in an existing, writable folder",
            ) from None
        try:
            with os.fdopen(handle, "w", newline="") as out:
                self._csv(out, columns, rows, decimals)
            os.replace(temporary, path)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise UserError(
                MSG_CSV_UNWRITABLE.format(path=path, reason=exc.strerror or exc),
                code="bad_argument",
                location="csv",
                hint="name a file in an existing, writable folder",
            ) from None

    def _table(self, columns: list[str], rows: list[list[Any]], *, quiet: bool) -> None:
        text = [[("" if v is None else str(v)) for v in row] for row in rows]
        widths = [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(columns)]
        self.stdout.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        self.stdout.write("  ".join("-" * w for w in widths))
        for row in text:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        if not quiet:
            self.stdout.write(f"({len(rows)} rows)")
