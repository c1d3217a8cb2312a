from __future__ import annotations

from django.apps import AppConfig


class SemanticConfig(AppConfig):
    name = "semantic"

    def ready(self) -> None:
        # Connects the receivers that queue compute runs and refresh published views on a
        # new release (semantic/receivers.py imports the tasks when one is sent); this app
        # config is the wiring above every floor, see tests/guards/test_import_layers.py.
        from semantic import receivers  # noqa: F401
