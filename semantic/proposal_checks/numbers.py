"""The numbers check: old and new definitions run side by side on the warehouse, by month
and by the metric's main dimension, so a reviewer sees how a change moves the numbers.

It runs as the proposal's author (``check_principal``: the author's row policies, PII always
masked), with the current release's row policies and PII classifications on top of both
definitions (a proposal cannot drop a policy for its own check), and records the principal's
visibility key, which decides who else sees the numbers (``semantic.permissions``). A PII
dimension is never a breakdown: an explicit ``main_dimension`` on one is refused (the
breakdown is skipped with the reason), and the default pick skips them.
"""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from registry.definitions.project import METRIC
from registry.definitions.rules import metric_inputs
from registry.services.proposal_checks.inputs import CheckInputs, Result, Status, metrics_to_check
from semantic.compiler.api import compile_query, queryable_items
from semantic.compiler.manifest import Manifest, relation_key
from semantic.compiler.policy_reach import metric_has_row_policies
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from semantic.manifests import manifest_for_release, release_key, release_resolve
from semantic.permissions import check_principal, computed_as, principal_restricted
from semantic.warehouse.run import ReadyQuery, compiled_prepare, run_compiled
from tally.errors import NotFound, TallyError

PII_DIMENSION_CODE = "pii_main_dimension"
MSG_NO_ROWS_FOR_AUTHOR = (
    "no numbers to compare: the author's row policies return no rows for these metrics "
    "(last {days} days)"
)
MSG_PII_DIMENSION = (
    "{metric}: main dimension {dimension} is classified PII; the numbers check never groups "
    "by a PII dimension"
)
HINT_PII_DIMENSION = (
    "set config.meta.main_dimension to a dimension that is not PII (a plan, a country, a "
    "segment), or leave it out"
)


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


def pii_dimension(manifest: Manifest, name: str) -> bool:
    """True when ``entity__dim`` may read a PII column: a model carrying the entity has the
    dimension and its expression names a column classified PII on that model's table (in
    this manifest or the current release's, ``manifest.security``). A multi-hop name
    (``user__account__plan``) is judged by its last entity; a dimension read by any model
    carrying that entity counts, so the test errs towards PII."""
    path, _, dim_name = name.rpartition("__")
    entity = path.rsplit("__", 1)[-1]
    manifests = [manifest] + ([manifest.security] if manifest.security is not None else [])
    pii_by_table: dict[Any, set[str]] = {}
    for source in manifests:
        for model in source.semantic_models.values():
            columns = pii_by_table.setdefault(relation_key(model.relation), set())
            columns.update(c.lower() for c in model.pii_columns)
    for model in manifest.semantic_models.values():
        dim = model.dimensions.get(dim_name)
        if dim is None or (entity and entity not in model.entities):
            continue
        words = set(re.findall(r"[a-z_][a-z0-9_]*", (dim.expr or dim.name).lower()))
        if words & pii_by_table.get(relation_key(model.relation), set()):
            return True
    return False


def main_dimension(manifest: Manifest, metric: str) -> str | None:
    """``config.meta.main_dimension`` if set, else the first categorical dimension of the
    model the metric's first measure lives in (through its primary entity), else the first
    categorical dimension the metric can be grouped by; never a PII dimension (an explicit
    PII ``main_dimension`` is refused by ``main_dimension_refusal``)."""
    spec = manifest.metrics[metric].spec
    meta = (spec.get("config") or {}).get("meta") or {}
    try:
        items = set(queryable_items(manifest, metric))
    except TallyError:
        return None
    if meta.get("main_dimension") in items:
        chosen = str(meta["main_dimension"])
        return None if pii_dimension(manifest, chosen) else chosen
    measure = _first_measure(manifest, metric)
    if measure is not None:
        model = manifest.semantic_models[manifest.measures[measure].semantic_model]
        for dim in model.dimensions.values():
            name = f"{model.primary_entity}__{dim.name}"
            if dim.type == "categorical" and name in items and not pii_dimension(manifest, name):
                return name
    # Only categorical dimensions: entities and ids would split the numbers per row.
    categorical = sorted(
        f"{model.primary_entity}__{dim.name}"
        for model in manifest.semantic_models.values()
        for dim in model.dimensions.values()
        if dim.type == "categorical"
    )
    return next(
        (name for name in categorical if name in items and not pii_dimension(manifest, name)),
        None,
    )


def main_dimension_refusal(manifest: Manifest, metric: str) -> dict[str, str] | None:
    """The error body when the metric's explicit ``config.meta.main_dimension`` is PII."""
    meta = (manifest.metrics[metric].spec.get("config") or {}).get("meta") or {}
    chosen = meta.get("main_dimension")
    if not chosen or not pii_dimension(manifest, str(chosen)):
        return None
    return {
        "code": PII_DIMENSION_CODE,
        "message": MSG_PII_DIMENSION.format(metric=metric, dimension=chosen),
        "hint": HINT_PII_DIMENSION,
        "location": f"metric {metric}: config.meta.main_dimension",
    }


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


