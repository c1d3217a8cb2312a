"""The pieces of the MetricFlow itest runner that need neither a checkout nor Django.

``itests.py`` runs MetricFlow's own integration cases (``itest_*.yaml`` in a checkout of the
public dbt-labs/metricflow repository) through Tally. This module holds what can be tested
on its own (tests/scripts/test_itest_support.py):

- the check-query renderer: MetricFlow's ``CheckQueryHelpers`` (tests_metricflow/integration/
  test_configured_cases.py) as MetricFlow's DuckDB expression renderer prints them;
- table snapshots (``table_snapshot:`` YAML) → DuckDB DDL and typed rows;
- a case → the Tally query it asks for, or the reason Tally does not claim it;
- the row comparison (MetricFlow's ``check_data_tables_are_equal``: same columns, same row
  count, floats within a relative 1e-6, order ignored unless the case checks it).

Stdlib + PyYAML + Jinja2 only.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import yaml

# MetricFlow's IntegrationTestModel → the manifest folder it loads
# (tests_metricflow/integration/test_configured_cases.py, fixtures/manifest_fixtures.py).
MODEL_MANIFESTS = {
    "SIMPLE_MODEL": "simple_manifest",
    "SIMPLE_MODEL_NON_DS": "non_sm_manifest",
    "UNPARTITIONED_MULTI_HOP_JOIN_MODEL": "multi_hop_join_manifest",
    "PARTITIONED_MULTI_HOP_JOIN_MODEL": "partitioned_multi_hop_join_manifest",
    "EXTENDED_DATE_MODEL": "extended_date_manifest",
    "SCD_MODEL": "scd_manifest",
}
MANIFESTS_DIR = "metricflow_semantics/test_helpers/semantic_manifest_yamls"
CASES_DIR = "tests_metricflow/integration/test_cases"
SNAPSHOTS_DIR = "tests_metricflow/fixtures/source_table_snapshots"
# The placeholder MetricFlow's manifests use for their schema; its own harness substitutes it
# (mf_load_manifest_from_yaml_directory(..., template_mapping={"source_schema": …})).
SOURCE_SCHEMA_PLACEHOLDER = "$source_schema"
TIME_SPINE_TABLE = "mf_time_spine"
FLOAT_REL_TOL = 1e-6
# DuckDB cannot do approximate discrete percentiles; MetricFlow skips those cases there too.
DUCKDB_MISSING_FEATURES = {"APPROXIMATE_DISCRETE_PERCENTILE_AGGREGATION"}


class _Named:
    """An enum member as Jinja templates use it (``TimeGranularity.DAY``)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return self.value


class TimeGranularity:
    """The granularities check queries name (metricflow_semantic_interfaces' enum values)."""

    NANOSECOND = _Named("nanosecond")
    MICROSECOND = _Named("microsecond")
    MILLISECOND = _Named("millisecond")
    SECOND = _Named("second")
    MINUTE = _Named("minute")
    HOUR = _Named("hour")
    DAY = _Named("day")
    WEEK = _Named("week")
    MONTH = _Named("month")
    QUARTER = _Named("quarter")
    YEAR = _Named("year")


class DatePart:
    """The date parts check queries name."""

    YEAR = _Named("year")
    QUARTER = _Named("quarter")
    MONTH = _Named("month")
    DAY = _Named("day")
    DOW = _Named("dow")
    DOY = _Named("doy")


def _value(named: Any) -> str:
    return str(getattr(named, "value", named)).lower()


