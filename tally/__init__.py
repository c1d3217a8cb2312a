"""Tally: metric governance registry and semantic layer."""

from __future__ import annotations

from typing import Any

__all__ = ["celery_app"]


def __getattr__(name: str) -> Any:
    # The Celery app is loaded on first use, not with the package: a CLI command that never
    # sends a task (`tally compile`) should not pay for importing Celery. `celery -A tally`
    # finds the app in tally.celery; modules that send tasks import it (registry.tasks…).
    if name == "celery_app":
        from tally.celery import app

        return app
    raise AttributeError(f"module 'tally' has no attribute {name!r}")
