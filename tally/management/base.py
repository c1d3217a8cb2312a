"""Base for Tally's commands: a UserError is printed as `location: error[code]: …` + hint."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from tally.errors import TallyError, UserError

REGISTRY_UNAVAILABLE = (
    "error[registry_unavailable]: the registry ({database}) could not be reached or dropped "
    "the connection: {reason}"
)
REGISTRY_UNAVAILABLE_HINT = (
    "check that the DATABASE_URL server is up, then run the command again (a write the "
    "command had not committed was rolled back)"
)


class TallyCommand(BaseCommand):
    """Renders TallyError the CLI way and exits non-zero instead of printing a traceback."""

    # Django's system checks import every URLconf, view and serializer (DRF, the OpenAPI
    # generator): most of a command's start-up time. `tally check` still runs them all.
    requires_system_checks: list[str] | str = []

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except UserError as exc:
            for line in exc.cli_lines():
                self.stderr.write(line)
            details = exc.details if isinstance(exc.details, list) else []
            # DefinitionError carries every issue; the first is already the headline.
            for item in details[1:]:
                if isinstance(item, dict) and "message" in item:
                    location = (
                        f"{item['file']}:{item['line']}" if item.get("line") else item["file"]
                    )
                    self.stderr.write(f"{location}: error[{item['code']}]: {item['message']}")
                    if item.get("hint"):
                        self.stderr.write(f"  hint: {item['hint']}")
            sys.exit(1)
        except TallyError as exc:
            self.stderr.write(f"internal error[{exc.code}]: {exc.message}")
            sys.exit(3)
        except DatabaseError as exc:
            pending = unapplied_migrations()
            database = connection.settings_dict.get("NAME") or "the registry database"
            if not pending and isinstance(exc, OperationalError | InterfaceError):
                # The registry went away (server down, backend terminated, failover): what
                # the command wrote is committed or rolled back whole, so say so, not a
                # traceback (issue 23).
                reason = " ".join(str(exc).split()) or type(exc).__name__
                self.stderr.write(REGISTRY_UNAVAILABLE.format(database=database, reason=reason))
                self.stderr.write(f"  hint: {REGISTRY_UNAVAILABLE_HINT}")
                sys.exit(1)
            if not pending:
                raise
            # A missing table on a registry nobody migrated: say what to run, not a traceback.
            self.stderr.write(
                f"error[registry_not_migrated]: the registry ({database}) is not migrated: "
                f"{len(pending)} migration(s) to apply ({exc})"
            )
            self.stderr.write("  hint: run `tally migrate` (python manage.py migrate) first")
            sys.exit(1)


def unapplied_migrations() -> list[str]:
    """The migrations the registry database lacks ([] when it is up to date or unreachable)."""
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return []
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