@dataclass(frozen=True)
class DuckDbCheckHelpers:
    """MetricFlow's CheckQueryHelpers, rendered as its DuckDB renderer does."""

    timestamp_type: str = "TIMESTAMP"
    double_data_type_name: str = "DOUBLE"

    def cast_expr_to_ts(self, expr: str) -> str:
        return f"CAST({expr} AS {self.timestamp_type})"

    def cast_to_ts(self, string_literal: str) -> str:
        return self.cast_expr_to_ts(f"'{string_literal}'")

    def render_time_constraint(
        self, expr: str, start_time: str | None = None, stop_time: str | None = None
    ) -> str:
        """``expr >= start AND expr < stop + 1 day`` (or + 1 second for a timestamp)."""
        param = start_time or stop_time
        assert param, "render_time_constraint needs start_time or stop_time"
        date_only = len(param) == 10
        fmt = "%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M:%S"
        parts = []
        if start_time:
            parts.append(f"{self.cast_expr_to_ts(expr)} >= {self.cast_to_ts(start_time)}")
        if stop_time:
            stop = dt.datetime.strptime(stop_time, fmt)
            stop += dt.timedelta(days=1) if date_only else dt.timedelta(seconds=1)
            parts.append(f"{self.cast_expr_to_ts(expr)} < {self.cast_to_ts(stop.strftime(fmt))}")
        return " AND ".join(parts)

    def render_date_sub(
        self, table_alias: str, column_alias: str, count: int, granularity: Any
    ) -> str:
        grain = _value(granularity)
        if grain == "quarter":  # DuckDB has no quarter interval unit in this form
            grain, count = "month", count * 3
        return f"{table_alias}.{column_alias} - INTERVAL {count} {grain}"

    def render_date_add(self, date_column: str, count_column: str, granularity: Any) -> str:
        grain = _value(granularity)
        count = count_column
        if grain == "quarter":
            grain, count = "month", f"({count_column} * 3)"
        return f"{date_column} + INTERVAL {count} {grain}"

    def render_date_trunc(self, expr: str, granularity: Any) -> str:
        return f"DATE_TRUNC('{_value(granularity)}', {self.cast_expr_to_ts(expr)})"

    def render_extract(self, expr: str, date_part: Any) -> str:
        part = _value(date_part)
        # MetricFlow extracts the ISO day of week so that every engine agrees.
        part = "isodow" if part == "dow" else part
        return f"EXTRACT({part} FROM {self.cast_expr_to_ts(expr)})"

    def render_percentile_expr(
        self,
        expr: str,
        percentile: float,
        use_discrete_percentile: bool,
        use_approximate_percentile: bool,
    ) -> str:
        if use_approximate_percentile:
            if use_discrete_percentile:
                raise ValueError("DuckDB has no approximate discrete percentile")
            return f"approx_quantile({expr}, {percentile})"
        function = "PERCENTILE_DISC" if use_discrete_percentile else "PERCENTILE_CONT"
        return f"{function}({percentile}) WITHIN GROUP (ORDER BY ({expr}))"

    def generate_random_uuid(self) -> str:
        return "GEN_RANDOM_UUID()"

    # Where filters are rendered twice (by the harness, then by the engine): these print
    # the engine's own Jinja.
    def render_dimension_template(self, name: str, entity_path: Sequence[str] = ()) -> str:
        return f"{{{{ Dimension('{name}', entity_path={list(entity_path)!r}) }}}}"

    def render_entity_template(self, name: str, entity_path: Sequence[str] = ()) -> str:
        return f"{{{{ Entity('{name}', entity_path={list(entity_path)!r}) }}}}"

    def render_metric_template(self, name: str, group_by: Sequence[str] = ()) -> str:
        return f"{{{{ Metric('{name}', group_by={list(group_by)!r}) }}}}"

    def render_time_dimension_template(
        self, name: str, time_granularity: str | None = None, entity_path: Sequence[str] = ()
    ) -> str:
        path = f"entity_path={list(entity_path)!r}"
        if time_granularity is not None:
            return f"{{{{ TimeDimension('{name}', '{time_granularity}', {path}) }}}}"
        return f"{{{{ TimeDimension('{name}', {path}) }}}}"


def render_template(text: str, *, source_schema: str, for_where: bool = False) -> str:
    """Renders a check query (or, with ``for_where``, a where filter) as MetricFlow's
    harness does for DuckDB.

    Example:
        >>> render_template("SELECT 1 FROM {{ source_schema }}.t", source_schema="s")
        'SELECT 1 FROM s.t'
    """
    helpers = DuckDbCheckHelpers()
    context: dict[str, Any] = {
        "source_schema": source_schema,
        "render_time_constraint": helpers.render_time_constraint,
        "TimeGranularity": TimeGranularity,
        "DatePart": DatePart,
        "render_date_sub": helpers.render_date_sub,
        "render_date_add": helpers.render_date_add,
        "render_date_trunc": helpers.render_date_trunc,
        "render_extract": helpers.render_extract,
        "render_percentile_expr": helpers.render_percentile_expr,
        "mf_time_spine_source": f"{source_schema}.{TIME_SPINE_TABLE}",
        "double_data_type_name": helpers.double_data_type_name,
        "generate_random_uuid": helpers.generate_random_uuid,
        "cast_to_ts": helpers.cast_to_ts,
    }
    if for_where:
        context.update(
            render_dimension_template=helpers.render_dimension_template,
            render_entity_template=helpers.render_entity_template,
            render_metric_template=helpers.render_metric_template,
            render_time_dimension_template=helpers.render_time_dimension_template,
        )
    return jinja2.Template(text, undefined=jinja2.StrictUndefined).render(**context)


