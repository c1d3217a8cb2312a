"""Never a silent fan-out: for every additive measure of the fixtures and every item it can
be grouped by, the groups add up to the measure's total on its own table (issue #16).

Exhaustive over the fixture manifest on the demo warehouse (DuckDB): each sum/count measure
gets a plain simple metric; grouping it by any reachable dimension or entity (a NULL group
where a LEFT JOIN finds nothing) must neither multiply nor drop rows. The SCD model
(plan_history) is included: its validity windows must pick one row per event.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

import duckdb
import pytest

from semantic.compiler.api import compile_query, queryable_items
from semantic.compiler.definition_checks import load_project
from semantic.compiler.grains import GRAINS
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery
from tests.conftest import ROOT
from tests.semantic.conftest import fixtures_manifest

ADDITIVE = ("sum", "count", "sum_boolean")


@cache
def probe_manifest() -> Manifest:
    """The fixtures plus one unfiltered simple metric per additive measure."""
    base = fixtures_manifest()
    project = load_project(ROOT / "fixtures")
    rows = [(kind, name, obj.spec, "1.0") for (kind, name), obj in project.objects.items()]
    for measure in base.measures.values():
        if measure.agg in ADDITIVE and not measure.non_additive:
            name = f"probe_{measure.name}"
            spec = {"name": name, "type": "simple", "type_params": {"measure": measure.name}}
            rows.append(("metric", name, spec, "1.0"))
    return build_manifest(rows, release="probe")


def probe_metrics() -> list[str]:
    return sorted(m for m in probe_manifest().metrics if m.startswith("probe_"))


def group_bys(metric: str) -> list[str]:
    """Every item the metric can be grouped by; one grain per time dimension (coarser grains
    only merge groups)."""
    out = []
    for item in queryable_items(probe_manifest(), metric):
        last = item.rsplit("__", 1)[-1]
        if last not in GRAINS or last == "month":
            out.append(item)
    return out


def _number(value: object) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def test_every_additive_fixture_measure_is_probed_through_the_scd_model() -> None:
    """The probe covers the SCD model's consumers (event rows by account__plan_at_time);
    count_distinct is not additive and is left out."""
    assert "probe_events_tracked" not in probe_metrics()
    assert "account__plan_at_time" in group_bys("probe_event_rows")
    assert "account__plan_at_time" in group_bys("probe_new_accounts")
    assert "user__account__plan_at_time" in group_bys("probe_event_rows")


@pytest.mark.parametrize("metric", probe_metrics())
def test_groups_add_up_to_the_measures_total(duck: duckdb.DuckDBPyConnection, metric: str) -> None:
    """Grouping an additive measure by any reachable item neither multiplies nor drops rows
    (a NULL group holds the rows a LEFT JOIN finds nothing for)."""
    manifest = probe_manifest()
    total_sql = compile_query(MetricQuery(metrics=(metric,)), manifest).sql
    total = _number(duck.sql(total_sql).fetchall()[0][0])
    wrong = []
    for item in group_bys(metric):
        sql = compile_query(MetricQuery(metrics=(metric,), group_by=(item,)), manifest).sql
        grouped = sum(_number(row[-1]) for row in duck.sql(sql).fetchall())
        if grouped != total:
            wrong.append((item, grouped))
    assert not wrong, f"{metric}: total {total}, by item: {wrong}"
