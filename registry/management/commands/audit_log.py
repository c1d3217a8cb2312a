from __future__ import annotations

import csv
import datetime as dt
import json
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from registry.access_selectors import audit_event_list
from registry.services.access import parse_duration
from tally.errors import UserError
from tally.management.base import TallyCommand
from tally.spreadsheet import csv_safe

FIELDS = ["id", "at", "actor", "principal", "token", "ip", "action", "object_kind",
          "object_name", "release", "sql_hash", "row_count", "payload"]  # fmt: skip


def parse_since(text: str, *, field: str) -> dt.datetime:
    """An ISO date/time, or a duration back from now (``7d``, ``12h``)."""
    if text[-1:] in "mhdw" and text[:-1].isdigit():
        return timezone.now() - parse_duration(text, field=field)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{text!r} is not a time",
            code="invalid_time",
            location=field,
            hint="use 2026-11-01, 2026-11-01T12:00:00+00:00 or a duration such as 7d",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class Command(TallyCommand):
    help = "Export the audit log, newest first: --since 7d --format csv > audit.csv."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", default=None, help="ISO time or 7d/12h back from now")
        parser.add_argument("--until", default=None)
        parser.add_argument("--action", default=None, help="query.run, or a family: proposal.")
        parser.add_argument("--actor", default=None, help="username")
        parser.add_argument("--token", default=None, help="token prefix")
        parser.add_argument("--limit", type=int, default=None)
        parser.add_argument("--format", choices=["table", "json", "csv"], default="table")

    def handle(self, *args: Any, **opts: Any) -> None:
        events = audit_event_list(
            since=parse_since(opts["since"], field="since") if opts["since"] else None,
            until=parse_since(opts["until"], field="until") if opts["until"] else None,
            action=opts["action"],
            actor=opts["actor"],
            token=opts["token"],
        )
        if opts["limit"]:
            events = events[: opts["limit"]]
        rows = [_row(e) for e in events]
        if opts["format"] == "json":
            self.stdout.write(json.dumps(rows, indent=2))
        elif opts["format"] == "csv":
            writer = csv.DictWriter(self.stdout, fieldnames=FIELDS, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                cells = {**row, "payload": json.dumps(row["payload"], sort_keys=True)}
                writer.writerow({key: csv_safe(value) for key, value in cells.items()})
        else:
            for row in rows:
                who = row["principal"] or row["actor"] or "-"
                self.stdout.write(
                    f"{row['at']}  {row['action']:<22} {who:<30} "
                    f"{row['object_kind']}:{row['object_name']}"
                    + (f"  rows={row['row_count']}" if row["row_count"] is not None else "")
                )


def _row(event: Any) -> dict[str, Any]:
    return {
        "id": event.pk,
        "at": event.at.isoformat(),
        "actor": event.actor.username if event.actor_id else None,
        "principal": event.principal,
        "token": event.token.prefix if event.token_id else None,
        "ip": event.ip,
        "action": event.action,
        "object_kind": event.object_kind,
        "object_name": event.object_name,
        "release": event.release.name if event.release_id else None,
        "sql_hash": event.sql_hash,
        "row_count": event.row_count,
        "payload": event.payload,
    }
