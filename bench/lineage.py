"""Lineage figures: graph build, impact, upstream and incremental update on a synthetic registry
of 10,000 metrics over 100,000 columns; SQL lineage extraction speed and edge-level F1.

Issue #6's targets: full build ≤ 10 s; impact of one column median ≤ 20 ms; upstream of one
metric median ≤ 10 ms; incremental update after one merge ≤ 100 ms; SQL extraction ≥ 200
statements/s on typical 50-line models; edge-level F1 ≥ 0.97 on the case suite.

The registry figures are in memory (``lineage.graph``, Django-free): rows in the shape the
registry stores (kind, name, spec, version). The F1 row's unit is F1 × 100.

    python -m bench lineage                       # 10,000 metrics / 1,000 tables × 100 columns
    python -m bench lineage --metrics 1000 --tables 100 --repeat 3
"""

from __future__ import annotations

import argparse
import copy
import random
import time
from typing import Any

from bench.runner import Benchmark, Row, Stats, measure, run_worker, throughput

# The machine these figures come from is shared; process CPU time measures this code's cost
# without the waits other processes cause (the stored-write rows use wall time: they wait on
# the database).
CPU = time.process_time

TEAMS = ("product-analytics", "finance-data", "growth-analytics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--tables", type=int, default=1_000, help="100 columns each")
    parser.add_argument("--sql-models", type=int, default=200)
    parser.add_argument(
        "--no-stored", dest="stored", action="store_false", help="skip the SQLite write figures"
    )


def synthetic_rows(
    *, tables: int, metrics: int, columns: int = 100
) -> list[tuple[str, str, Any, str]]:
    """Contracts (``columns`` columns per table), one semantic model per table (10 measures,
    4 dimensions, 2 entities), and metrics: 70% simple (half filtered), 15% ratio, 15% derived.

    Example:
        >>> rows = synthetic_rows(tables=2, metrics=10, columns=20)
        >>> sorted({kind for kind, *_ in rows})
        ['contract', 'metric', 'semantic_model']
    """
    rows: list[tuple[str, str, Any, str]] = []
    measures: list[str] = []
    for t in range(tables):
        props = [{"name": f"c{c}", "logicalType": "number"} for c in range(columns)]
        rows.append(
            (
                "contract",
                f"contract_{t}",
                {
                    "apiVersion": "v3.0.2",
                    "kind": "DataContract",
                    "id": f"contract_{t}",
                    "name": f"contract_{t}",
                    "version": "1.0.0",
                    "status": "active",
                    "servers": [{"server": "w", "type": "duckdb", "schema": "main"}],
                    "schema": [{"name": f"table_{t}", "properties": props}],
                },
                "1.0",
            )
        )
        names = [f"t{t}_m{m}" for m in range(10)]
        measures.extend(names)
        rows.append(
            (
                "semantic_model",
                f"model_{t}",
                {
                    "name": f"model_{t}",
                    "model": f"ref('table_{t}')",
                    "primary_entity": f"row_{t}",
                    "defaults": {"agg_time_dimension": "c0"},
                    "config": {"meta": {"owner": TEAMS[t % 3], "contract": f"contract_{t}"}},
                    "entities": [
                        {"name": f"row_{t}", "type": "primary", "expr": "c1"},
                        {"name": "account", "type": "foreign", "expr": "c2"},
                    ],
                    "dimensions": [
                        {"name": "c0", "type": "time", "type_params": {"time_granularity": "day"}},
                        {"name": f"kind_{t}", "type": "categorical", "expr": "c3"},
                        {
                            "name": f"band_{t}",
                            "type": "categorical",
                            "expr": "CASE WHEN c4 > 10 THEN 'hi' ELSE 'lo' END",
                        },
                        {"name": f"flag_{t}", "type": "categorical", "expr": "c5 IS NOT NULL"},
                    ],
                    "measures": [
                        {"name": n, "agg": "sum", "expr": f"c{6 + m} * c{50 + m}"}
                        for m, n in enumerate(names)
                    ],
                },
                "1.0",
            )
        )
    simple = max(1, int(metrics * 0.7))
    for j in range(metrics):
        meta = {"config": {"meta": {"owner": TEAMS[j % 3], "domain": "d", "tier": "standard"}}}
        if j < simple:
            measure = measures[j % len(measures)]
            table = measure[1:].split("_")[0]
            spec = {
                "name": f"metric_{j}",
                "type": "simple",
                "type_params": {"measure": measure},
                **meta,
            }
            if j % 2:
                spec["filter"] = f"{{{{ Dimension('row_{table}__kind_{table}') }}}} = 'x'"
        elif j % 2:
            spec = {
                "name": f"metric_{j}",
                "type": "ratio",
                "type_params": {
                    "numerator": f"metric_{j % simple}",
                    "denominator": f"metric_{(j + 1) % simple}",
                },
                **meta,
            }
        else:
            spec = {
                "name": f"metric_{j}",
                "type": "derived",
                "type_params": {
                    "expr": "a - b",
                    "metrics": [
                        {"name": f"metric_{j % simple}", "alias": "a"},
                        {"name": f"metric_{(j + 7) % simple}", "alias": "b"},
                    ],
                },
                **meta,
            }
        rows.append(("metric", f"metric_{j}", spec, "1.0"))
    return rows


