"""Warehouse speed of Tally's compiled SQL against MetricFlow's SQL and hand-written DuckDB SQL.

Every case is a conformance case (``tests/conformance/expected/<case>.json``): its ``sql`` is
what MetricFlow 0.213.0 generated for the query, and Tally compiles the same query against the
same definitions (fixtures/ plus tests/conformance/extra_metrics.yml). Both run on one DuckDB
connection to a demo warehouse of N events (default 10M, seed 42), and so does, for a few
cases, a straightforward hand-written query that computes the same rows. Rows per case:

- ``hand: written [case]``: the hand SQL, the baseline of its case. It is checked to return
  Tally's rows (sorted, normalised as the conformance suite does) before it is timed.
- ``hand: metricflow sql [case]``: for cases without hand SQL, MetricFlow's SQL is the
  baseline instead, so every case has a ratio.
- ``metricflow [case]`` (only where a hand row exists) and ``tally [case]``.

A case that Tally refuses (QueryError, such as a metric type it does not build yet) has no rows
and is listed as unsupported in the notes; the notes also name every case where MetricFlow's
rows differ from Tally's (the ``mf_wrong`` cases of the conformance suite).

    python -m bench sql_speed                               # 10M events, ~7 min on 2 CPUs
    python -m bench sql_speed --events 1000000 --repeat 5
    python -m bench sql_speed --warehouse /tmp/w/warehouse.duckdb --cases revenue_by_month
    python -m bench sql_speed --engine clickhouse --target /tmp/w/warehouse.chdb

``--engine clickhouse`` (chdb, ClickHouse embedded) or ``--engine spark`` (Spark local) copies
the DuckDB warehouse into that engine (``--target``: reuse that copy when it exists) and
compiles Tally's SQL for its dialect; the baseline is hand SQL written for that engine
(bench/sql_speed_engines.py), so only the cases with such SQL run there, without MetricFlow.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.runner import Benchmark, Row, Stats, measure

if TYPE_CHECKING:
    import duckdb

DEFAULT_EVENTS = 10_000_000
SEED = 42
DEFAULT_REPEAT = 3
DEFAULT_WARMUP = 1
# A query slower than this is timed once (its first run) rather than warmup + repeat times.
SLOW_SECONDS = 60.0
BASELINE = "hand"

# At least one case per metric type and query feature, in the order of the table.
DEFAULT_CASES: tuple[str, ...] = (
    "revenue_by_month",  # simple sum with a metric filter, by month
    "events_by_user_account_region",  # two-hop dimension over events
    "revenue_by_subscription_account_region",  # two-hop dimension, two measures
    "events_per_active_account_by_month",  # ratio
    "revenue_growth_mom_by_month",  # derived with offset_window
    "cumulative_revenue_by_month",  # all-time cumulative, period_agg last
    "weekly_active_users_by_day",  # 7-day window cumulative
    "revenue_month_to_date_by_day",  # grain_to_date cumulative
    "current_mrr_by_plan_and_region",  # non-additive dimension
    "new_accounts_by_day",  # join_to_timespine + fill_nulls_with
    "emea_events_by_quarter",  # where on a two-hop dimension
    # Conversion. activation_rate_7d_by_month is left out of the default: ~25 s a run at 10M.
    "trial_to_paid_by_quarter",
    # Issue 17's shapes (with cumulative_revenue_by_month, all time by month, above):
    "activation_rate_7d_by_month",  # conversion rate by month
    "revenue_7d_by_day",  # 7-day window sum by day (bench case: no MetricFlow SQL)
)

# Cases of this benchmark only (no conformance record, so no MetricFlow row): the query and
# the metrics it adds to the conformance definitions. Each has hand SQL in HAND_SQL.
BENCH_CASES: dict[str, dict[str, Any]] = {
    "revenue_7d_by_day": {
        "query": {"metrics": ["revenue_7d"], "group_by": ["metric_time__day"]},
        "metrics": [
            {
                "name": "revenue_7d",
                "type": "cumulative",
                "type_params": {
                    "measure": {
                        "name": "invoice_amount",
                        "filter": "{{ Dimension('invoice__status') }} = 'paid'",
                    },
                    "cumulative_type_params": {"window": "7 days"},
                },
            }
        ],
    },
}

# Straightforward DuckDB SQL for the same rows as Tally's, columns in Tally's order. They read
# the warehouse directly (schema main) and use whatever a careful analyst would: a running
# SUM() window instead of a spine join, distinct (day, user) pairs before a window fan-out.
HAND_SQL: dict[str, str] = {
    "revenue_by_month": """
        SELECT DATE_TRUNC('month', issued_at) AS metric_time__month, SUM(amount) AS revenue
        FROM main.invoices
        WHERE status = 'paid'
        GROUP BY 1
    """,
    "events_by_user_account_region": """
        SELECT a.churned_at IS NOT NULL AS account__is_churned,
               ua.region AS user__account__region,
               COUNT(DISTINCT e.event_id) AS events_tracked,
               COUNT(DISTINCT e.user_id) AS daily_active_users
        FROM main.events AS e
        LEFT JOIN main.accounts AS a ON e.account_id = a.id
        LEFT JOIN main.users AS u ON e.user_id = u.id
        LEFT JOIN main.accounts AS ua ON u.account_id = ua.id
        GROUP BY 1, 2
    """,
    # Every month of the spine (2024-11 .. 2026-10) has paid invoices, so the running sum
    # over monthly totals equals the spine join's value on each month's last day.
    "cumulative_revenue_by_month": """
        SELECT month AS metric_time__month,
               SUM(revenue) OVER (ORDER BY month) AS cumulative_revenue
        FROM (
          SELECT DATE_TRUNC('month', issued_at) AS month, SUM(amount) AS revenue
          FROM main.invoices
          WHERE status = 'paid'
          GROUP BY 1
        )
    """,
    "weekly_active_users_by_day": """
        WITH active AS (
          SELECT DISTINCT CAST(occurred_at AS DATE) AS day, user_id
          FROM main.events
          WHERE occurred_at >= DATE '2026-04-25' AND occurred_at < DATE '2026-06-12'
        )
        SELECT s.date_day AS metric_time__day, COUNT(DISTINCT a.user_id) AS weekly_active_users
        FROM main.time_spine AS s
        JOIN active AS a ON a.day BETWEEN s.date_day - 6 AND s.date_day
        WHERE s.date_day BETWEEN DATE '2026-05-01' AND DATE '2026-06-11'
        GROUP BY 1
    """,
    # Issue 17: the conversion step credits each report to the latest signup of its account
    # within 7 days; a signup event always finds itself, so every signup month has a value.
    "activation_rate_7d_by_month": """
        WITH signups AS (
          SELECT account_id, CAST(occurred_at AS DATE) AS d, DATE_TRUNC('month', occurred_at) AS m
          FROM main.events WHERE event_type = 'signup'
        ), reports AS (
          SELECT DISTINCT account_id, CAST(occurred_at AS DATE) AS d
          FROM main.events WHERE event_type = 'report_created'
        ), credited AS (
          SELECT r.account_id, arg_max(s.m, s.d) AS m
          FROM reports AS r
          JOIN signups AS s ON s.account_id = r.account_id AND s.d <= r.d AND s.d > r.d - 7
          GROUP BY r.account_id, r.d
        )
        SELECT b.m AS metric_time__month,
               CAST(COALESCE(c.n, 0) AS DOUBLE) / CAST(NULLIF(b.n, 0) AS DOUBLE)
                 AS activation_rate_7d
        FROM (SELECT m, COUNT(DISTINCT account_id) AS n FROM signups GROUP BY 1) AS b
        LEFT JOIN (SELECT m, COUNT(DISTINCT account_id) AS n FROM credited GROUP BY 1) AS c
          ON c.m = b.m
    """,
    # A running 7-row sum over the dense day spine: the days whose window has paid invoices.
    "revenue_7d_by_day": """
        WITH daily AS (
          SELECT CAST(issued_at AS DATE) AS d, SUM(amount) AS v
          FROM main.invoices WHERE status = 'paid' GROUP BY 1
        )
        SELECT metric_time__day, revenue_7d FROM (
          SELECT s.date_day AS metric_time__day,
                 SUM(d.v) OVER (ORDER BY s.date_day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)
                   AS revenue_7d
          FROM main.time_spine AS s LEFT JOIN daily AS d ON d.d = s.date_day
        ) WHERE revenue_7d IS NOT NULL
    """,
    "emea_events_by_quarter": """
        SELECT DATE_TRUNC('quarter', e.occurred_at) AS metric_time__quarter,
               COUNT(DISTINCT e.event_id) AS events_tracked,
               COUNT(DISTINCT e.user_id) AS daily_active_users
        FROM main.events AS e
        JOIN main.users AS u ON e.user_id = u.id
        JOIN main.accounts AS a ON u.account_id = a.id
        WHERE a.region = 'EMEA'
        GROUP BY 1
    """,
}

# Filled by run() and printed in the heading by notes(), which the runner calls after run().
_NOTES: list[str] = []
# The timer of run(): wall clock, or CPU time with --clock cpu.
_CLOCK: list[Callable[[], float]] = [time.perf_counter]


# A second hand query for the all-time cumulative: the written one sums months that have
# invoices, which answers Tally's rows only because every month of the demo has some. With
# a month that has none, MetricFlow's semantics (and Tally's) still give that month a row,
# carried forward from the time spine; an analyst who wants that reads the spine too. This
# row shows what that costs on each engine (its rows are checked like the hand query's).
_SPINE_ENDS_SQL = """
    WITH daily AS (
      SELECT CAST(issued_at AS DATE) AS d, SUM(amount) AS v
      FROM main.invoices WHERE status = 'paid' GROUP BY 1
    ), ends AS (
      SELECT MAX(date_day) AS d FROM main.time_spine GROUP BY {month_day}
    )
    SELECT {month_of_end} AS metric_time__month, SUM(x.v) AS cumulative_revenue
    FROM ends AS e {join} daily AS x {on} x.d <= e.d
    GROUP BY 1
