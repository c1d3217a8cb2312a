"""The checks every proposal revision gets: validation, contracts, compile, impact, numbers.

A check is claimed with a conditional UPDATE (pending → running, exactly one row), computed
outside any transaction (the numbers diff runs warehouse queries for seconds), then recorded
by ``proposal_check_record``. Checks of an old revision are still recorded but no longer
decide anything: merge reads the current revision's.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry.definitions.changes import MAJOR, classify_change
from registry.definitions.contracts import contract_changes
from registry.definitions.export import ExportItem, export_files
from registry.definitions.project import CONTRACT, METRIC, SAVED_QUERY, SEMANTIC_MODEL, load_project
from registry.definitions.rules import metric_inputs
from registry.models import Proposal, ProposalChange, ProposalCheck, ReleaseItem
from registry.selectors import (
    PinnedSpec,
    governance_for_export,
    proposal_changes,
    release_specs,
)
from registry.services.audit import audit_event_create
from semantic.compiler.api import compile_query, queryable_items
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import DIALECTS, MetricQuery
from tally.errors import PermissionDenied, TallyError, UserError

logger = logging.getLogger("tally.checks")

Status = ProposalCheck.CheckStatus
Result = tuple[str, str, dict[str, Any]]  # (status, summary, details)


class _Inputs:
    """The base release and the proposal's current revision, read once per check."""

    def __init__(self, proposal: Proposal, revision: int) -> None:
        self.proposal = proposal
        self.changes: list[ProposalChange] = proposal_changes(proposal=proposal, revision=revision)
        self.base: dict[tuple[str, str], PinnedSpec] = release_specs(release=proposal.base_release)
        self.merged: dict[tuple[str, str], dict[str, Any]] = {
            k: p.spec for k, p in self.base.items()
        }
        for change in self.changes:
            key = (change.kind, change.name)
            if change.spec is None:
                self.merged.pop(key, None)
            else:
                self.merged[key] = change.spec

    def manifest(self, *, new: bool) -> Manifest:
        specs = self.merged if new else {k: p.spec for k, p in self.base.items()}
        versions = {k: p.semver for k, p in self.base.items()}
        rows = (
            (k, n, spec, "proposed" if new and self.changed((k, n)) else versions.get((k, n), ""))
            for (k, n), spec in specs.items()
        )
        label = f"proposal #{self.proposal.pk}" if new else self.base_name
        return build_manifest(rows, release=label)

    @property
    def base_name(self) -> str:
        return self.proposal.base_release.name if self.proposal.base_release else "empty"

    def changed(self, key: tuple[str, str]) -> bool:
        return any((c.kind, c.name) == key for c in self.changes)


# --------------------------------------------------------------------------- impact


def downstream_metrics(
    specs: dict[tuple[str, str], dict[str, Any]], keys: Iterable[tuple[str, str]]
) -> list[str]:
    """Metrics that read the given definitions, directly or through other metrics."""
    measures: set[str] = set()
    metrics: set[str] = set()
    for kind, name in keys:
        spec = specs.get((kind, name))
        if kind == SEMANTIC_MODEL and spec:
            measures.update(m["name"] for m in spec.get("measures") or [])
        elif kind == METRIC:
            metrics.add(name)
    all_metrics = {n: s for (k, n), s in specs.items() if k == METRIC}
    found = {
        n
        for n, s in all_metrics.items()
        if any(k == "measure" and m in measures for k, m, _ in metric_inputs(s))
    } | metrics
    # Ratio, derived, cumulative and conversion metrics built on affected metrics.
    grew = True
    while grew:
        more = {
            n
            for n, s in all_metrics.items()
            if n not in found and any(k == "metric" and m in found for k, m, _ in metric_inputs(s))
        }
        found |= more
        grew = bool(more)
    return sorted(found)


def _owner(spec: dict[str, Any] | None) -> str | None:
    meta = ((spec or {}).get("config") or {}).get("meta") or {}
    return str(meta["owner"]) if meta.get("owner") else None


def _stored_values(metrics: list[str]) -> list[dict[str, Any]]:
    """Current computed values of the affected metrics, per metric and grain: the numbers
    dashboards show today that the change would restate on the next compute."""
    from django.db.models import Count, Max, Min

    from semantic.models import MetricValue

    rows = (
        MetricValue.objects.filter(metric_name__in=metrics)
        .values("metric_name", "grain")
        .annotate(values=Count("id"), first=Min("period_start"), last=Max("period_start"))
        .order_by("metric_name", "grain")
    )
    return [
        {
            "metric": row["metric_name"],
            "grain": row["grain"],
            "values": row["values"],
            "periods": f"{row['first']}..{row['last']}",
        }
        for row in rows
    ]


