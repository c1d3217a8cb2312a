from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from semantic.published_views import views_publish
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = (
        "Create or replace one warehouse view per saved query of a release (compiled SQL, "
        "a comment naming the release and metric versions). Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--schema", default="tally", help="warehouse schema of the views")
        parser.add_argument("--release", default=None, help="pin a release (default: latest)")

    def handle(self, *args: Any, **opts: Any) -> None:
        views = views_publish(schema=opts["schema"], release_ref=opts["release"])
        for view in views:
            self.stdout.write(f"{view.name}  ({view.comment})")
        self.stdout.write(f"{len(views)} view(s) published in schema {opts['schema']}.")
