from __future__ import annotations

from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"

    def ready(self) -> None:
        # Connects the receivers: each published release's lineage is stored, and compute
        # runs send their OpenLineage events (the apps below never import lineage).
        from lineage import receivers  # noqa: F401