SQL_MODEL = """
WITH src AS (
    SELECT *
    FROM raw.orders_{i}
    WHERE status <> 'test'
),
customers AS (
    SELECT id, region, segment, created_at
    FROM raw.customers
    WHERE deleted_at IS NULL
),
daily AS (
    SELECT
        s.customer_id,
        DATE_TRUNC('day', s.ordered_at) AS day,
        SUM(s.amount_cents) / 100.0 AS revenue,
        COUNT(DISTINCT s.order_id) AS orders,
        SUM(CASE WHEN s.channel = 'web' THEN s.amount_cents ELSE 0 END) / 100.0 AS web_revenue,
        MAX(s.ordered_at) AS last_order_at
    FROM src AS s
    GROUP BY 1, 2
),
ranked AS (
    SELECT
        d.*,
        ROW_NUMBER() OVER (PARTITION BY d.customer_id ORDER BY d.day DESC) AS recency_rank,
        SUM(d.revenue) OVER (PARTITION BY d.customer_id ORDER BY d.day) AS running_revenue
    FROM daily AS d
)
SELECT
    r.customer_id,
    c.region,
    c.segment,
    r.day,
    r.revenue,
    r.orders,
    r.web_revenue,
    r.running_revenue,
    CASE WHEN r.recency_rank = 1 THEN TRUE ELSE FALSE END AS is_latest,
    COALESCE(r.revenue / NULLIF(r.orders, 0), 0) AS revenue_per_order,
    DATEDIFF('day', c.created_at, r.day) AS customer_age_days
FROM ranked AS r
LEFT JOIN customers AS c
    ON c.id = r.customer_id
WHERE r.day >= DATE '2025-01-01'
"""


def run(options: argparse.Namespace) -> list[Row]:
    import networkx as nx

    from lineage.graph import build_graph, graph_apply_delta, graph_delta, impact, upstream_tree
    from lineage.sql_cases import case_edges, f1, load_cases
    from lineage.sql_lineage import SqlModel, project_edges

    repeat = options.repeat or 5
    rows = synthetic_rows(tables=options.tables, metrics=options.metrics)
    out: list[Row] = []
    graph_holder: list[nx.MultiDiGraph] = []

    def build() -> None:
        graph_holder[:] = [build_graph(rows, release="r1")]

    out.append(
        Row(
            "full build",
            options.metrics,
            measure(build, repeat=min(repeat, 3), warmup=0, timer=CPU),
        )
    )
    graph = graph_holder[0]
    columns = sum(1 for _, d in graph.nodes(data=True) if d.get("kind") == "column")
    rng = random.Random(7)
    column_nodes = [n for n, d in graph.nodes(data=True) if d.get("kind") == "column"]
    metric_nodes = [n for n, d in graph.nodes(data=True) if d.get("kind") == "metric"]
    picks = iter(rng.choices(column_nodes, k=1000))
    out.append(Row(f"impact of one column ({columns:,} columns)", options.metrics,
                   measure(lambda: impact(graph, next(picks)), repeat=max(repeat, 50), warmup=3, timer=CPU)))  # fmt: skip
    metric_picks = iter(rng.choices(metric_nodes, k=1000))
    out.append(Row("upstream tree of one metric", options.metrics,
                   measure(lambda: upstream_tree(graph, next(metric_picks)), repeat=max(repeat, 50), warmup=3, timer=CPU)))  # fmt: skip

    # Successive merged proposals, each changing one metric's filter (a new major version),
    # applied to the graph the previous publish left (as the publish hook does).
    index = next(i for i, r in enumerate(rows) if r[0] == "metric" and r[1] == "metric_1")
    live = graph
    samples = []
    for number in range(2, 2 + max(repeat, 5)):
        kind, name, spec, _ = rows[index]
        spec = copy.deepcopy(spec)
        spec["filter"] = f"{{{{ Dimension('row_0__kind_0') }}}} = 'v{number}'"
        rows[index] = (kind, name, spec, f"{number}.0")
        versions = {f"{k}:{n}": v for k, n, _, v in rows}
        stats = measure(
            lambda n=number, v=versions: graph_apply_delta(
                live, graph_delta(live, rows, release=f"r{n}"), release=f"r{n}", versions=v
            ),
            repeat=1,
            warmup=0,
            timer=CPU,
        )
        samples.extend(stats.samples)
    out.append(Row("incremental update after one merge", options.metrics, Stats(tuple(samples))))

    models = [SqlModel(f"model_{i}", SQL_MODEL.format(i=i)) for i in range(options.sql_models)]
    schema = {"raw.customers": ["id", "region", "segment", "created_at", "deleted_at"]}
    extraction = Row("SQL lineage extraction (50-line models)", len(models),
                     measure(lambda: project_edges(models, dialect="duckdb", schema=schema, workers=1), repeat=min(repeat, 3), warmup=1, timer=CPU))  # fmt: skip
    out.append(throughput(extraction, unit="statements/s"))

    cases = load_cases()
    expected = [c.expected for c in cases]
    found = [case_edges(c) for c in cases]
    out.append(Row(f"edge-level F1 x100 ({len(cases)} cases)", sum(len(e) for e in expected),
                   Stats((100 * f1(expected, found),)), unit="F1x100"))  # fmt: skip
    if options.stored:
        out.extend(_stored_rows(options))
    return out


