from __future__ import annotations

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"

    def ready(self) -> None:
        # Connects the receivers that enqueue proposal checks and e-mails when the services
        # ask for them (registry/signals.py): the services cannot import the jobs floor.
        from registry import receivers  # noqa: F401

        # Renderers (tally.errors) show the warehouse's own error text to administrators
        # only; access control sits above their floor, so the test is installed here.
        from registry.permissions import request_is_admin
        from tally.errors import request_admin_check_install

        request_admin_check_install(request_is_admin)
