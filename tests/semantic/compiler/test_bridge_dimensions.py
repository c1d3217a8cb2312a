"""Two dimensions of one customer reached through a bridge (account → customer), from two
different models (customer names and customer countries), are read through ONE join of the
bridge, so each output row pairs a name with the country of the same customer.

MetricFlow joins the bridge once per dimension source. Its itests
``multihop_join_two_dims_different_sources`` and ``mixed_length_joins`` run on a bridge
fixture whose primary key ``account_id`` repeats ('a0' on two rows, two customers), and its
expected rows pair customer 0's name with customer 1's country: rows that no customer has.
Tally's answer keeps real pairs; both answers count a0's transactions once per bridge row,
because the fixture breaks the declared key (issue 16; the itests script lists those two
cases as "MetricFlow wrong" after checking Tally against the query below).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery

MODELS: list[dict[str, Any]] = [
    {
        "name": "txns",
        "model": "ref('txns')",
        "defaults": {"agg_time_dimension": "ds"},
        "entities": [{"name": "account", "type": "foreign", "expr": "account_id"}],
        "primary_entity": "txn",
        "dimensions": [{"name": "ds", "type": "time", "type_params": {"time_granularity": "day"}}],
        "measures": [{"name": "txn_count", "agg": "sum", "expr": "n"}],
    },
    {
        "name": "bridge",
        "model": "ref('bridge')",
        "entities": [
            {"name": "account", "type": "primary", "expr": "account_id"},
            {"name": "customer", "type": "foreign", "expr": "customer_id"},
        ],
        "dimensions": [{"name": "tier", "type": "categorical"}],
    },
    {
        "name": "customer_names",
        "model": "ref('customer_names')",
        "entities": [{"name": "customer", "type": "primary", "expr": "customer_id"}],
        "dimensions": [{"name": "customer_name", "type": "categorical"}],
    },
    {
        "name": "customer_countries",
        "model": "ref('customer_countries')",
        "entities": [{"name": "customer", "type": "primary", "expr": "customer_id"}],
        "dimensions": [{"name": "country", "type": "categorical"}],
    },
]
METRIC = {"name": "txn_count", "type": "simple", "type_params": {"measure": "txn_count"}}
GROUP_BY = ("account__customer__customer_name", "account__customer__country", "account__tier")
# MetricFlow's shape: the bridge joined once for each dimension's model.
PER_SOURCE_JOINS = """
SELECT n0.customer_name, n1.country, n0.tier, SUM(t.n)
FROM txns t
LEFT JOIN (SELECT * FROM bridge b JOIN customer_names c USING (customer_id)) n0
  ON t.account_id = n0.account_id
LEFT JOIN (SELECT * FROM bridge b JOIN customer_countries c USING (customer_id)) n1
  ON t.account_id = n1.account_id
GROUP BY 1, 2, 3
"""


def _manifest() -> Manifest:
    rows: list[tuple[str, str, Any, str]] = [("semantic_model", m["name"], m, "1") for m in MODELS]
    rows.append(("metric", "txn_count", METRIC, "1"))
    return build_manifest(rows)


def _warehouse(bridge_rows: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE txns AS SELECT * FROM (VALUES ('a0', DATE '2020-01-01', 3), "
        "('a0', DATE '2020-02-01', 4), ('a1', DATE '2020-01-01', 2), ('a2', DATE '2020-01-01', 5))"
        " t(account_id, ds, n)"
    )
    con.execute(
        f"CREATE TABLE bridge AS SELECT * FROM (VALUES {bridge_rows}) t(account_id, customer_id, tier)"
    )
    con.execute(
        "CREATE TABLE customer_names AS SELECT * FROM (VALUES ('c0', 'thorium'), "
        "('c1', 'osmium'), ('c2', 'tellurium'), ('c3', 'einsteinium')) t(customer_id, customer_name)"
    )
    con.execute(
        "CREATE TABLE customer_countries AS SELECT * FROM (VALUES ('c0', 'turkmenistan'), "
        "('c1', 'paraguay'), ('c2', 'myanmar'), ('c3', 'djibouti')) t(customer_id, country)"
    )
    return con


def _tally_rows(con: duckdb.DuckDBPyConnection) -> set[tuple[Any, ...]]:
    compiled = compile_query(MetricQuery(metrics=("txn_count",), group_by=GROUP_BY), _manifest())
    assert compiled.columns == (*sorted(GROUP_BY, key=lambda c: (c.count("__"), c)), "txn_count")
    order = [compiled.columns.index(c) for c in (*GROUP_BY, "txn_count")]
    return {tuple(row[i] for i in order) for row in con.execute(compiled.sql).fetchall()}


UNIQUE_BRIDGE = "('a0', 'c0', 'lux'), ('a1', 'c2', 'not_lux'), ('a2', 'c3', 'super_lux')"
DUPLICATED_BRIDGE = UNIQUE_BRIDGE + ", ('a0', 'c1', 'lux')"


def test_dimensions_from_two_models_pair_the_same_customer() -> None:
    """With a bridge that keeps its key, the rows are the real customers' and add up to the
    transactions' total (no fan-out); MetricFlow's shape agrees here."""
    con = _warehouse(UNIQUE_BRIDGE)
    rows = _tally_rows(con)
    assert rows == {
        ("thorium", "turkmenistan", "lux", 7),
        ("tellurium", "myanmar", "not_lux", 2),
        ("einsteinium", "djibouti", "super_lux", 5),
    }
    assert rows == set(con.execute(PER_SOURCE_JOINS).fetchall())


@pytest.mark.parametrize("bridge", [UNIQUE_BRIDGE, DUPLICATED_BRIDGE])
def test_every_row_is_a_customer_that_exists(bridge: str) -> None:
    """Each (name, country) pair Tally returns is one customer's, even when the bridge
    repeats an account (MetricFlow's fixture): the pair comes from one bridge row."""
    con = _warehouse(bridge)
    real = set(
        con.execute(
            "SELECT customer_name, country FROM customer_names JOIN customer_countries "
            "USING (customer_id) JOIN bridge USING (customer_id)"
        ).fetchall()
    )
    assert {(name, country) for name, country, _tier, _n in _tally_rows(con)} <= real


def test_metricflow_shape_invents_pairs_on_a_repeated_bridge_key() -> None:
    """MetricFlow's per-source joins on MetricFlow's fixture shape (account a0 on two bridge
    rows) return thorium with paraguay and osmium with turkmenistan, customers that do not
    exist: 6 rows where Tally's 4 are the bridge's real rows (the itests' 4 vs 6)."""
    con = _warehouse(DUPLICATED_BRIDGE)
    metricflow = set(con.execute(PER_SOURCE_JOINS).fetchall())
    tally = _tally_rows(con)
    assert ("thorium", "paraguay", "lux", 7) in metricflow
    assert len(metricflow) == 6 and len(tally) == 4
    assert tally == {
        ("thorium", "turkmenistan", "lux", 7),
        ("osmium", "paraguay", "lux", 7),
        ("tellurium", "myanmar", "not_lux", 2),
        ("einsteinium", "djibouti", "super_lux", 5),
    }
