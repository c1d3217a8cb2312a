"""Tally: metric governance registry and semantic layer."""

from __future__ import annotations

from tally.celery import app as celery_app

__all__ = ["celery_app"]