# --------------------------------------------------------------------------- snapshots

DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "TIME": "TIMESTAMP",
    "FLOAT": "DOUBLE",
    "INT": "BIGINT",
    "BOOLEAN": "BOOLEAN",
}


@dataclass(frozen=True)
class TableSnapshot:
    """One ``table_snapshot:`` document: a table's columns (name, type) and rows."""

    name: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[Any, ...], ...]

    def create_sql(self, schema: str) -> str:
        cols = ", ".join(f'"{name}" {DUCKDB_TYPES[kind]}' for name, kind in self.columns)
        return f'CREATE TABLE {schema}."{self.name}" ({cols})'


def _cell(value: str | None, kind: str) -> Any:
    if value is None:
        return None
    if kind == "TIME":
        text = str(value)
        return dt.datetime.fromisoformat(text.replace("Z", "").replace(" ", "T")[:26])
    if kind == "INT":
        return int(value)
    if kind == "FLOAT":
        return float(value)
    if kind == "BOOLEAN":
        lowered = str(value).lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"not a boolean: {value!r}")
        return lowered == "true"
    return str(value)


def parse_snapshot(text: str) -> TableSnapshot:
    """A ``table_snapshot:`` YAML document → typed rows (all cells are strings in YAML).

    Example:
        >>> s = parse_snapshot("table_snapshot:\\n  table_name: t\\n  column_definitions:\\n"
        ...     "    - {name: n, type: INT}\\n  rows:\\n    - ['3']\\n")
        >>> s.rows
        ((3,),)
    """
    body = yaml.safe_load(text)["table_snapshot"]
    columns = tuple((str(c["name"]), str(c["type"])) for c in body["column_definitions"])
    rows = tuple(
        tuple(_cell(value, kind) for value, (_, kind) in zip(row, columns, strict=True))
        for row in body.get("rows") or ()
    )
    return TableSnapshot(str(body["table_name"]), columns, rows)


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class ItestCase:
    """One ``integration_test:`` document of an itest file."""

    file: str
    name: str
    model: str
    check_query: str
    raw: dict[str, Any] = field(hash=False, compare=False)

    @property
    def manifest(self) -> str:
        return MODEL_MANIFESTS[self.model]


def load_cases(path: Path) -> list[ItestCase]:
    """Every case of one itest YAML file, in file order."""
    cases = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        body = doc["integration_test"]
        cases.append(
            ItestCase(path.name, str(body["name"]), str(body["model"]), body["check_query"], body)
        )
    return cases


@dataclass(frozen=True)
class TallyRequest:
    """What a case asks Tally for (MetricQuery's fields, plus a saved query's name)."""

    metrics: tuple[str, ...]
    group_by: tuple[str, ...]
    where: tuple[str, ...]
    start_time: str | None
    end_time: str | None
    order_by: tuple[str, ...]
    limit: int | None
    saved_query: str | None = None
    min_max_only: bool = False
    apply_group_by: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "metrics": list(self.metrics),
            "group_by": list(self.group_by),
            "where": list(self.where),
            "start_time": self.start_time,
            "end_time": self.end_time,
            "order_by": list(self.order_by),
            "limit": self.limit,
            "saved_query": self.saved_query,
            "min_max_only": self.min_max_only,
            "apply_group_by": self.apply_group_by,
        }


def group_by_item(obj: dict[str, Any]) -> str:
    """A ``group_by_objs`` entry as a group-by name: a grain or a date part is a suffix
    (``metric_time__week``, ``metric_time__extract_year``, MetricFlow's column names).

    Example:
        >>> group_by_item({"name": "metric_time", "date_part": "dow"})
        'metric_time__extract_dow'
    """
    name = str(obj["name"])
    if obj.get("date_part"):
        return f"{name}__extract_{str(obj['date_part']).lower()}"
    if obj.get("grain"):
        return f"{name}__{str(obj['grain']).lower()}"
    return name


