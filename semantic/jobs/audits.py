"""Audits: contract rules against the live warehouse, anomalies in stored series, reconciliation.

Every check yields one ``AuditResult`` (pass / fail / error) with severity, what was observed
and expected, and ``evidence_sql``: a query that shows the offending rows (or the measurement)
on the warehouse, in its dialect. Checks:

* ``schema_drift``: information_schema columns vs the contract (missing = error, extra and
  type changes = warning);
* contract quality rules (ODCS ``quality``): ``nullValues``, ``duplicateValues`` (percent
  when ``unit: percent``: the duplicate-event share), ``invalidValues`` (accepted values),
  ``rowCount`` bounds and ``type: sql`` rules; ``required``/``unique`` properties without an
  explicit rule get a null / duplicate check;
* ``freshness``: newest value of the SLA element vs ``now`` minus the freshness SLA;
* ``anomaly``: each recent stored daily value against the same weekday of the previous
  weeks: median ± K × 1.4826 × MAD (robust to the outliers it looks for); the expected range
  is stored for the UI;
* ``reconcile``: a random sample of stored values recomputed from the warehouse.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlglot
from django.conf import settings
from django.utils import timezone

from registry.models import Kind, Release, ReleaseItem
from semantic.anomaly import ANOMALY_WEEKS, anomaly_band
from semantic.compiler.spec import MetricQuery
from semantic.jobs.alerts import audit_alerts_send, metric_owners
from semantic.jobs.compute import UNIT_DAYS
from semantic.jobs.periods import as_date, canonical_value
from semantic.models import AuditResult, MetricValue
from semantic.services import compile_metric_query, release_resolve
from tally.errors import UserError, WarehouseError

ANOMALY_RECENT_DAYS = 14
RECONCILE_SAMPLE = 20
_EMPTY_SLICE = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # sha256("{}")


@dataclass
class Finding:
    check: str
    target: str
    status: str
    message: str
    severity: str = "error"
    observed: Any = None
    expected: Any = None
    evidence_sql: str = ""
    owner: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: Any) -> str:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class _Warehouse:
    """Runs DuckDB-dialect audit SQL on the configured warehouse, transpiled for it."""

    def __init__(self) -> None:
        self.config = settings.WAREHOUSE

    def sql(self, text: str) -> str:
        if self.config.dialect == "duckdb":
            return text
        return sqlglot.transpile(text, read="duckdb", write=self.config.dialect)[0]

    def scalar(self, text: str) -> Any:
        from semantic.warehouse.execute import execute

        rows = execute(self.config, self.sql(text), timeout_s=120, row_cap=10).rows
        return rows[0][0] if rows else None

    def rows(self, text: str) -> tuple[tuple[Any, ...], ...]:
        from semantic.warehouse.execute import execute

        return execute(self.config, self.sql(text), timeout_s=120, row_cap=100_000).rows


# --------------------------------------------------------------------------- contracts


def _owner(spec: dict[str, Any]) -> str:
    for prop in spec.get("customProperties") or ():
        if prop.get("property") == "owner":
            return str(prop.get("value") or "")
    return ""


def _compare(value: float, rule: dict[str, Any]) -> tuple[bool, str]:
    """Whether ``value`` satisfies the rule's ODCS operator, and the operator as text."""
    checks = (
        ("mustBe", lambda v, t: v == t, "="),
        ("mustNotBe", lambda v, t: v != t, "!="),
        ("mustBeGreaterThan", lambda v, t: v > t, ">"),
        ("mustBeGreaterOrEqualTo", lambda v, t: v >= t, ">="),
        ("mustBeLessThan", lambda v, t: v < t, "<"),
        ("mustBeLessOrEqualTo", lambda v, t: v <= t, "<="),
    )
    for key, test, text in checks:
        if key in rule:
            return test(value, float(rule[key])), f"{text} {rule[key]}"
    if "mustBeBetween" in rule:
        low, high = rule["mustBeBetween"]
        return float(low) <= value <= float(high), f"between {low} and {high}"
    return value == 0, "= 0"