def check_impact(inputs: _Inputs) -> Result:
    keys = [(c.kind, c.name) for c in inputs.changes]
    # Downstream of what changes, in the release as it would be (and of what is retired).
    union = {**{k: p.spec for k, p in inputs.base.items()}, **inputs.merged}
    metrics = downstream_metrics(union, keys)
    direct = {n for k, n in keys if k == METRIC}
    saved = sorted(
        n
        for (k, n), s in inputs.merged.items()
        if k == SAVED_QUERY
        and set((s.get("query_params") or {}).get("metrics") or []) & set(metrics)
    )
    owners = sorted(
        {o for m in metrics if (o := _owner(union.get((METRIC, m))))}
        | {o for k in keys if (o := _owner(union.get(k)))}
    )
    version_ids = [p.version_id for k, p in inputs.base.items() if k in set(keys)]
    releases = sorted(
        set(
            ReleaseItem.objects.filter(version_id__in=version_ids).values_list(
                "release__number", flat=True
            )
        )
    )
    details = {
        "changed": [f"{k}:{n}" for k, n in keys],
        "downstream_metrics": [m for m in metrics if m not in direct],
        "saved_queries": saved,
        "owners": owners,
        "releases_pinning_current_versions": [f"r{n}" for n in releases],
        "stored_values": _stored_values(metrics),
    }
    stored = sum(row["values"] for row in details["stored_values"])
    summary = (
        f"{len(keys)} changed, {len(details['downstream_metrics'])} downstream metric(s), "
        f"{stored} stored value(s), "
        f"{len(saved)} saved quer{'y' if len(saved) == 1 else 'ies'}, owners: "
        + (", ".join(owners) or "none")
    )
    return Status.PASSED, summary, details


# --------------------------------------------------------------------------- validation


def check_validation(inputs: _Inputs) -> Result:
    teams, domains = governance_for_export()
    files = export_files(
        [ExportItem(k, n, s) for (k, n), s in inputs.merged.items()], teams=teams, domains=domains
    )
    with tempfile.TemporaryDirectory(prefix="tally-check-") as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        project = load_project(root)
    where = {c.name: c for c in inputs.changes}
    issues = []
    for issue in [*project.issues.errors, *project.issues.warnings]:
        body = issue.as_dict()
        # Point at the proposal's own file when the issue names one of its definitions.
        change = where.get(str(issue.object or ""))
        if change is not None and change.source_file:
            body["file"], body["line"] = change.source_file, change.source_line
        elif issue.object:
            body["file"], body["line"] = f"(release {inputs.base_name})", 0
        issues.append(body)
    errors = [i for i in issues if i.get("severity") == "error"]
    if errors:
        first = errors[0]
        return (
            Status.FAILED,
            f"{len(errors)} error(s); first: {first['message']}",
            {"issues": issues},
        )
    return Status.PASSED, f"valid ({len(issues)} warning(s))", {"issues": issues}


# --------------------------------------------------------------------------- contracts


def check_contracts(inputs: _Inputs) -> Result:
    findings = []
    broken = 0
    for change in inputs.changes:
        if change.kind != CONTRACT:
            continue
        old = inputs.base.get((change.kind, change.name))
        if old is None or change.spec is None:
            continue
        for item in contract_changes(old.spec, change.spec):
            readers = _readers(inputs, item.table, item.column) if item.breaking else []
            broken += bool(readers)
            findings.append(
                {
                    "contract": change.name,
                    "change": item.describe(),
                    "breaking": item.breaking,
                    "read_by": readers,
                }
            )
    if broken:
        return (
            Status.FAILED,
            f"{broken} breaking contract change(s) still read by definitions",
            {"changes": findings},
        )
    breaking = sum(f["breaking"] for f in findings)
    summary = (
        f"{len(findings)} contract change(s), {breaking} breaking with no reader"
        if findings
        else "no contract changes"
    )
    return Status.PASSED, summary, {"changes": findings}


def _readers(inputs: _Inputs, table: str, column: str | None) -> list[str]:
    from registry.definitions.project import DefinitionObject
    from registry.definitions.rules import _element_columns, semantic_model_table

    out = []
    for (kind, name), spec in inputs.merged.items():
        if kind != SEMANTIC_MODEL:
            continue
        obj = DefinitionObject(kind, name, spec, "", 0)
        if semantic_model_table(obj) != table:
            continue
        if column is None or column in {c for c, _ in _element_columns(obj)}:
            out.append(f"semantic_model:{name}")
    return out


