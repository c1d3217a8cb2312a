"""SQL projects: models ordered by dependency (a later model sees an earlier one's columns),
dbt manifests read from compiled code, parse errors and unknown dialects as user errors."""

from __future__ import annotations

import pytest

from lineage.sql_lineage import (
    ColumnEdge,
    SqlLineageError,
    SqlModel,
    dbt_sources_schema,
    models_from_dbt_manifest,
    project_edges,
    sql_edges,
)
from tests.conftest import ROOT

MANIFEST = ROOT / "tests" / "lineage" / "data" / "dbt_manifest.json"


def keys(edges: list) -> set[tuple[str, str, str]]:
    return {e.key for e in edges}


def test_models_are_ordered_so_a_star_over_an_earlier_model_expands() -> None:
    """The mart (listed first) reads the staging model's columns through `*`."""
    models = [
        SqlModel("mart", "SELECT * FROM stg"),
        SqlModel("stg", "SELECT id AS k, amount_cents / 100 AS dollars FROM raw.events"),
    ]
    found = keys(project_edges(models, schema={"raw.events": ["id", "amount_cents"]}))
    assert ("main.stg.dollars", "main.mart.dollars", "direct") in found
    assert ("raw.events.amount_cents", "main.stg.dollars", "direct") in found


def test_dbt_manifest_models_use_compiled_code_and_their_schema() -> None:
    """Only models are read; the mart's revenue goes back to raw.orders.amount_cents through
    the staging model, with its filters as indirect edges."""
    models = models_from_dbt_manifest(MANIFEST)
    assert sorted(m.name for m in models) == ["customer_revenue", "stg_orders"]
    edges = keys(project_edges(models, schema=dbt_sources_schema(MANIFEST)))
    stg = "analytics.staging.stg_orders"
    assert ("analytics.raw.orders.amount_cents", f"{stg}.amount", "direct") in edges
    revenue = {(s, sub) for s, t, sub in edges if t == "analytics.marts.customer_revenue.revenue"}
    assert (f"{stg}.amount", "direct") in revenue
    assert (f"{stg}.status", "indirect") in revenue


def test_sql_that_does_not_parse_is_a_user_error_naming_the_model() -> None:
    with pytest.raises(SqlLineageError) as err:
        sql_edges("SELECT (1 FROM", model="broken")
    assert err.value.code == "bad_sql" and err.value.location == "broken"


def test_unknown_dialect_is_a_user_error_listing_the_dialects() -> None:
    with pytest.raises(SqlLineageError) as err:
        sql_edges("SELECT 1", dialect="cobol")
    assert err.value.code == "unknown_dialect" and "snowflake" in (err.value.hint or "")


def test_column_edge_sets_every_field_and_stays_frozen() -> None:
    """ColumnEdge's hand-written __init__ (faster than a frozen dataclass's) must set every
    declared field, by position and by keyword, and leave the edge immutable and hashable."""
    import dataclasses

    values = ((None, "raw", "a"), "x", (None, "main", "b"), "y", "direct", "identity", "x", "m")
    names = [f.name for f in dataclasses.fields(ColumnEdge)]
    edge = ColumnEdge(*values)
    assert dataclasses.astuple(edge) == values
    assert ColumnEdge(**dict(zip(names, values, strict=True))) == edge
    assert hash(edge) == hash(ColumnEdge(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        edge.expr = "changed"  # type: ignore[misc]
