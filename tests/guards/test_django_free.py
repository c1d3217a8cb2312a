"""Django-free layers stay Django-free (STYLE rule 4): imported in a process without settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

DJANGO_FREE = [
    "registry.roles",
    "tally.lru",
    "semantic.warehouse.config",
    "semantic.compiler.grains",
    "semantic.anomaly",
    "semantic.demo",
    "semantic.warehouse.execute",
    "semantic.warehouse.results",
    "semantic.warehouse.sessions",
    "semantic.warehouse.values",
    "semantic.warehouse.writer",
    "semantic.warehouse.spine_build",
    "semantic.warehouse.loader",
    "semantic.warehouse.load_common",
    "semantic.warehouse.load_mysql",
    "semantic.warehouse.load_postgres",
    "semantic.warehouse.time_spine",
    "lineage.graph",
    "lineage.graph.ids",
    "lineage.graph.elements",
    "lineage.graph.metrics",
    "lineage.graph.build",
    "lineage.graph.delta",
    "lineage.graph.attach",
    "lineage.graph.queries",
    "lineage.graph.export",
    "lineage.sql_lineage",
    "lineage.sql_lineage.edges",
    "lineage.sql_lineage.walk",
    "lineage.sql_lineage.statements",
    "lineage.sql_lineage.projects",
    "semantic.sqlapi.wire",
    "semantic.sqlapi.table",
    "semantic.sqlapi.translate",
    "semantic.sqlapi.catalog",
    "tally.client",
]
# Every module of the compiler and of the definitions layer, found on disk: a new stage is
# covered without being listed.
DJANGO_FREE += sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for folder in (ROOT / "semantic" / "compiler", ROOT / "registry" / "definitions")
    for path in folder.rglob("*.py")
)


@pytest.mark.parametrize("module", DJANGO_FREE)
def test_module_imports_without_django(module: str) -> None:
    """Importing the module neither needs settings nor pulls django.db into sys.modules."""
    script = (
        "import os, sys; os.environ.pop('DJANGO_SETTINGS_MODULE', None);"
        f"import {module};"
        "bad = sorted(m for m in sys.modules if m == 'django.db' or m.startswith('django.db.'));"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imports {result.stdout.strip()}"