# --------------------------------------------------------------------------- compile


def _metrics_to_check(inputs: _Inputs, *, meaning_only: bool = False) -> list[str]:
    """Changed metrics first, then the metrics downstream of any change; with
    ``meaning_only``, only changes that can alter numbers (new, or a major bump) count."""
    keys = []
    for change in inputs.changes:
        if change.spec is None:
            continue
        old = inputs.base.get((change.kind, change.name))
        minor = old is not None and (
            classify_change(change.kind, old.spec, change.spec).level != MAJOR
        )
        if meaning_only and minor:
            continue
        keys.append((change.kind, change.name))
    direct = [n for k, n in keys if k == METRIC]
    found = downstream_metrics(inputs.merged, keys)
    ordered = direct + [m for m in found if m not in direct]
    return [m for m in ordered if (METRIC, m) in inputs.merged]


def check_compile(inputs: _Inputs) -> Result:
    metrics = _metrics_to_check(inputs)
    if not metrics:
        return Status.PASSED, "no metric to compile", {"metrics": []}
    try:
        new = inputs.manifest(new=True)
        old = inputs.manifest(new=False)
    except (KeyError, TypeError, ValueError) as exc:
        return Status.FAILED, f"the proposed release cannot be loaded: {exc}", {}
    failures: list[dict[str, Any]] = []
    compiled = 0
    for metric in metrics:
        for dialect in DIALECTS:
            query = MetricQuery(
                metrics=(metric,), group_by=("metric_time__month",), dialect=dialect
            )
            try:
                compile_query(query, new)
                compiled += 1
            except TallyError as exc:
                # A query the base release cannot compile either is not this proposal's doing.
                preexisting = metric in old.metrics and _compiles(query, old) is False
                failures.append(
                    {
                        "metric": metric,
                        "dialect": dialect,
                        "code": exc.code,
                        "message": exc.message,
                        "preexisting": preexisting,
                    }
                )
    new_failures = [f for f in failures if not f["preexisting"]]
    details = {"metrics": metrics, "dialects": list(DIALECTS), "failures": failures}
    if new_failures:
        first = new_failures[0]
        return (
            Status.FAILED,
            f"{len(new_failures)} compile failure(s); first: {first['metric']} on "
            f"{first['dialect']}: {first['message']}",
            details,
        )
    return (
        Status.PASSED,
        f"{compiled} compiles ({len(metrics)} metric(s) × {len(DIALECTS)} dialects)",
        details,
    )


def _compiles(query: MetricQuery, manifest: Manifest) -> bool:
    try:
        compile_query(query, manifest)
    except TallyError:
        return False
    return True


# --------------------------------------------------------------------------- numbers


def _first_measure(
    manifest: Manifest, metric: str, seen: frozenset[str] = frozenset()
) -> str | None:
    """The first measure a metric reads, through ratio/derived/cumulative inputs."""
    if metric in seen or metric not in manifest.metrics:
        return None
    for kind, name, _ in metric_inputs(dict(manifest.metrics[metric].spec)):
        if kind == "measure" and name in manifest.measures:
            return name
        if kind == "metric":
            found = _first_measure(manifest, name, seen | {metric})
            if found:
                return found
    return None


def main_dimension(manifest: Manifest, metric: str) -> str | None:
    """``config.meta.main_dimension`` if set, else the first categorical dimension of the
    model the metric's first measure lives in (through its primary entity), else the first
    categorical dimension the metric can be grouped by."""
    spec = manifest.metrics[metric].spec
    meta = (spec.get("config") or {}).get("meta") or {}
    try:
        items = set(queryable_items(manifest, metric))
    except TallyError:
        return None
    if meta.get("main_dimension") in items:
        return str(meta["main_dimension"])
    measure = _first_measure(manifest, metric)
    if measure is not None:
        model = manifest.semantic_models[manifest.measures[measure].semantic_model]
        for dim in model.dimensions.values():
            name = f"{model.primary_entity}__{dim.name}"
            if dim.type == "categorical" and name in items:
                return name
    # Only categorical dimensions: entities and ids would split the numbers per row.
    categorical = sorted(
        f"{model.primary_entity}__{dim.name}"
        for model in manifest.semantic_models.values()
        for dim in model.dimensions.values()
        if dim.type == "categorical"
    )
    return next((name for name in categorical if name in items), None)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    return None