"""
SPINE_HAND_SQL: dict[str, dict[str, str]] = {
    engine: {"cumulative_revenue_by_month": _SPINE_ENDS_SQL.format(**parts)}
    for engine, parts in {
        "duckdb": {"month_day": "DATE_TRUNC('month', date_day)",
                   "month_of_end": "DATE_TRUNC('month', e.d)",
                   "join": "JOIN", "on": "ON"},
        "spark": {"month_day": "DATE_TRUNC('MONTH', date_day)",
                  "month_of_end": "DATE_TRUNC('MONTH', e.d)",
                  "join": "JOIN", "on": "ON"},
        # ClickHouse joins on equalities only: the inequality is a filter of the cross join.
        "clickhouse": {"month_day": "toStartOfMonth(date_day)",
                       "month_of_end": "toStartOfMonth(e.d)",
                       "join": "CROSS JOIN", "on": "WHERE"},
    }.items()
}  # fmt: skip
# Not named "hand: …": the runner takes every "hand: …" row of a case as its baseline.
SPINE_ROW = "written, reading the time spine"


@dataclass(frozen=True)
class _Variant:
    """One SQL text of a case and the name of its row."""

    row: str
    sql: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events",
        type=_positive_int,
        default=DEFAULT_EVENTS,
        help=f"events in the demo warehouse (default {DEFAULT_EVENTS:,})",
    )
    parser.add_argument(
        "--cases",
        type=lambda s: tuple(x.strip() for x in s.split(",") if x.strip()),
        default=DEFAULT_CASES,
        help="comma-separated conformance cases (default: one per metric type)",
    )
    parser.add_argument(
        "--engine",
        choices=("duckdb", "clickhouse", "spark"),
        default="duckdb",
        help="run on DuckDB, ClickHouse embedded (chdb) or Spark local (default duckdb)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time wall-clock seconds or CPU seconds of this process and its children "
        "(Spark's JVM): cpu on a shared machine",
    )
    parser.add_argument(
        "--target",
        type=Path,
        default=None,
        help="--engine's data directory to reuse (copied from the DuckDB warehouse if missing)",
    )
    parser.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="reuse this DuckDB warehouse (built here first if missing) instead of a temp one",
    )


def run(options: argparse.Namespace) -> list[Row]:
    """Builds or opens the warehouse, checks every case's rows, then times each SQL variant."""
    # Heavy imports here so that `python -m bench --list` stays cheap.
    from semantic.demo import build_demo_warehouse

    _NOTES.clear()
    _CLOCK[0] = time.perf_counter
    repeat = options.repeat or DEFAULT_REPEAT
    warmup = DEFAULT_WARMUP if options.warmup is None else options.warmup
    with tempfile.TemporaryDirectory(prefix="tally-bench-sql-") as tmp:
        path = options.warehouse or Path(tmp) / "warehouse.duckdb"
        if not path.exists():
            print(f"building {options.events:,} events in {path} ...", flush=True)
            build_demo_warehouse(path, events=options.events, seed=SEED)
        con = _connect(path)
        try:
            n = int(con.execute("SELECT COUNT(*) FROM main.events").fetchone()[0])
            if options.warehouse is not None:
                _NOTES.append(f"reused {path} ({n:,} events)")
            if options.engine == "duckdb":
                target = _Engine("duckdb", "duckdb", lambda sql: _fetch(con, sql), HAND_SQL)
                cases = options.cases
            else:
                con.close()
                target = _open_engine(options, path, Path(tmp))
                cases = [c for c in options.cases if c in target.hand_sql]
                skipped = [c for c in options.cases if c not in target.hand_sql]
                if skipped:
                    _NOTES.append(f"no {options.engine} hand SQL: {', '.join(skipped)}")
            if options.clock == "cpu":
                from bench.sql_speed_engines import cpu_clock

                _CLOCK[0] = cpu_clock
                _NOTES.append("CPU seconds (this process and its children), not wall time")
            rows: list[Row] = []
            for case in cases:
                rows += _run_case(target, case, n=n, repeat=repeat, warmup=warmup)
        finally:
            con.close()
    return rows