def _rule_sql(table: str, column: str | None, rule: dict[str, Any]) -> tuple[str, str] | None:
    """(measurement SQL, evidence SQL listing offending rows) for one quality rule."""
    metric = rule.get("metric") or ("sql" if rule.get("type") == "sql" else None)
    col = _q(column) if column else None
    percent = str(rule.get("unit", "")).lower() == "percent"
    if metric == "nullValues" and col:
        measure = f"COUNT(*) FILTER (WHERE {col} IS NULL)"
        evidence = f"SELECT * FROM {table} WHERE {col} IS NULL LIMIT 100"
    elif metric == "duplicateValues" and col:
        measure = f"COUNT({col}) - COUNT(DISTINCT {col})"
        evidence = (
            f"SELECT {col}, COUNT(*) AS copies FROM {table} GROUP BY {col} "
            f"HAVING COUNT(*) > 1 ORDER BY copies DESC LIMIT 100"
        )
    elif metric == "invalidValues" and col:
        valid = (rule.get("arguments") or {}).get("validValues") or []
        listed = ", ".join(_lit(v) for v in valid) or "NULL"
        measure = f"COUNT(*) FILTER (WHERE {col} IS NOT NULL AND {col} NOT IN ({listed}))"
        evidence = (
            f"SELECT {col}, COUNT(*) AS n FROM {table} WHERE {col} IS NOT NULL AND "
            f"{col} NOT IN ({listed}) GROUP BY {col} LIMIT 100"
        )
    elif metric == "rowCount":
        return f"SELECT COUNT(*) FROM {table}", f"SELECT COUNT(*) FROM {table}"
    elif metric == "sql" and rule.get("query"):
        return str(rule["query"]), str(rule["query"])
    else:
        return None
    if percent:
        measure = f"100.0 * ({measure}) / NULLIF(COUNT(*), 0)"
    return f"SELECT {measure} FROM {table}", evidence


def _contract_checks(
    wh: _Warehouse, name: str, spec: dict[str, Any], now: dt.datetime
) -> Iterator[Finding]:
    owner = _owner(spec)
    schema = next((s.get("schema") for s in spec.get("servers") or () if s.get("schema")), None)
    for obj in spec.get("schema") or ():
        table_name = str(obj.get("physicalName") or obj.get("name"))
        table = f"{_q(schema)}.{_q(table_name)}" if schema else _q(table_name)
        yield from _schema_drift(wh, name, schema, table_name, obj, owner)
        rules: list[tuple[str | None, dict[str, Any]]] = [
            (None, r) for r in obj.get("quality") or ()
        ]
        for prop in obj.get("properties") or ():
            column = str(prop.get("physicalName") or prop.get("name"))
            explicit = [r for r in prop.get("quality") or ()]
            kinds = {r.get("metric") for r in explicit}
            if prop.get("required") and "nullValues" not in kinds:
                explicit.append({"metric": "nullValues", "mustBe": 0, "severity": "error"})
            if (prop.get("unique") or prop.get("primaryKey")) and "duplicateValues" not in kinds:
                explicit.append({"metric": "duplicateValues", "mustBe": 0, "severity": "error"})
            rules += [(column, r) for r in explicit]
        for column, rule in rules:
            yield _rule_check(wh, name, table, table_name, column, rule, owner)
    yield from _freshness(wh, name, spec, schema, now, owner)


def _schema_drift(
    wh: _Warehouse,
    contract: str,
    schema: str | None,
    table: str,
    obj: dict[str, Any],
    owner: str,
) -> Iterator[Finding]:
    where = f"table_name = {_lit(table)}" + (
        f" AND table_schema = {_lit(schema)}" if schema else ""
    )
    evidence = (
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE {where} ORDER BY ordinal_position"
    )
    target = f"{contract}:{table}"
    try:
        live = {str(c).lower(): str(t).upper() for c, t in wh.rows(evidence)}
    except WarehouseError as exc:
        yield Finding("schema_drift", target, "error", exc.message, evidence_sql=evidence)
        return
    promised = {
        str(p.get("physicalName") or p.get("name")).lower(): str(p.get("physicalType") or "")
        for p in obj.get("properties") or ()
    }
    if not live:
        yield Finding("schema_drift", target, "fail", f"table {table} is missing",
                      evidence_sql=evidence, owner=owner)  # fmt: skip
        return
    missing = sorted(set(promised) - set(live))
    extra = sorted(set(live) - set(promised))
    changed = sorted(
        c for c, t in promised.items() if c in live and t and _norm_type(t) != _norm_type(live[c])
    )
    if missing:
        yield Finding("schema_drift", target, "fail", f"missing columns: {', '.join(missing)}",
                      observed=sorted(live), expected=sorted(promised), evidence_sql=evidence,
                      owner=owner)  # fmt: skip
    if extra:
        yield Finding("schema_drift", target, "fail", f"columns not in the contract: "
                      f"{', '.join(extra)}", severity="warning", observed=extra,
                      evidence_sql=evidence, owner=owner)  # fmt: skip
    if changed:
        detail = ", ".join(f"{c} {promised[c]} -> {live[c]}" for c in changed)
        yield Finding("schema_drift", target, "fail", f"type changes: {detail}",
                      severity="warning", evidence_sql=evidence, owner=owner)  # fmt: skip
    if not (missing or extra or changed):
        yield Finding("schema_drift", target, "pass", "columns and types match the contract",
                      evidence_sql=evidence, owner=owner)  # fmt: skip


