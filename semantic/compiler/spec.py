"""MetricQuery: what a user asks for, as a frozen value (the cache key, once normalised)."""

from __future__ import annotations

from dataclasses import dataclass

DIALECTS = (
    "duckdb",
    "postgres",
    "mysql",
    "snowflake",
    "bigquery",
    "redshift",
    "databricks",
    "spark",
    "trino",
    "clickhouse",
)
MAX_LIMIT = 10_000_000


@dataclass(frozen=True)
class MetricQuery:
    """Metrics × group-by × where × time range, filtered on its outputs (having), ordered
    and limited, for one dialect.

    Example:
        >>> MetricQuery(metrics=("revenue",), group_by=("metric_time__month",)).dialect
        'duckdb'
    """

    metrics: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    start_time: str | None = None
    end_time: str | None = None
    order_by: tuple[str, ...] = ()
    limit: int | None = None
    dialect: str = "duckdb"
    # Queries without metrics only (MetricFlow's options of the same names): the min and
    # max of the one group-by item instead of its values; every joined row, not each
    # combination once (apply_group_by=False keeps duplicates).
    min_max_only: bool = False
    apply_group_by: bool = True
    # Conditions on the query's output columns (its metrics and group-by items), applied to
    # the combined result before order and limit: SQL's HAVING (semantic.compiler.having).
    having: tuple[str, ...] = ()

    def cache_key(self) -> tuple[object, ...]:
        """Normalised identity: the case of group-by and order items and the whitespace
        around a filter do not matter. A filter's text is otherwise kept as written: folding
        whitespace inside it would also fold it inside string literals, so ``'a  b'`` and
        ``'a b'`` would share one compile (another query's SQL served and audited).

        Example:
            >>> a = MetricQuery(metrics=("m",), where=("{{ Dimension('u__n') }} = 'a  b'",))
            >>> b = MetricQuery(metrics=("m",), where=("{{ Dimension('u__n') }} = 'a b'",))
            >>> a.cache_key() == b.cache_key()
            False
        """
        return (
            tuple(m.strip().lower() for m in self.metrics),
            tuple(g.strip().lower() for g in self.group_by),
            tuple(w.strip() for w in self.where),
            self.start_time,
            self.end_time,
            tuple(o.strip().lower() for o in self.order_by),
            self.limit,
            self.dialect,
            self.min_max_only,
            self.apply_group_by,
            tuple(h.strip() for h in self.having),
        )
