from __future__ import annotations

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"

    def ready(self) -> None:
        # Connects the receivers that enqueue proposal checks and e-mails when the services
        # ask for them (registry/signals.py): the services cannot import the jobs floor.
        from registry import tasks  # noqa: F401