def _norm_type(text: str) -> str:
    """Type names compared loosely: case, spacing and common aliases do not matter."""
    t = text.upper().replace(" ", "")
    aliases = {"INT": "INTEGER", "INT4": "INTEGER", "INT8": "BIGINT", "TEXT": "VARCHAR",
               "STRING": "VARCHAR", "BOOL": "BOOLEAN", "DOUBLE": "DOUBLE",
               "TIMESTAMPWITHOUTTIMEZONE": "TIMESTAMP", "CHARACTERVARYING": "VARCHAR"}  # fmt: skip
    base = t.split("(")[0]
    return aliases.get(base, base) + (t[len(base) :] if base == "DECIMAL" else "")


def _rule_check(
    wh: _Warehouse,
    contract: str,
    table: str,
    table_name: str,
    column: str | None,
    rule: dict[str, Any],
    owner: str,
) -> Finding:
    check = {
        "nullValues": "null_values",
        "duplicateValues": "duplicate_share"
        if str(rule.get("unit", "")).lower() == "percent"
        else "unique",
        "invalidValues": "accepted_values",
        "rowCount": "row_count",
    }.get(str(rule.get("metric")), "sql_rule")
    target = f"{contract}:{table_name}" + (f".{column}" if column else "")
    severity = str(rule.get("severity") or "error").lower()
    severity = "warning" if severity in {"warning", "warn", "info"} else "error"
    sqls = _rule_sql(table, column, rule)
    if sqls is None:
        return Finding(check, target, "error", f"unsupported rule {rule.get('metric')!r}",
                       severity="warning", owner=owner)  # fmt: skip
    measure, evidence = sqls
    try:
        value = wh.scalar(measure)
    except WarehouseError as exc:
        return Finding(check, target, "error", exc.message, severity=severity,
                       evidence_sql=wh.sql(measure), owner=owner)  # fmt: skip
    observed = float(value or 0)
    ok, wanted = _compare(observed, rule)
    unit = "%" if str(rule.get("unit", "")).lower() == "percent" else ""
    message = f"{rule.get('description') or check}: {observed:g}{unit} (must be {wanted}{unit})"
    return Finding(
        check, target, "pass" if ok else "fail", message.strip(), severity=severity,
        observed=observed, expected=wanted, evidence_sql=wh.sql(evidence), owner=owner,
    )  # fmt: skip


def _freshness(
    wh: _Warehouse,
    contract: str,
    spec: dict[str, Any],
    schema: str | None,
    now: dt.datetime,
    owner: str,
) -> Iterator[Finding]:
    for sla in spec.get("slaProperties") or ():
        if sla.get("property") != "freshness" or "." not in str(sla.get("element", "")):
            continue
        table_name, column = str(sla["element"]).split(".", 1)
        table = f"{_q(schema)}.{_q(table_name)}" if schema else _q(table_name)
        days = float(sla["value"]) * UNIT_DAYS.get(str(sla.get("unit", "d")).lower(), 1.0)
        limit = now.replace(tzinfo=None) - dt.timedelta(days=days)
        measure = f"SELECT MAX({_q(column)}) FROM {table}"
        target = f"{contract}:{sla['element']}"
        try:
            newest = wh.scalar(measure)
        except WarehouseError as exc:
            yield Finding("freshness", target, "error", exc.message, evidence_sql=measure)
            continue
        newest_dt = (
            newest if isinstance(newest, dt.datetime) else
            dt.datetime.combine(as_date(newest), dt.time()) if newest else None
        )  # fmt: skip
        ok = newest_dt is not None and newest_dt >= limit
        yield Finding(
            "freshness", target, "pass" if ok else "fail",
            f"newest {column} is {newest_dt.isoformat() if newest_dt else 'missing'}; the SLA "
            f"wants it after {limit.isoformat(timespec='minutes')} ({sla['value']} {sla.get('unit')})",
            observed=newest_dt.isoformat() if newest_dt else None,
            expected=limit.isoformat(), evidence_sql=wh.sql(measure), owner=owner,
        )  # fmt: skip


# --------------------------------------------------------------------------- values


