from __future__ import annotations

from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"

    def ready(self) -> None:
        # Connects the post_save hook that stores each published release's lineage.
        from lineage import services  # noqa: F401
