"""What a value trace returns: the trace itself (:class:`ValueTrace`) and its drill-down reads
(:class:`DrillDown`), as the API's JSON (``as_dict``) and as the CLI's readable report
(``lines``). ``lineage.trace.value_trace`` gathers them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from registry.models import Release
from semantic.compiler.drilldown import DrillDownPart
from semantic.models import ComputeRun, MetricValue


@dataclass(frozen=True)
class DrillDown:
    """One drill-down read with its SQL (and, when asked, the rows it returns)."""

    part: DrillDownPart
    sql: str
    dialect: str
    columns: tuple[str, ...] | None = None
    rows: tuple[tuple[Any, ...], ...] | None = None
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        part = self.part
        out: dict[str, Any] = {
            "role": part.role,
            "metric": part.metric,
            "measure": part.measure,
            "agg": part.agg,
            "semantic_model": part.semantic_model,
            "table": part.table,
            "first_day": part.first_day.isoformat() if part.first_day else None,
            "last_day": part.last_day.isoformat(),
            "filters": list(part.filters),
            "reaggregate": part.reaggregate,
            "exact": part.exact,
            "notes": list(part.notes),
            "dialect": self.dialect,
            "sql": self.sql,
        }
        if self.rows is not None:
            out["columns"] = list(self.columns or ())
            out["rows"] = [list(r) for r in self.rows]
            out["truncated"] = self.truncated
        return out


@dataclass(frozen=True)
class ValueTrace:
    """Everything an auditor needs to re-derive one stored value."""

    value: MetricValue
    run: ComputeRun
    release: Release
    metric_version: str
    period_end: dt.date
    definitions: tuple[dict[str, Any], ...]
    contracts: tuple[dict[str, Any], ...]
    compiled_sql: str
    compiled_dialect: str
    query: dict[str, Any]
    sql_matches_run: bool | None
    lineage: dict[str, Any]
    source_columns: tuple[dict[str, Any], ...]
    drilldown: tuple[DrillDown, ...]
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        value, run = self.value, self.run
        return {
            "value": {
                "id": value.pk,
                "metric": value.metric_name,
                "metric_version": self.metric_version,
                "release": value.release.name,
                "grain": value.grain,
                "period_start": value.period_start.isoformat(),
                "period_end": self.period_end.isoformat(),
                "slice": value.slice,
                "value": value.value,
                "computed_at": value.computed_at.isoformat(),
                "revision_count": value.revision_count,
            },
            "run": {
                "id": run.pk,
                "status": run.status,
                "release": self.release.name,
                "metrics": run.metrics,
                "grain": run.grain,
                "start": run.start.isoformat(),
                "end": run.end.isoformat(),
                "slices": run.slices,
                "as_of": run.as_of.isoformat() if run.as_of else None,
                "created_at": run.created_at.isoformat(),
                "started_at": run.started_at.isoformat() if run.started_at else None,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "warehouse": run.warehouse,
                "sql_hash": run.sql_hash,
            },
            "definitions": list(self.definitions),
            "contracts": list(self.contracts),
            "compiled": {
                "dialect": self.compiled_dialect,
                "query": self.query,
                "sql": self.compiled_sql,
                "matches_run_sql_hash": self.sql_matches_run,
            },
            "source_columns": list(self.source_columns),
            "lineage": self.lineage,
            "drilldown": [d.as_dict() for d in self.drilldown],
            "notes": list(self.notes),
        }

    def lines(self) -> Iterator[str]:
        """A readable report, section by section."""
        value, run = self.value, self.run
        shown = ", ".join(f"{k}={v}" for k, v in sorted(value.slice.items())) or "all"
        yield f"value {value.pk}: {value.metric_name}@{self.metric_version} = {value.value}"
        yield (
            f"  {value.grain} {value.period_start} .. {self.period_end}, slice {shown}, "
            f"release {value.release.name}"
        )
        ended = f", finished {run.finished_at:%Y-%m-%d %H:%M:%S}" if run.finished_at else ""
        for note in self.notes:
            yield f"  note: {note}"
        yield (
            f"run {run.pk}: {run.status}, release {self.release.name}, {run.grain} "
            f"{run.start} .. {run.end}{ended}"
        )
        yield ""
        yield "definitions:"
        for item in self.definitions:
            yield f"  {item['kind']} {item['name']}@{item['version']}"
        yield "contracts of the tables read:"
        for item in self.contracts or ({"name": "none", "version": "", "tables": []},):
            tables = ", ".join(item["tables"])
            yield f"  {item['name']} {item['version']}  ({tables})"
        yield "source columns:"
        for column in self.source_columns:
            yield f"  {column['column']}  [{column['type']}, {column['subtype']}]"
        yield ""
        check = {True: "matches the run's sql_hash", False: "DIFFERS from the run's sql_hash",
                 None: "not checked against the run's sql_hash"}[self.sql_matches_run]  # fmt: skip
        yield f"compiled SQL ({self.compiled_dialect}; {check}):"
        yield from ("  " + line for line in self.compiled_sql.splitlines())
        yield ""
        yield "lineage (upstream of the value):"
        yield from ("  " + line for line in self._tree_lines(self.lineage, 0))
        for drill in self.drilldown:
            part = drill.part
            yield ""
            first = part.first_day or "the first row"
            yield (
                f"drill-down [{part.role}] {part.metric}: {part.agg} of {part.measure} on "
                f"{part.table}, rows {first} .. {part.last_day}"
            )
            exact = "equals" if part.exact else "is not simply"
            yield f"  {part.reaggregate} over these rows {exact} the input's value"
            for note in part.notes:
                yield f"  note: {note}"
            yield from ("  " + line for line in drill.sql.splitlines())
            if drill.rows is not None:
                yield f"  rows ({len(drill.rows)}{', truncated' if drill.truncated else ''}):"
                yield "  " + " | ".join(drill.columns or ())
                for row in drill.rows:
                    yield "  " + " | ".join("NULL" if v is None else str(v) for v in row)

    def _tree_lines(self, hop: dict[str, Any], depth: int) -> Iterator[str]:
        arrow = f"← [{hop['edge']}{'' if hop['subtype'] == 'direct' else ', indirect'}] "
        expr = f"  = {hop['expr']}" if hop["expr"] else ""
        yield f"{'  ' * depth}{arrow if depth else ''}{hop['kind']} {hop['label']}{expr}"
        for child in hop["upstream"]:
            yield from self._tree_lines(child, depth + 1)