def _stored_rows(options: argparse.Namespace) -> list[Row]:
    """Runs the stored-lineage worker (its own process: Django binds one database per process)."""
    import sys

    samples = run_worker(
        [sys.executable, "-m", "bench.lineage", "stored", str(options.metrics), str(options.tables),
         str(options.repeat or 5)],
        label="stored worker",
    )  # fmt: skip
    return [
        Row(f"{case} [sqlite]", options.metrics, Stats(tuple(v))) for case, v in samples.items()
    ]


def _stored_worker(metrics: int, tables: int, repeat: int) -> None:
    """Writes the synthetic release's lineage rows to a fresh SQLite registry (full), then
    times incremental publishes of one changed metric (delta + rows + in-memory graph)."""
    import json
    import os
    import tempfile
    import time
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp())
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tally.settings")
    os.environ.setdefault("TALLY_DEMO", "1")  # demo data: development secrets
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from lineage.graph import build_graph, graph_apply_delta, graph_delta
    from lineage.storage import stored_delta, write_delta

    call_command("migrate", verbosity=0)
    rows = synthetic_rows(tables=tables, metrics=metrics)
    graph = build_graph(rows, release="r1")
    started = time.perf_counter()
    with transaction.atomic():
        write_delta(stored_delta(graph), 1)
    full = time.perf_counter() - started
    index = next(i for i, r in enumerate(rows) if r[0] == "metric" and r[1] == "metric_1")
    samples = []
    for number in range(2, 2 + repeat):
        kind, name, spec, _ = rows[index]
        spec = copy.deepcopy(spec)
        spec["filter"] = f"{{{{ Dimension('row_0__kind_0') }}}} = 'v{number}'"
        rows[index] = (kind, name, spec, f"{number}.0")
        versions = {f"{k}:{n}": v for k, n, _, v in rows}
        started = time.perf_counter()
        with transaction.atomic():
            delta = graph_delta(graph, rows, release=f"r{number}")
            write_delta(delta, number)
        graph_apply_delta(graph, delta, release=f"r{number}", versions=versions)
        samples.append(time.perf_counter() - started)
    print(
        json.dumps(
            {"stored full write": [full], "stored incremental update after one merge": samples}
        )
    )


def notes() -> str:
    import networkx
    import sqlglot

    return (
        f"networkx {networkx.__version__}, sqlglot {sqlglot.__version__}; "
        "in-memory rows in process CPU seconds, [sqlite] rows in wall seconds"
    )


BENCHMARK = Benchmark(
    description="lineage graph build/impact/upstream/incremental; SQL lineage speed and F1",
    run=run,
    add_arguments=add_arguments,
    notes=notes,
)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["stored"]:
        _stored_worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
