"""`tally list dimension-values` (as `mf list dimension-values`): the arguments and the
handler, kept apart from the `list` command so that its other subcommands live elsewhere.

The `list` command adds a subparser, calls :func:`add_arguments` on it and, for that
subcommand, :func:`handle` with the command and its options.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from semantic.compiler.dimension_values import DEFAULT_LIMIT, MAX_LIMIT
from semantic.management.commands._query_args import (
    as_user_from_options,
    principal_from_options,
)
from tally.errors import UserError
from tally.spreadsheet import csv_safe_row

NAME = "dimension-values"
HELP = "distinct values of a dimension, from the given metrics' rows (mf list dimension-values)"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def add_arguments(parser: CommandParser) -> None:
    """The subcommand's flags: mf's ``--metrics``/``--dimension``, then search and limit."""
    parser.add_argument(
        "--metrics", type=_csv, default=(), help="metric names, comma-separated (optional)"
    )
    parser.add_argument("--dimension", required=True, help="e.g. account__plan")
    parser.add_argument("--search", default=None, help="keep values containing this text")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"at most this many (max {MAX_LIMIT:,})"
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        help="filter, e.g. \"{{ Dimension('account__region') }} = 'EU'\"",
    )
    parser.add_argument("--release", default=None, help="pin a release (default: latest)")
    parser.add_argument("--format", choices=["text", "csv", "json"], default="text")
    parser.add_argument(
        "--principal-attr", action="append", default=[], metavar="KEY=VALUE",
        help="list as a principal with this attribute (row policies apply); repeatable",
    )  # fmt: skip
    parser.add_argument("--no-pii", action="store_true", help="list as a principal without PII")
    parser.add_argument("--as-user", default=None, help="list for this user's roles and attributes")


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def handle(command: BaseCommand, opts: dict[str, Any]) -> None:
    """Runs the values query and writes them: one per line, CSV or JSON."""
    from semantic.dimension_values import dimension_values

    if not 0 <= opts["limit"] <= MAX_LIMIT:
        raise UserError(
            f"--limit {opts['limit']} is out of range",
            code="bad_limit",
            location="limit",
            hint=f"use 0 to {MAX_LIMIT:,}",
        )
    principal, user = as_user_from_options(opts)
    answer = dimension_values(
        principal=principal or principal_from_options(opts),
        dimension=opts["dimension"],
        metrics=opts["metrics"],
        search=opts["search"],
        limit=opts["limit"],
        release=opts["release"],
        where=tuple(opts["where"]),
        acting_user=user,
    )
    values = [_plain(v) for v in answer.values]
    if opts["format"] == "json":
        body = {
            "dimension": answer.dimension,
            "values": values,
            "truncated": answer.truncated,
            "release": answer.release,
            "versions": answer.versions,
        }
        command.stdout.write(json.dumps(body, indent=2, default=str))
    elif opts["format"] == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(csv_safe_row([answer.dimension]))
        writer.writerows(csv_safe_row([v]) for v in values)
    else:
        for value in values:
            command.stdout.write("" if value is None else str(value))
        if answer.truncated:
            # On stderr: the values on stdout stay one per line for scripts.
            command.stderr.write(f"(first {len(values)} values; raise --limit for more)")
