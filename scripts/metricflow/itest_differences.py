"""MetricFlow itest cases whose expected rows Tally deliberately does not give, and why.

Each entry names the case, a verdict and the reason, and carries a check query of our own
(DuckDB, ``{source_schema}`` for the snapshots' schema) that states the answer Tally gives.
``itests.py`` reports such a case as "MetricFlow differs" only when Tally's rows differ from
MetricFlow's check query AND equal this query's rows; anything else is still a failure, so
an entry cannot hide a regression. Tests of our own cover each behaviour (named below).

``KNOWN_REFUSALS`` lists the cases whose expected rows are a fan-out: the fixture's data
repeats a key the manifest declares primary, MetricFlow's check query joins through it and
multiplies the sums, and Tally refuses the query (issue 16: never a silent wrong number).
Such a case is "Tally refuses" only when Tally refuses it with the listed code AND the
entry's check query finds the repeated key in the data; a case listed here that Tally
answers fails, since its answer can only be the multiplied one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownDifference:
    verdict: str  # "MetricFlow wrong" | "MetricFlow approximate" | "MetricFlow's choice"
    reason: str
    check_query: str


_MONTH_WINDOW_REASON = (
    "a 1-month offset_window by year: MetricFlow moves each spine day back a month, so "
    "29, 30 and 31 March read 29 February (counted three times) and no day reads 30 or 31 "
    "January; Tally moves each booking day a month forward (to the month's end when shorter) "
    "and sums by that day's year, each day counted once "
    "(tests/semantic/compiler/kinds/test_offset_days.py)"
)

KNOWN_DIFFERENCES: dict[tuple[str, str], KnownDifference] = {
    ("itest_measure_aggregations.yaml", "approximate_continuous_percentile_agg"): KnownDifference(
        "MetricFlow approximate",
        "use_approximate_percentile allows an approximation; Tally computes the exact "
        "PERCENTILE_CONT on every engine (so engines agree), and MetricFlow's check query is "
        "DuckDB's approx_quantile (t-digest), e.g. 735.45 where the exact 99th percentile is "
        "734.099 (tests/semantic/compiler/kinds/test_percentiles.py)",
        """
SELECT
  PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY booking_value)
    AS approximate_continuous_booking_value_p99
  , ds AS metric_time__day
FROM {source_schema}.fct_bookings
GROUP BY ds
""",
    ),
    (
        "itest_metrics.yaml",
        "derived_metric_with_offset_window_and_offset_to_grain_and_granularity",
    ): KnownDifference(
        "MetricFlow wrong",
        _MONTH_WINDOW_REASON,
        """
SELECT
  COALESCE(a.metric_time__year, b.metric_time__year) AS metric_time__year
  , month_start_bookings - bookings_1_month_ago
    AS bookings_month_start_compared_to_1_month_prior
FROM (
  SELECT DATE_TRUNC('year', CAST(ds + INTERVAL 1 MONTH AS DATE)) AS metric_time__year
    , COUNT(*) AS bookings_1_month_ago
  FROM {source_schema}.fct_bookings
  GROUP BY 1
) a
FULL OUTER JOIN (
  SELECT DATE_TRUNC('year', ds) AS metric_time__year, COUNT(*) AS month_start_bookings
  FROM {source_schema}.fct_bookings
  WHERE ds = DATE_TRUNC('year', ds)
  GROUP BY 1
) b
ON a.metric_time__year = b.metric_time__year
""",
    ),
    ("itest_dimensions.yaml", "distinct_values_query_with_metric_filter"): KnownDifference(
        "MetricFlow's choice",
        "a query without metrics for the entity listing: MetricFlow reads the listing ids from "
        "dim_lux_listing_id_mapping (the first model with a listing entity its source search "
        "finds); Tally reads an entity's values from the model whose primary entity it is, "
        "dim_listings_latest, the listing's own table, with the same Metric() filter "
        "(tests/semantic/compiler/test_dimension_query.py)",
        """
