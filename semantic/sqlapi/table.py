"""The ``tally.metrics`` table a release exposes to SQL clients.

One wide table: a column per group-by item any metric accepts (entities, dimensions, every
time dimension at each grain, ``metric_time__day`` … ``__year``) and a column per metric.
A query picks some metrics and some group-by columns; the compiler then refuses a
combination a metric cannot be grouped by, with its own message. One table (rather than a
table per domain) keeps BI tools' joins out of the picture: every question is one SELECT.

Django-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from semantic.compiler.api import queryable_items
from semantic.compiler.date_parts import EXTRACT_PREFIX
from semantic.compiler.grains import GRAINS
from semantic.compiler.manifest import Manifest

SCHEMA = "tally"
TABLE = "metrics"

ColumnRole = Literal["metric", "dimension", "time", "entity"]
# PostgreSQL type names the catalog declares; wire.py maps them to OIDs and text output.
PgType = Literal["varchar", "date", "numeric", "int8", "bool"]

# Simple metrics over these aggregations always yield whole numbers.
_INTEGER_AGGS = frozenset({"count", "count_distinct", "sum_boolean"})


@dataclass(frozen=True)
class SqlColumn:
    """One column of ``tally.metrics``.

    Attributes:
        name: the metric or group-by item name, as MetricFlow spells it.
        role: what the column maps onto in a MetricQuery.
        pg_type: the PostgreSQL type clients see.
        description: the metric's description (column comment), or a line naming the item.
        filter_call: for group-by columns, the Jinja item a WHERE on it becomes
            (``Dimension('account__plan')``), without the braces.
    """

    name: str
    role: ColumnRole
    pg_type: PgType
    description: str
    filter_call: str = ""


@dataclass(frozen=True)
class SqlTable:
    """The columns of ``tally.metrics`` for one release."""

    release: str
    columns: tuple[SqlColumn, ...]
    by_name: Mapping[str, SqlColumn] = field(default_factory=dict, compare=False)

    def column(self, name: str) -> SqlColumn | None:
        """The column named ``name`` (case-insensitive), or None."""
        return self.by_name.get(name.lower())


def _metric_type(manifest: Manifest, name: str) -> PgType:
    metric = manifest.metrics[name]
    if metric.type != "simple":
        return "numeric"
    measure = (metric.spec.get("type_params") or {}).get("measure")
    measure_name = measure.get("name") if isinstance(measure, Mapping) else measure
    found = manifest.measures.get(str(measure_name))
    return "int8" if found is not None and found.agg in _INTEGER_AGGS else "numeric"


def _group_by_column(manifest: Manifest, item: str) -> SqlColumn:
    parts = item.split("__")
    time_dims = {
        dim.name
        for model in manifest.semantic_models.values()
        for dim in model.dimensions.values()
        if dim.type == "time"
    }
    entities = {name for model in manifest.semantic_models.values() for name in model.entities}
    if len(parts) > 1 and parts[-1].startswith(EXTRACT_PREFIX):
        base, part = "__".join(parts[:-1]), parts[-1][len(EXTRACT_PREFIX) :]
        return SqlColumn(
            item,
            "time",
            "int8",
            f"{base}: {part} (ISO numbering for week and dow)",
            f"TimeDimension('{base}', date_part_name='{part}')",
        )
    if len(parts) > 1 and parts[-1] in GRAINS:
        base = "__".join(parts[:-1])
        return SqlColumn(
            item,
            "time",
            "date",
            f"{base} by {parts[-1]}",
            f"TimeDimension('{base}', '{parts[-1]}')",
        )
    if item == "metric_time" or parts[-1] in time_dims:
        return SqlColumn(item, "time", "date", f"{item} (day)", f"TimeDimension('{item}')")
    if parts[-1] in entities and not any(
        parts[-1] in model.dimensions for model in manifest.semantic_models.values()
    ):
        return SqlColumn(item, "entity", "varchar", f"entity {item}", f"Entity('{item}')")
    return SqlColumn(item, "dimension", "varchar", f"dimension {item}", f"Dimension('{item}')")


def sql_table_build(manifest: Manifest) -> SqlTable:
    """The ``tally.metrics`` columns of a release: group-by items first, then metrics.

    Example:
        >>> from semantic.compiler.manifest import build_manifest
        >>> sql_table_build(build_manifest([], release="r0")).columns
        ()
    """
    items: set[str] = set()
    for name in manifest.metrics:
        items.update(queryable_items(manifest, name))
    columns = [_group_by_column(manifest, item) for item in sorted(items)]
    for name in sorted(manifest.metrics):
        spec = manifest.metrics[name].spec
        description = str(spec.get("description") or spec.get("label") or f"metric {name}")
        columns.append(SqlColumn(name, "metric", _metric_type(manifest, name), description.strip()))
    # A metric and a group-by item never share a name in a valid manifest; first one wins.
    by_name: dict[str, SqlColumn] = {}
    for column in columns:
        by_name.setdefault(column.name.lower(), column)
    return SqlTable(release=manifest.release, columns=tuple(columns), by_name=by_name)
