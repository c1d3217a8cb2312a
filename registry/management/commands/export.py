from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from registry.definitions.export import export_files
from registry.selectors import governance_for_export, release_get, release_items_for_export
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = "Write a release back out as dbt Semantic Layer YAML + ODCS contracts (round-trips)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="folder to write (created if missing)")
        parser.add_argument(
            "--release", default="latest", help="release to export (default latest)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        release = release_get(opts["release"])
        teams, domains = governance_for_export()
        files = export_files(
            release_items_for_export(release=release), teams=teams, domains=domains
        )
        root: Path = opts["path"]
        for rel, text in sorted(files.items()):
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        self.stdout.write(f"Exported {release.name}: {len(files)} files to {root}")