def _change_pct(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or old == 0:
        return None
    return round((new - old) / abs(old) * 100, 2)


def _diff_rows(old: dict[Any, Any], new: dict[Any, Any]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(old) | set(new), key=lambda k: (k is None, str(k))):
        o, n = _number(old.get(key)), _number(new.get(key))
        rows.append({"key": key if not isinstance(key, dt.date) else key.isoformat()[:10],
                     "old": o, "new": n, "change_pct": _change_pct(o, n)})  # fmt: skip
    return rows


def _run(query: MetricQuery, manifest: Manifest, metric: str) -> dict[Any, Any]:
    """Runs one query; rows keyed by the group-by value (a tuple when there are several)."""
    from semantic.warehouse.execute import execute

    compiled = compile_query(query, manifest)
    result = execute(settings.WAREHOUSE, compiled.sql, timeout_s=60, row_cap=10_000)
    names = [c.name for c in result.columns]
    keys = [names.index(k) for k in query.group_by]
    value = names.index(metric)
    return {
        (row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)): row[value]
        for row in result.rows
    }


def _run_pair(
    query: MetricQuery, old: Manifest, new: Manifest, metric: str
) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """The old and the new definition's answers, run at the same time on two connections
    (the warehouse, not Python, does the work: drivers release the GIL while they wait)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        old_rows = pool.submit(_run, query, old, metric)
        new_rows = pool.submit(_run, query, new, metric)
        return old_rows.result(), new_rows.result()


def _by_dimension(
    query: MetricQuery, old: Manifest, new: Manifest, metric: str
) -> tuple[str | None, list[dict[str, Any]]]:
    """Old vs new per value of the main dimension, in the latest month the query returns.

    Per month rather than over the whole window: semi-additive metrics (MRR) have no total
    over 90 days, and the latest month is what a reviewer compares with the dashboard."""
    old_rows, new_rows = _run_pair(query, old, new, metric)
    months = sorted({k[0] for k in (*old_rows, *new_rows) if k[0] is not None})
    if not months:
        return None, []
    last = months[-1]

    def pick(rows: dict[Any, Any]) -> dict[Any, Any]:
        return {k[1]: v for k, v in rows.items() if k[0] == last}

    period = last.isoformat()[:10] if isinstance(last, dt.date) else str(last)
    return period, _diff_rows(pick(old_rows), pick(new_rows))


def check_numbers(inputs: _Inputs, *, today: dt.date | None = None) -> Result:
    days = int(settings.TALLY_NUMBERS_DIFF_DAYS)
    end = today or timezone.now().date()
    start = end - dt.timedelta(days=days)
    metrics = [
        m
        for m in _metrics_to_check(inputs, meaning_only=True)
        if (METRIC, m) in inputs.base  # a new metric has no old numbers to compare
    ][: int(settings.TALLY_NUMBERS_DIFF_MAX_METRICS)]
    if not metrics:
        # Labels, descriptions and governance meta cannot move a number.
        return Status.PASSED, "no change that can alter numbers", {"metrics": [], "window": None}
    new, old = inputs.manifest(new=True), inputs.manifest(new=False)
    dialect = settings.WAREHOUSE.dialect
    results = []
    headline: tuple[float, str] | None = None
    for metric in metrics:
        common: dict[str, Any] = {
            "metrics": (metric,),
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
            "dialect": dialect,
        }
        by_month = MetricQuery(group_by=("metric_time__month",), **common)
        entry: dict[str, Any] = {"metric": metric, "by_month": [], "by_dimension": []}
        try:
            entry["by_month"] = _diff_rows(*_run_pair(by_month, old, new, metric))
        except TallyError as exc:
            entry["error"] = {"code": exc.code, "message": exc.message}
        dim = main_dimension(new, metric)
        entry["dimension"] = dim
        if "error" not in entry and dim is not None and dim in queryable_items(old, metric):
            # Only the latest complete month: the breakdown reviewers compare with their
            # dashboards, and a third of the rows to compute.
            month_end = end.replace(day=1) - dt.timedelta(days=1)
            by_dim = MetricQuery(
                group_by=("metric_time__month", dim),
                **{
                    **common,
                    "start_time": month_end.replace(day=1).isoformat(),
                    "end_time": month_end.isoformat(),
                },
            )
            try:
                entry["dimension_period"], entry["by_dimension"] = _by_dimension(
                    by_dim, old, new, metric
                )
            except TallyError as exc:
                # The monthly diff still stands; say why the breakdown is missing.
                entry["dimension_error"] = {"code": exc.code, "message": exc.message}
        for row in entry["by_month"]:
            if row["change_pct"] is not None and (
                headline is None or abs(row["change_pct"]) > abs(headline[0])
            ):
                headline = (
                    row["change_pct"],
                    f"{metric} {row['change_pct']:+.1f}% in {row['key'][:7]}",
                )
        results.append(entry)
    window = {"start": start.isoformat(), "end": end.isoformat(), "days": days}
    errors = [r for r in results if "error" in r]
    if errors and len(errors) == len(results):
        return Status.ERROR, f"numbers diff failed: {errors[0]['error']['message']}", {
            "window": window, "metrics": results,
        }  # fmt: skip
    summary = (
        f"largest monthly change: {headline[1]}"
        if headline and headline[0]
        else "no change in the numbers"
    )
    return Status.PASSED, f"{summary} (last {days} days)", {"window": window, "metrics": results}


CHECKS: dict[str, Callable[[_Inputs], Result]] = {
    ProposalCheck.CheckKind.VALIDATION: check_validation,
    ProposalCheck.CheckKind.CONTRACTS: check_contracts,
    ProposalCheck.CheckKind.COMPILE: check_compile,
    ProposalCheck.CheckKind.IMPACT: check_impact,
    ProposalCheck.CheckKind.NUMBERS: check_numbers,
}


# --------------------------------------------------------------------------- services


def proposal_check_claim(*, check_id: int) -> bool:
    """pending → running for exactly one worker; False when another has it (or it is done)."""
    claimed = ProposalCheck.objects.filter(pk=check_id, status=Status.PENDING).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


@transaction.atomic(durable=True)
def proposal_check_record(
    *, check_id: int, status: str, summary: str, details: dict[str, Any], acting_user: Any = None
) -> ProposalCheck:
    """Stores a check's outcome (running → passed/failed/error) with an audit row."""
    check = ProposalCheck.objects.select_for_update().select_related("proposal").get(pk=check_id)
    check.status, check.summary, check.details = status, summary[:2000], details
    check.finished_at = timezone.now()
    check.save(update_fields=["status", "summary", "details", "finished_at"])
    audit_event_create(
        actor=acting_user,
        action="proposal.check",
        object_kind="proposal",
        object_name=str(check.proposal_id),
        payload={
            "kind": check.kind,
            "revision": check.revision,
            "status": status,
            "summary": summary,
        },
    )
    return check