@dataclass(frozen=True)
class _Engine:
    """Where the variants run: DuckDB (this connection) or another engine's warehouse."""

    name: str
    dialect: str
    fetch: Callable[[str], tuple[list[str], list[Any]]]
    hand_sql: dict[str, str]


def _open_engine(options: argparse.Namespace, source: Path, tmp: Path) -> _Engine:
    from bench.sql_speed_engines import HAND_SQL as ENGINE_HAND_SQL
    from bench.sql_speed_engines import open_target

    suffix = "chdb" if options.engine == "clickhouse" else "spark"
    path = options.target or tmp / f"warehouse.{suffix}"
    if options.target is not None and path.exists():
        _NOTES.append(f"reused {path}")
    target = open_target(options.engine, source, path)
    _NOTES.append(target.note)
    return _Engine(options.engine, target.dialect, target.run, ENGINE_HAND_SQL[options.engine])


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[Any]]:
    cursor = con.execute(sql)
    rows = cursor.fetchall()
    return [d[0] for d in cursor.description], rows


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection where MetricFlow's ``"warehouse"."main".x`` and Tally's ``main.x`` resolve.

    Attaching under the alias ``warehouse`` (rather than relying on the file being named
    warehouse.duckdb) lets ``--warehouse`` point at a file of any name.
    """
    import duckdb

    con = duckdb.connect()
    quoted = str(path).replace("'", "''")
    con.execute(f"ATTACH '{quoted}' AS warehouse (READ_ONLY)")
    con.execute("USE warehouse")
    # The progress bar writes to the terminal during long queries and would pollute the output.
    con.execute("SET enable_progress_bar = false")
    return con


def _run_case(engine: _Engine, case: str, *, n: int, repeat: int, warmup: int) -> list[Row]:
    """Rows of one case: verify the results of every variant, then time each of them."""
    from semantic.compiler.api import compile_query
    from tally.errors import QueryError
    from tests.conformance.test_conformance import EXPECTED, _query, conformance_manifest

    path = EXPECTED / f"{case}.json"
    manifest = conformance_manifest()
    if case in BENCH_CASES:
        record = {"query": BENCH_CASES[case]["query"], "sql": None}
        manifest = _with_metrics(manifest, BENCH_CASES[case]["metrics"])
    elif not path.exists():
        raise SystemExit(f"no conformance case {case!r} in {EXPECTED}")
    else:
        record = json.loads(path.read_text())
    spec = record["query"]
    if "saved_query" in spec:
        raise SystemExit(f"{case} is a saved query; pick a case with metrics and group_by")
    query = _query(spec)
    if engine.dialect != query.dialect:
        query = type(query)(**{**query.__dict__, "dialect": engine.dialect})
    try:
        compiled = compile_query(query, manifest)
    except QueryError as exc:
        _NOTES.append(f"{case}: unsupported ({exc.code})")
        return []

    ordered = bool(spec.get("order_by"))
    tally = _Variant(f"tally [{case}]", compiled.sql)
    hand_sql = engine.hand_sql.get(case)
    metricflow: _Variant | None
    if engine.name != "duckdb":
        # MetricFlow's SQL is DuckDB's; other engines have cases with hand SQL only.
        assert hand_sql is not None
        metricflow = None
        variants = [_Variant(f"{BASELINE}: written [{case}]", hand_sql), tally]
    elif hand_sql is None:
        # No hand SQL: MetricFlow's query is the baseline of this case.
        metricflow = _Variant(f"{BASELINE}: metricflow sql [{case}]", record["sql"])
        variants = [metricflow, tally]
    elif record["sql"] is None:
        metricflow = None
        variants = [_Variant(f"{BASELINE}: written [{case}]", hand_sql), tally]
    else:
        metricflow = _Variant(f"metricflow [{case}]", record["sql"])
        variants = [_Variant(f"{BASELINE}: written [{case}]", hand_sql), metricflow, tally]

    spine_sql = SPINE_HAND_SQL.get(engine.name, {}).get(case)
    if spine_sql is not None:
        variants.insert(1, _Variant(f"{SPINE_ROW} [{case}]", spine_sql))
    # The first run of each variant fetches the rows to compare and counts as one warmup.
    first: dict[str, tuple[float, list[str], list[list[Any]]]] = {}
    for variant in variants:
        columns, rows, seconds = _run_once(engine, variant.sql)
        first[variant.row] = (seconds, columns, _comparable(rows, ordered))
    tally_rows = first[tally.row][2]
    for row, (_, columns, rows) in first.items():
        if row.startswith((f"{BASELINE}: written", SPINE_ROW)):
            _check_hand(case, columns, rows, compiled.columns, tally_rows)
    if metricflow is not None and not _same(first[metricflow.row][2], tally_rows):
        reason = spec.get("mf_wrong")
        _NOTES.append(
            f"{case}: MetricFlow's rows differ from Tally's"
            + (" (a known MetricFlow defect, mf_wrong)" if reason else " (UNEXPECTED)")
        )

    slow = {v.row for v in variants if first[v.row][0] > SLOW_SECONDS}
    for row in slow:
        _NOTES.append(f"{row} took {first[row][0]:.0f} s: timed once")
    timed = [v for v in variants if v.row not in slow]
    # Round-robin, one sample per variant per round: this box is shared, and load that comes
    # and goes would otherwise land on whichever variant happened to run at the time.
    for _ in range(max(warmup - 1, 0)):
        for variant in timed:
            engine.fetch(variant.sql)
    samples: dict[str, list[float]] = {v.row: [] for v in timed}
    for _ in range(repeat):
        for variant in timed:
            stats = measure(
                lambda sql=variant.sql: engine.fetch(sql), repeat=1, warmup=0, timer=_CLOCK[0]
            )
            samples[variant.row] += stats.samples
    return [
        Row(
            v.row,
            n,
            Stats((first[v.row][0],)) if v.row in slow else Stats(tuple(samples[v.row])),
        )
        for v in variants
    ]


def _with_metrics(manifest: Any, specs: list[dict[str, Any]]) -> Any:
    """``manifest`` with the bench case's own metrics added."""
    from dataclasses import replace

    from semantic.compiler.manifest import Metric

    added = {spec["name"]: Metric(spec["name"], spec["type"], spec, "bench") for spec in specs}
    return replace(manifest, metrics={**manifest.metrics, **added})