SELECT listing
FROM (
  SELECT l.listing_id AS listing, a.bookings AS listing__bookings
  FROM {source_schema}.dim_listings_latest l
  FULL OUTER JOIN (
    SELECT listing_id AS listing, SUM(1) AS bookings
    FROM {source_schema}.fct_bookings
    GROUP BY listing_id
  ) a ON l.listing_id = a.listing
) q
WHERE listing__bookings > 2
GROUP BY listing
""",
    ),
    ("itest_metrics.yaml", "cumulative_time_offset_metric_with_time_constraint"): KnownDifference(
        "MetricFlow wrong",
        "a 2-day cumulative offset 2 days with a time range: MetricFlow computes the cumulative "
        "input only on the range's days, so the first days of the range, whose offset reads "
        "days before it (2019-12-17/18), lose their value; Tally computes the input on every "
        "day it reads, so 2019-12-20 keeps its 3 bookers "
        "(tests/semantic/compiler/kinds/test_cumulative.py)",
        """
SELECT days.metric_time__day, COUNT(DISTINCT windows.bookers) AS every_2_days_bookers_2_days_ago
FROM (
  SELECT ds AS metric_time__day FROM {source_schema}.mf_time_spine
  WHERE ds >= DATE '2019-12-19' AND ds <= DATE '2020-01-02'
) days
INNER JOIN (
  SELECT s.ds AS metric_time__day, b.guest_id AS bookers
  FROM {source_schema}.mf_time_spine s
  INNER JOIN {source_schema}.fct_bookings b
    ON DATE_TRUNC('day', b.ds) <= s.ds AND DATE_TRUNC('day', b.ds) > s.ds - INTERVAL 2 DAY
) windows
  ON CAST(days.metric_time__day - INTERVAL 2 DAY AS DATE) = windows.metric_time__day
GROUP BY days.metric_time__day
""",
    ),
}


@dataclass(frozen=True)
class KnownRefusal:
    code: str  # the error code Tally refuses the case with
    reason: str
    # One row per key value the data repeats (DuckDB, ``{source_schema}``): must find rows.
    check_query: str


_REPEATED_KEY = """
SELECT {key}, COUNT(*) AS rows_per_key
FROM {{source_schema}}.{table}
GROUP BY {key}
HAVING COUNT(*) > 1
"""
_LISTINGS_EXTENDED = KnownRefusal(
    "fan_out",
    "dim_listings_extended declares listing primary, but holds a row per listing and day "
    "(10 listings, 36-37 rows each; no partition dimension declared); MetricFlow's check "
    "query joins fct_bookings_extended to it on listing_id, so each booking is summed once "
    "per snapshot row (the fan-out check, --fan-out, lists these pairs as DIFFERENT). Tally "
    "refuses the join with fan_out (tests/semantic/test_key_guard.py)",
    _REPEATED_KEY.format(key="listing_id", table="dim_listings_extended"),
)
_BRIDGE = KnownRefusal(
    "fan_out",
    "the fixture's bridge_table declares account_id primary but repeats 'a0' (customers 0 "
    "and 1); every join through it counts a0's transactions once per bridge row, as "
    "MetricFlow's check queries do; Tally refuses the join with fan_out "
    "(tests/semantic/test_key_guard.py)",
    _REPEATED_KEY.format(key="account_id", table="bridge_table"),
)

KNOWN_REFUSALS: dict[tuple[str, str], KnownRefusal] = {
    ("itest_granularity.yaml", "query_granularity_for_joined_dundered_dimension_day"): (
        _LISTINGS_EXTENDED
    ),
    ("itest_granularity.yaml", "query_granularity_for_joined_dundered_dimension_month"): (
        _LISTINGS_EXTENDED
    ),
    ("itest_granularity.yaml", "metrics_with_different_time_granularities_and_no_metric_time"): (
        _LISTINGS_EXTENDED
    ),
    ("itest_multi_hop_join.yaml", "multihop_join"): _BRIDGE,
    ("itest_multi_hop_join.yaml", "multihop_join_two_dims_different_sources"): _BRIDGE,
    ("itest_multi_hop_join.yaml", "multihop_join_two_dims_same_source"): _BRIDGE,
    ("itest_multi_hop_join.yaml", "mixed_length_joins"): _BRIDGE,
}