def case_request(case: ItestCase, *, source_schema: str) -> TallyRequest | str:
    """The Tally query a case asks for, or why Tally does not claim the case (a string).

    Example:
        >>> c = ItestCase("f", "n", "SIMPLE_MODEL", "", {"group_bys": ["m"], "min_max_only": True})
        >>> case_request(c, source_schema="s").min_max_only
        True
    """
    raw = case.raw
    missing = [f for f in raw.get("required_features") or () if f in DUCKDB_MISSING_FEATURES]
    if missing:
        return f"needs {', '.join(missing)}, which DuckDB lacks (MetricFlow skips it too)"
    group_by = [str(g) for g in raw.get("group_bys") or ()]
    group_by += [group_by_item(g) for g in raw.get("group_by_objs") or ()]
    where = ()
    if raw.get("where_filter"):
        where = (render_template(raw["where_filter"], source_schema=source_schema, for_where=True),)
    constraint = raw.get("time_constraint")
    return TallyRequest(
        metrics=tuple(str(m) for m in raw.get("metrics") or ()),
        group_by=tuple(group_by),
        where=where,
        start_time=str(constraint[0]) if constraint else None,
        end_time=str(constraint[1]) if constraint else None,
        order_by=tuple(str(o) for o in raw.get("order_bys") or ()),
        limit=raw.get("limit"),
        saved_query=raw.get("saved_query_name"),
        min_max_only=bool(raw.get("min_max_only")),
        apply_group_by=raw.get("apply_group_by") is not False,
    )


# --------------------------------------------------------------------------- comparison


def _normal(value: Any) -> Any:
    """A cell in a comparable form: numbers as float, a midnight timestamp as its date."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=None)
        if value.time() == dt.time(0):
            return value.date()
        return value
    return value


def cells_equal(expected: Any, actual: Any) -> bool:
    """Equal as MetricFlow's table comparison has them: floats within a relative 1e-6, NaN
    equal to NaN, a date equal to the midnight timestamp of that day.

    Example:
        >>> cells_equal(1.0, 1.0000001), cells_equal(dt.date(2020, 1, 1), dt.datetime(2020, 1, 1))
        (True, True)
    """
    a, b = _normal(expected), _normal(actual)
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=FLOAT_REL_TOL, abs_tol=1e-9)
    return bool(a == b) and type(a) is type(b)


def _sort_key(row: Sequence[Any]) -> tuple[tuple[int, Any], ...]:
    key = []
    for value in row:
        v = _normal(value)
        if v is None:
            key.append((4, ""))
        elif isinstance(v, bool):
            key.append((0, int(v)))
        elif isinstance(v, float):
            key.append((1, round(v, 6) if not math.isnan(v) else math.inf))
        elif isinstance(v, (dt.date, dt.datetime)):
            key.append((2, v.isoformat()))
        else:
            key.append((3, str(v)))
    return tuple(key)


@dataclass(frozen=True)
class Comparison:
    ok: bool
    message: str = ""


def compare_tables(
    expected_columns: Sequence[str],
    expected_rows: Sequence[Sequence[Any]],
    actual_columns: Sequence[str],
    actual_rows: Sequence[Sequence[Any]],
    *,
    check_order: bool = False,
    allow_empty: bool = False,
) -> Comparison:
    """MetricFlow's check: the same column names (any order, case-insensitive), the same row
    count, equal cells; rows in any order unless ``check_order``. When the names differ but
    the values agree position by position, the message says so (a naming gap, not a number).

    Example:
        >>> compare_tables(["a", "n"], [["x", 1]], ["n", "a"], [[1.0, "x"]]).ok
        True
    """
    exp_names = [c.lower() for c in expected_columns]
    act_names = [c.lower() for c in actual_columns]
    if len(exp_names) != len(act_names):
        return Comparison(False, f"columns {act_names} where MetricFlow has {exp_names}")
    renamed = sorted(exp_names) != sorted(act_names)
    # Columns with the same name pair up; the others pair in the order they come (this
    # only tells whether the values are right under other names).
    spare = [i for i, name in enumerate(act_names) if name not in exp_names]
    order = [act_names.index(name) if name in act_names else spare.pop(0) for name in exp_names]
    actual = [[row[i] for i in order] for row in actual_rows]
    expected = [list(row) for row in expected_rows]
    if not expected and not allow_empty:
        return Comparison(False, "the check query returned no rows (the case is misconfigured)")
    if len(expected) != len(actual):
        return Comparison(
            False, f"{len(actual)} rows where MetricFlow's check query returns {len(expected)}"
        )
    if not check_order:
        expected.sort(key=_sort_key)
        actual.sort(key=_sort_key)
    for index, (exp_row, act_row) in enumerate(zip(expected, actual, strict=True)):
        for col, (e, a) in enumerate(zip(exp_row, act_row, strict=True)):
            if not cells_equal(e, a):
                where = "" if renamed else f" column {exp_names[col]!r}"
                return Comparison(
                    False,
                    f"row {index}{where}: {a!r} where the check query has {e!r}"
                    + (f" (columns {act_names} vs {exp_names})" if renamed else ""),
                )
    if renamed:
        return Comparison(
            False, f"values agree but the columns are named {act_names}, MetricFlow's {exp_names}"
        )
    return Comparison(True)
