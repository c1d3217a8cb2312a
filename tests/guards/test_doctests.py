"""The `Example:` doctests in public docstrings run and pass (they are documentation)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tally.env",
    "registry.definitions.issues",
    "registry.definitions.project",
    "registry.definitions.rules",
    "registry.definitions.contracts",
    "registry.definitions.changes",
    "registry.definitions.export",
    "registry.definitions.merge",
    "registry.roles",
    "semantic.warehouse.config",
    "semantic.compiler.dialects",
    "semantic.compiler.where",
    "semantic.compiler.division",
    "semantic.compiler.full_join_union",
    "semantic.compiler.resolve",
    "semantic.compiler.plan",
    "semantic.compiler.filters",
    "semantic.compiler.sql_passes",
    "semantic.compiler.drilldown",
    "semantic.compiler.policies",
    "semantic.compiler.policy_rules",
    "semantic.compiler.policy_reach",
    "semantic.compiler.explain",
    "semantic.compiler.dimension_base",
    "semantic.demo.build",
    "semantic.warehouse.execute",
    "semantic.warehouse.results",
    "semantic.warehouse.sessions",
    "semantic.warehouse.values",
    "semantic.warehouse.loader",
    "semantic.warehouse.load_common",
    "semantic.warehouse.time_spine",
    "lineage.graph.ids",
    "lineage.graph.metrics",
    "lineage.graph.build",
    "lineage.graph.delta",
    "lineage.graph.queries",
    "lineage.graph.export",
    "lineage.sql_lineage.statements",
    "lineage.sql_lineage.script",
    "lineage.sql_lineage.influence",
    "lineage.real_projects",
    "lineage.sql_cases",
    "semantic.jobs.periods",
    "semantic.anomaly",
    "semantic.compiler.grains",
    "semantic.compiler.kinds.conversion_base",
    "tally.lru",
    "semantic.sqlapi.wire",
    "semantic.sqlapi.table",
    "semantic.sqlapi.translate",
    "semantic.sqlapi.catalog",
    "semantic.jobs.schedules",
    "bench.runner",
    "bench.synthetic",
    "bench.sql_lineage",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str) -> None:
    """Every docstring example of the module runs as written."""
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no examples"
