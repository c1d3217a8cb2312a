from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from semantic.demo import DEFAULT_END_DATE, build_demo_warehouse


class Command(BaseCommand):
    help = (
        "Build the deterministic B2B SaaS demo warehouse (accounts, users, events, "
        "subscriptions, invoices, time_spine) as a DuckDB file. Same seed, same rows in the same order."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--events", type=int, default=200_000, help="event rows (default 200000)"
        )
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument(
            "--out",
            default=None,
            help="DuckDB file to write (default: the WAREHOUSE_URL file)",
        )
        parser.add_argument(
            "--end-date",
            type=dt.date.fromisoformat,
            default=DEFAULT_END_DATE,
            help=f"last day of history, YYYY-MM-DD (default {DEFAULT_END_DATE})",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        out = opts["out"]
        if out is None:
            if settings.WAREHOUSE.engine != "duckdb":
                raise CommandError(
                    "WAREHOUSE_URL is not a DuckDB file; pass --out PATH to build the demo "
                    "warehouse there"
                )
            out = settings.WAREHOUSE.path
        try:
            summary = build_demo_warehouse(
                out, events=opts["events"], seed=opts["seed"], end_date=opts["end_date"]
            )
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"built {summary.path} in {summary.seconds:.1f}s")
        for table, rows in dict(summary.tables).items():
            self.stdout.write(f"  {table:<14} {rows:>12,} rows")