def _run_once(engine: _Engine, sql: str) -> tuple[list[str], list[Any], float]:
    """(column names, rows, seconds) of one execution."""
    started = _CLOCK[0]()
    columns, rows = engine.fetch(sql)
    return columns, rows, _CLOCK[0]() - started


def _comparable(rows: Sequence[Sequence[Any]], ordered: bool) -> list[list[Any]]:
    """Rows normalised as the conformance suite does, sorted unless the query orders them."""
    from tests.conformance.normalize import normalize_rows, row_sort_key

    normalised = normalize_rows(rows)
    return normalised if ordered else sorted(normalised, key=row_sort_key)


def _same(expected: list[list[Any]], actual: list[list[Any]]) -> bool:
    from tests.conformance.normalize import rows_equal

    return rows_equal(expected, actual)


def _check_hand(
    case: str,
    columns: Sequence[str],
    rows: list[list[Any]],
    tally_columns: Sequence[str],
    tally_rows: list[list[Any]],
) -> None:
    """Refuses to time a hand query whose columns or rows differ from Tally's.

    Timing a hand query that answers something else would make its ratio meaningless.
    """
    if [c.lower() for c in columns] != [c.lower() for c in tally_columns]:
        raise SystemExit(f"{case}: hand SQL columns {list(columns)} != {list(tally_columns)}")
    if not _same(rows, tally_rows):
        raise SystemExit(
            f"{case}: hand SQL rows differ from Tally's\nhand  {rows[:5]}\ntally {tally_rows[:5]}"
        )


def _notes() -> str:
    import duckdb

    threads = duckdb.connect().execute("SELECT current_setting('threads')").fetchone()[0]
    parts = [f"DuckDB {duckdb.__version__}, {threads} threads, seed {SEED}", *_NOTES]
    return "; ".join(parts)


def _positive_int(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


BENCHMARK = Benchmark(
    description=(
        "warehouse time of Tally's SQL vs MetricFlow's SQL and hand-written SQL "
        "(DuckDB, ClickHouse or Spark)"
    ),
    run=run,
    add_arguments=add_arguments,
    baseline=BASELINE,
    notes=_notes,
)
