"""Definitions checked against the warehouse (``tally validate --warehouse``, proposal checks).

Runs the probes of ``semantic.compiler.warehouse_probes`` on the configured warehouse and
records each refusal as an issue at the definition's ``file:line``: a table that cannot be
read, a column an expression reads that the table lacks (with the closest names), an
expression whose type does not fit (a time dimension that cannot be truncated, a sum over
text), a dimension whose values cannot be selected. As ``mf validate-configs`` does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from typing import Any

from registry.definitions.dbt_profiles import missing_table_hint
from registry.definitions.issues import Severity, did_you_mean
from registry.definitions.objects import SEMANTIC_MODEL, Project, line_at
from semantic.compiler.manifest import build_manifest
from semantic.compiler.warehouse_probes import Probe, columns_read, manifest_probes
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connections import WarehouseUnavailable, warehouse_ping
from semantic.warehouse.execute import execute
from semantic.warehouse.held import HeldDuckDB
from tally.errors import WarehouseError

PROBE_TIMEOUT_S = 30.0
MSG_TABLE = "semantic model {model!r} reads {table}, which the warehouse cannot read{why}"
MSG_COLUMN = (
    "{element} of semantic model {model!r} reads column {column!r}, which {table} does not have"
)
MSG_TYPE = "{element} of semantic model {model!r} (expr: {expr}) does not work on {table}{why}"
MSG_KEY = (
    "{element} of semantic model {model!r} is declared {kind}, but {table} holds several rows "
    "for one key{per}; a join on it would count each joined row once per duplicate"
)
HINT_KEY = (
    "make the key unique in the table, declare the entity foreign (or natural, for an SCD "
    "type II model), or mark the snapshot column as a partition dimension (is_partition: true)"
)
MSG_OVERLAP = (
    "{element} of semantic model {model!r} is the natural key of an SCD type II model (valid "
    "from {start!r} to {end!r}), but {table} holds {rows} rows of one key valid at the same "
    "time{example}; a join through its validity window would count each joined row once per "
    "overlapping row"
)
# The example is data (a key value, its dates): named to the definitions' author only.
EXAMPLE_OVERLAP = " (e.g. key {key}: {rows} rows valid from {start} to {end})"
HINT_OVERLAP = (
    "end each row's window where the key's next row starts ({end!r} = the next {start!r}; "
    "NULL only on the current row), or declare the entity foreign if the model is no SCD"
)
MSG_UNREACHABLE = "cannot check definitions against the warehouse {url}: {reason}"
_GROUPS = {"entity": "entities", "dimension": "dimensions", "measure": "measures"}


def _element_line(obj: Any, element: str) -> int:
    """The line of ``dimension 'plan'`` inside a semantic model's source, else the model's."""
    kind, _, quoted = element.partition(" ")
    group = _GROUPS.get(kind)
    source = obj.source
    if group is None or not isinstance(source, Mapping):
        return int(obj.line)
    name = quoted.strip("'")
    for index, item in enumerate(source.get(group) or ()):
        if isinstance(item, Mapping) and item.get("name") == name:
            return line_at(source, [group, index]) or int(obj.line)
    return int(obj.line)


def _type_hint(probe: Probe) -> str:
    if probe.reads_rows:
        return "the expression binds, but selecting its values failed on the data itself"
    if probe.element.startswith("measure"):
        return "the measure's agg must fit the expression's type (sum and average need a number)"
    if "DATE_TRUNC" in probe.sql.upper() or "TIMESTAMP_TRUNC" in probe.sql.upper():
        return "a time dimension's expression must be a date or a timestamp"
    return "check the expression against the table's columns and their types"


def _why(exc: WarehouseError, show_warehouse_text: bool) -> str:
    raw = getattr(exc, "warehouse_message", None) or exc.message
    if not show_warehouse_text:
        return ""
    return ": " + str(raw).strip().splitlines()[0][:300]


def definitions_check_warehouse(
    project: Project,
    *,
    config: WarehouseConfig,
    show_warehouse_text: bool = True,
    timeout_s: float = PROBE_TIMEOUT_S,
    unreachable: Severity = Severity.ERROR,
) -> bool:
    """Adds an error to ``project.issues`` for every probe the warehouse refuses.

    Returns False (and adds a ``warehouse_unreachable`` issue of severity ``unreachable``)
    when the warehouse cannot be reached, True when the checks ran. ``show_warehouse_text`` puts the engine's own first
    line into messages (the CLI, for the definitions' author; not API responses).
    """
    try:
        warehouse_ping(config)
    except (WarehouseUnavailable, WarehouseError) as exc:
        project.issues.add(
            "warehouse_unreachable",
            MSG_UNREACHABLE.format(url=config.display_url, reason=exc),
            file=project.root,
            hint="check WAREHOUSE_URL; leave out --warehouse to check the definitions alone",
            severity=unreachable,
        )
        return False
    rows = [(kind, name, obj.spec, "0.0") for (kind, name), obj in project.objects.items()]
    manifest = build_manifest(rows)
    held = _held_for(config, timeout_s)
    try:
        return _run_probes(
            project, manifest, config, held, timeout_s, show_warehouse_text, unreachable
        )
    finally:
        if held is not None:
            held.release()


def _held_for(config: WarehouseConfig, timeout_s: float) -> HeldDuckDB | None:
    """A DuckDB file opened once for all the probes (each runs on a cursor of its own, a
    session of its own): opening the file reads its catalog, ~25 ms of CPU per probe, and a
    project has a hundred probes. None for the other engines and for an in-memory DuckDB
    (a new, empty database per connection: nothing to hold)."""
    if config.engine != "duckdb" or config.path in (None, ":memory:"):
        return None
    # idle_s only bounds a check that stalls between probes; the check releases it at the end.
    return HeldDuckDB(config.path, idle_s=max(timeout_s, PROBE_TIMEOUT_S))


def _run_probes(
    project: Project,
    manifest: Any,
    config: WarehouseConfig,
    held: HeldDuckDB | None,
    timeout_s: float,
    show_warehouse_text: bool,
    unreachable: Severity,
) -> bool:
    table_columns: dict[str, set[str] | None] = {}
    failed: set[tuple[str, str]] = set()
    for probe in manifest_probes(manifest, config.dialect):
        if probe.model in table_columns and table_columns[probe.model] is None:
            continue  # the table itself failed: one error says so
        if (probe.model, probe.element) in failed:
            continue  # its binding failed: reading its values would say it again
        try:
            result = execute(config, probe.sql, timeout_s=timeout_s, row_cap=1, held=held)
        except WarehouseError as exc:
            if exc.code == "warehouse_unavailable":
                # Lost mid-way (or locked by another process): not a finding about a table.
                project.issues.add(
                    "warehouse_unreachable",
                    MSG_UNREACHABLE.format(url=config.display_url, reason=exc.message),
                    file=project.root,
                    hint="check WAREHOUSE_URL and run the check again",
                    severity=unreachable,
                )
                return False
            failed.add((probe.model, probe.element))
            _record(project, manifest, probe, exc, table_columns, show_warehouse_text)
            continue
        if probe.element == "table":
            table_columns[probe.model] = {c.name.lower() for c in result.columns}
        if probe.finds_rows and result.rows:
            _record_key(project, manifest, probe, result.rows[0], show_warehouse_text)
    return True


def _record_key(
    project: Project, manifest: Any, probe: Probe, row: tuple[Any, ...], show_data: bool
) -> None:
    """A primary or unique key that the data repeats (the probe returned a key value, which
    the message leaves out: it is data, not definitions), or an SCD type II natural key two
    of whose rows are valid at once (its example key and window named when ``show_data``)."""
    obj = project.get(SEMANTIC_MODEL, probe.model)
    model = manifest.semantic_models[probe.model]
    entity = model.entities[probe.element.partition(" ")[2].strip("'")]
    table = ".".join(p for p in model.relation if p)
    file = obj.file if obj is not None else project.root
    line = _element_line(obj, probe.element) if obj is not None else 0
    if entity.type == "natural" and model.validity is not None:
        # The overlap probe's row: (key, rows valid together, from, to); to NULL: still open.
        key, rows, start, end = row[:4]
        start_dim, end_dim = (model.dimensions[name] for name in model.validity)
        example = EXAMPLE_OVERLAP.format(
            key=_shown(key), rows=rows, start=_shown(start),
            end="now (open)" if end is None else _shown(end),
        )  # fmt: skip
        project.issues.add(
            "warehouse_key_not_unique",
            MSG_OVERLAP.format(
                element=probe.element, model=probe.model, start=start_dim.name,
                end=end_dim.name, table=table, rows=rows, example=example if show_data else "",
            ),
            file=file, line=line, hint=HINT_OVERLAP.format(start=start_dim.expr, end=end_dim.expr),
            object=probe.model,
        )  # fmt: skip
        return
    parts = [d.name for d in model.dimensions.values() if d.is_partition]
    project.issues.add(
        "warehouse_key_not_unique",
        MSG_KEY.format(
            element=probe.element,
            model=probe.model,
            kind=entity.type,
            table=table,
            per=f" and {', '.join(parts)}" if parts else "",
        ),
        file=file,
        line=line,
        hint=HINT_KEY,
        object=probe.model,
    )


def _shown(value: Any) -> str:
    """A value of the data as a message shows it: dates without a midnight time, at most
    60 characters."""
    if isinstance(value, str) and len(value) == 19:
        # MariaDB's truncation (DATE_ADD on a text origin) returns text, not a DATETIME.
        with contextlib.suppress(ValueError):
            value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time() and value.tzinfo is None:
        value = value.date()
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _record(
    project: Project,
    manifest: Any,
    probe: Probe,
    exc: WarehouseError,
    table_columns: dict[str, set[str] | None],
    show_warehouse_text: bool,
) -> None:
    obj = project.get(SEMANTIC_MODEL, probe.model)
    file = obj.file if obj is not None else project.root
    line = _element_line(obj, probe.element) if obj is not None else 0
    relation = manifest.semantic_models[probe.model].relation
    table = ".".join(p for p in relation if p)
    if probe.element == "table":
        table_columns[probe.model] = None
        project.issues.add(
            "warehouse_table",
            MSG_TABLE.format(model=probe.model, table=table, why=_why(exc, show_warehouse_text)),
            file=file,
            line=obj.line if obj is not None else 0,
            hint=missing_table_hint(project.dbt_profiles)
            or "create the table, or point model:/node_relation at the one that holds it",
            object=probe.model,
        )
        return
    known = table_columns.get(probe.model) or set()
    missing = [c for c in columns_read(probe.expr or "") if known and c.lower() not in known]
    if missing:
        project.issues.add(
            "warehouse_column",
            MSG_COLUMN.format(
                element=probe.element, model=probe.model, column=missing[0], table=table
            ),
            file=file,
            line=line,
            hint=did_you_mean(missing[0], sorted(known))
            or f"{table} has {', '.join(sorted(known))}",
            object=probe.model,
        )
        return
    project.issues.add(
        "warehouse_type" if not probe.reads_rows else "warehouse_values",
        MSG_TYPE.format(
            element=probe.element,
            model=probe.model,
            expr=probe.expr,
            table=table,
            why=_why(exc, show_warehouse_text),
        ),
        file=file,
        line=line,
        hint=_type_hint(probe),
        object=probe.model,
    )
