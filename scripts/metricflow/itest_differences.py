"""MetricFlow itest cases whose expected rows Tally deliberately does not give, and why.

Each entry names the case, a verdict and the reason, and carries a check query of our own
(DuckDB, ``{source_schema}`` for the snapshots' schema) that states the answer Tally gives.
``itests.py`` reports such a case as "MetricFlow differs" only when Tally's rows differ from
MetricFlow's check query AND equal this query's rows; anything else is still a failure, so
an entry cannot hide a regression. Tests of our own cover each behaviour (named below).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownDifference:
    verdict: str  # "MetricFlow wrong" | "MetricFlow approximate"
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
}
