from __future__ import annotations

from django.apps import AppConfig


class SemanticConfig(AppConfig):
    name = "semantic"

    def ready(self) -> None:
        # Connects the post_save hook that refreshes published views on a new release.
        from semantic import published_views  # noqa: F401
