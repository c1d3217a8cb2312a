from __future__ import annotations

from django.apps import AppConfig


class SemanticConfig(AppConfig):
    name = "semantic"

    def ready(self) -> None:
        # Connects the post_save hook that refreshes published views on a new release (it
        # enqueues a job, so it lives with the tasks; this app config is the wiring above
        # every floor, see tests/guards/test_import_layers.py).
        from semantic import tasks  # noqa: F401