def _prepared(
    query: MetricQuery, manifest: Manifest, principal: Principal
) -> tuple[MetricQuery, ReadyQuery]:
    """Compiles and prepares one side (key guard, time spine, session variables): the
    registry reads happen here, on the caller's thread, connection and transaction."""
    compiled = compile_query(
        query, manifest, principal=principal, mask_default=settings.TALLY_PII_MASK
    )
    return query, compiled_prepare(compiled, principal=principal, manifest=manifest)


def _run(side: tuple[MetricQuery, ReadyQuery], metric: str) -> dict[Any, Any]:
    """Runs one prepared side on the warehouse only; rows keyed by the group-by value (a
    tuple when there are several)."""
    query, ready = side
    result = run_compiled(ready, principal=None, timeout_s=60, row_cap=10_000)
    names = [c.name for c in result.columns]
    keys = [names.index(k) for k in query.group_by]
    value = names.index(metric)
    return {
        (row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)): row[value]
        for row in result.rows
    }


def _run_pair(
    query: MetricQuery, old: Manifest, new: Manifest, metric: str, principal: Principal
) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """The old and the new definition's answers, run at the same time on two warehouse
    connections (the warehouse, not Python, does the work: drivers release the GIL while
    they wait). The threads touch no registry: both sides are prepared here first."""
    sides = [_prepared(query, manifest, principal) for manifest in (old, new)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        old_rows = pool.submit(_run, sides[0], metric)
        new_rows = pool.submit(_run, sides[1], metric)
        return old_rows.result(), new_rows.result()


def _by_dimension(
    query: MetricQuery, old: Manifest, new: Manifest, metric: str, principal: Principal
) -> tuple[str | None, list[dict[str, Any]]]:
    """Old vs new per value of the main dimension, in the latest month the query returns.

    Per month rather than over the whole window: semi-additive metrics (MRR) have no total
    over 90 days, and the latest month is what a reviewer compares with the dashboard."""
    old_rows, new_rows = _run_pair(query, old, new, metric, principal)
    months = sorted({k[0] for k in (*old_rows, *new_rows) if k[0] is not None})
    if not months:
        return None, []
    last = months[-1]

    def pick(rows: dict[Any, Any]) -> dict[Any, Any]:
        return {k[1]: v for k, v in rows.items() if k[0] == last}

    period = last.isoformat()[:10] if isinstance(last, dt.date) else str(last)
    return period, _diff_rows(pick(old_rows), pick(new_rows))


def check_numbers(inputs: CheckInputs, *, today: dt.date | None = None) -> Result:
    days = int(settings.TALLY_NUMBERS_DIFF_DAYS)
    end = today or timezone.now().date()
    start = end - dt.timedelta(days=days)
    metrics = [
        m
        for m in metrics_to_check(inputs, meaning_only=True)
        if (METRIC, m) in inputs.base  # a new metric has no old numbers to compare
    ][: int(settings.TALLY_NUMBERS_DIFF_MAX_METRICS)]
    if not metrics:
        # Labels, descriptions and governance meta cannot move a number.
        return Status.PASSED, "no change that can alter numbers", {"metrics": [], "window": None}
    new, old = _secured(inputs, new=True), _secured(inputs, new=False)
    principal = check_principal(inputs.proposal.author)
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
        entry: dict[str, Any] = {
            "metric": metric,
            "by_month": [],
            "by_dimension": [],
            # Whether a row policy can narrow it, old or new: readers bound otherwise than
            # the author see a narrowed metric's numbers only under the same binding.
            "row_policied": metric_has_row_policies(old, metric)
            or metric_has_row_policies(new, metric),
        }
        try:
            entry["by_month"] = _diff_rows(*_run_pair(by_month, old, new, metric, principal))
        except TallyError as exc:
            entry["error"] = {"code": exc.code, "message": exc.message}
        dim = main_dimension(new, metric)
        entry["dimension"] = dim
        refusal = main_dimension_refusal(new, metric)
        if refusal is not None:
            entry["dimension_error"] = refusal
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
                    by_dim, old, new, metric, principal
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
    details = {"window": window, "metrics": results, "computed_as": computed_as(principal)}
    errors = [r for r in results if "error" in r]
    if errors and len(errors) == len(results):
        return Status.ERROR, f"numbers diff failed: {errors[0]['error']['message']}", details
    if principal_restricted(principal) and not any(r["by_month"] for r in results):
        # Not "no change": the author's row policies gave the check nothing to compare.
        return Status.PASSED, MSG_NO_ROWS_FOR_AUTHOR.format(days=days), details
    summary = (
        f"largest monthly change: {headline[1]}"
        if headline and headline[0]
        else "no change in the numbers"
    )
    return Status.PASSED, f"{summary} (last {days} days)", details


def _secured(inputs: CheckInputs, *, new: bool) -> Manifest:
    """The proposed (or base) manifest with the current release's row policies and PII
    classifications on top, as a pinned query gets them: a proposal that drops a policy or a
    classification does not drop it for its own check."""
    manifest = inputs.manifest(new=new)
    try:
        current = release_resolve(None)
    except NotFound:
        return manifest  # no release yet: no policy to keep
    base = inputs.proposal.base_release
    if not new and base is not None and release_key(base) == release_key(current):
        return manifest  # the base is the current release: its own policies are the ones
    return replace(manifest, security=manifest_for_release(current))