def _anomalies(metrics: Sequence[str] | None, now: dt.date) -> Iterator[Finding]:
    """Seasonal (same weekday) median ± K·MAD over each daily series' recent days."""
    values = MetricValue.objects.filter(grain="day", value__isnull=False)
    if metrics:
        values = values.filter(metric_name__in=list(metrics))
    earliest = now - dt.timedelta(days=ANOMALY_RECENT_DAYS + 7 * ANOMALY_WEEKS)
    series: dict[tuple[str, str], dict[dt.date, float]] = defaultdict(dict)
    for name, digest, day, value in values.filter(period_start__gte=earliest).values_list(
        "metric_name", "slice_hash", "period_start", "value"
    ):
        try:
            series[(name, digest)][day] = float(value)
        except ValueError:
            continue  # timestamps (first_event_at) have no numeric baseline
    for (name, digest), points in sorted(series.items()):
        for day in sorted(points):
            if day < now - dt.timedelta(days=ANOMALY_RECENT_DAYS) or day > now:
                continue
            history = [
                points[d]
                for week in range(1, ANOMALY_WEEKS + 1)
                if (d := day - dt.timedelta(weeks=week)) in points
            ]
            band = anomaly_band(history)
            if band is None:
                continue
            low, high, median = band.low, band.high, band.median
            x = points[day]
            if low <= x <= high:
                continue
            yield Finding(
                "anomaly", f"{name}/day/{day.isoformat()}" + (f"/{digest[:8]}" if digest != _EMPTY_SLICE else ""),
                "fail", f"{name} on {day}: {x:g} outside the expected {low:g}..{high:g} "
                f"(median {median:g} of the same weekday over {len(history)} weeks)",
                severity="warning", observed=x,
                expected={"low": low, "high": high, "median": median},
            )  # fmt: skip


def _reconcile(metrics: Sequence[str] | None, sample: int, seed: int | None) -> Iterator[Finding]:
    """Recomputes a random sample of stored unsliced values and flags any difference."""
    from semantic.warehouse.run import run_compiled

    values = MetricValue.objects.filter(slice_hash=_EMPTY_SLICE).select_related("release")
    if metrics:
        values = values.filter(metric_name__in=list(metrics))
    ids = list(values.values_list("pk", flat=True))
    picked = random.Random(seed).sample(ids, min(sample, len(ids)))
    warehouse = settings.WAREHOUSE
    for value in values.filter(pk__in=picked).order_by("pk"):
        day = value.period_start.isoformat()
        query = MetricQuery(
            metrics=(value.metric_name,), group_by=(f"metric_time__{value.grain}",),
            start_time=day, end_time=day, dialect=warehouse.dialect,
        )  # fmt: skip
        target = f"{value.metric_name}/{value.grain}/{day}"
        compiled = compile_metric_query(query=query, release_ref=value.release.name)
        try:
            rows = run_compiled(
                compiled, principal=None, release_ref=value.release.name, timeout_s=120
            ).rows
        except UserError as exc:
            # The warehouse failed, or refused to run it at all (a join through a key the
            # data now repeats: fan_out): an error row of this batch, not a lost batch.
            yield Finding("reconcile", target, "error", exc.message, evidence_sql=compiled.sql)
            continue
        now = next(
            (canonical_value(r[1]) for r in rows if as_date(r[0]) == value.period_start), None
        )
        ok = now == value.value
        yield Finding(
            "reconcile", target, "pass" if ok else "fail",
            f"stored {value.value}, warehouse now {now}" if not ok else "stored value matches",
            observed=now, expected=value.value, evidence_sql=compiled.sql,
            extra={"value_id": value.pk},
        )  # fmt: skip


# --------------------------------------------------------------------------- entry


def audit_run(
    *,
    contracts: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    checks: Sequence[str] = ("contracts", "anomaly", "reconcile"),
    now: dt.datetime | None = None,
    release_ref: str | None = None,
    sample: int = RECONCILE_SAMPLE,
    seed: int | None = None,
    alert: bool = False,
) -> list[AuditResult]:
    """Runs the chosen audits and stores one result row per check (one batch id); read-only
    on the warehouse. Results are append-only, so a re-run adds a batch and rewrites none;
    with ``alert`` the owning teams of failing checks are emailed and their webhooks called."""
    now = now or timezone.now()
    release: Release = release_resolve(release_ref)
    findings: list[Finding] = []
    if "contracts" in checks:
        wh = _Warehouse()
        items = ReleaseItem.objects.filter(release=release, definition__kind=Kind.CONTRACT)
        if contracts:
            items = items.filter(definition__name__in=list(contracts))
        for name, spec in items.values_list("definition__name", "version__spec"):
            findings += _contract_checks(wh, name, spec, now)
    if "anomaly" in checks:
        findings += _anomalies(metrics, now.date())
    if "reconcile" in checks:
        findings += _reconcile(metrics, sample, seed)
    owners = metric_owners([f.target.split("/", 1)[0] for f in findings if not f.owner])
    for f in findings:
        # Value checks name the metric first; its owning team gets the alert.
        f.owner = f.owner or owners.get(f.target.split("/", 1)[0], "")
    batch = uuid.uuid4()
    results = [
        AuditResult(
            batch=batch, check_name=f.check, target=f.target[:300], severity=f.severity,
            status=f.status, message=f.message, observed=f.observed, expected=f.expected,
            evidence_sql=f.evidence_sql, owner=f.owner,
        )
        for f in findings
    ]  # fmt: skip
    stored = AuditResult.objects.bulk_create(results)
    if alert:
        audit_alerts_send(results=stored)
    return stored