def proposal_check_run(*, check_id: int) -> ProposalCheck | None:
    """Runs one check if it is still pending (idempotent) and records the outcome."""
    if not proposal_check_claim(check_id=check_id):
        return None
    check = ProposalCheck.objects.select_related("proposal__base_release").get(pk=check_id)
    try:
        status, summary, details = CHECKS[check.kind](_Inputs(check.proposal, check.revision))
    except UserError as exc:
        status, summary, details = Status.ERROR, exc.message, {"error": exc.as_body()}
    except Exception as exc:  # a bug must not leave the check "running" forever
        logger.exception("check %s of proposal %s crashed", check.kind, check.proposal_id)
        status, summary, details = Status.ERROR, f"internal error: {type(exc).__name__}", {}
    return proposal_check_record(
        check_id=check_id, status=status, summary=summary, details=_jsonable(details)
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


@transaction.atomic(durable=True)
def proposal_checks_rerun(*, proposal: Proposal, acting_user: Any) -> list[ProposalCheck]:
    """Resets the current revision's checks to pending and runs them again (also the ones a
    lost worker left running); refused once the proposal is merged or closed."""
    from registry.services.proposals import (
        UNMERGED,
        _enqueue_checks,
        _lock,
        _may_manage,
        _require_state,
    )

    if not getattr(acting_user, "pk", None):
        raise PermissionDenied("sign in to re-run checks", code="not_authenticated")
    proposal = _lock(proposal)
    _require_state(proposal, UNMERGED, "re-checked")
    # The checks query the warehouse: as for closing, only the author or a reviewer.
    if not _may_manage(acting_user, proposal):
        raise PermissionDenied(
            "only the author or a reviewer can re-run the checks", code="not_allowed"
        )
    ProposalCheck.objects.filter(proposal=proposal, revision=proposal.revision).update(
        status=Status.PENDING, summary="", details={}, started_at=None, finished_at=None
    )

    _enqueue_checks(proposal)
    audit_event_create(
        actor=acting_user,
        action="proposal.checks_rerun",
        object_kind="proposal",
        object_name=str(proposal.pk),
        payload={"revision": proposal.revision},
    )
    return list(ProposalCheck.objects.filter(proposal=proposal, revision=proposal.revision))
