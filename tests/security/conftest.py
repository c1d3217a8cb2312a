"""Security tests reuse the registry's fixtures (the fixtures/ registry on a demo warehouse)."""

from __future__ import annotations

from tests.registry.conftest import (  # noqa: F401  (pytest finds fixtures by name)
    analyst,
    fixtures_registry,
    warehouse_path,
)
