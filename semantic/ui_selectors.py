"""READS for the web UI's semantic pages: a metric's stored series (with anomalies, revisions
and the expected range), a sliced series from the warehouse, explore queries, runs, audits
and the trace page of one stored value."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet

from registry.models import Definition, Kind
from registry.permissions import access_require, user_can
from registry.roles import Action
from registry.selectors import metric_versions_in_release, release_get_latest_or_none
from semantic.anomaly import ANOMALY_WEEKS, anomaly_band
from semantic.audited import metric_query_compile, metric_query_run
from semantic.compiler.api import CompiledQuery, common_queryable_items, queryable_items
from semantic.compiler.explain import explain_metric
from semantic.compiler.grains import ALL_GRAINS, GRAINS
from semantic.compiler.principal import Principal
from semantic.compiler.spec import DIALECTS, MetricQuery
from semantic.jobs.backfill import stored_versions
from semantic.jobs.selectors import audit_result_list, revisions_for_value, run_list
from semantic.models import AuditResult, ComputeRun, MetricValue, ValueRevision
from semantic.permissions import (
    audit_results_visible,
    stored_values_hidden,
    stored_values_require,
)
from semantic.services import (
    QueryAnswer,
    manifest_for_release,
    release_resolve,
)
from tally.errors import NotFound, PermissionDenied, UserError

EMPTY_SLICE = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # sha256("{}")
# Same weekday for daily series (weekly seasonality); the previous periods otherwise.
SEASON = {"day": 7}


class Point(TypedDict):
    id: int
    period: str
    value: float | None
    revised: int
    anomaly: bool
    low: float | None
    high: float | None
    # What the previous definition said for this period (after a numbers-changing release):
    # the old value where the backfill changed it, the value itself where it did not.
    previous: NotRequired[float | None]


@dataclass(frozen=True)
class Series:
    metric: str
    grain: str
    grains: list[tuple[str, int]]  # grains with stored values, and how many
    points: list[Point]
    anomalies: list[AuditResult]
    revised: int
    previous_version: str = ""  # the version the "previous" values came from, if any


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None  # timestamps (first_event_at): no numeric chart


def expected_band(values: list[float | None], season: int) -> list[tuple[float, float] | None]:
    """Each point's expected range from the same season over the previous ANOMALY_WEEKS
    periods: median ± K·1.4826·MAD (with the same floors as the anomaly audit)."""
    out: list[tuple[float, float] | None] = []
    for i in range(len(values)):
        history = [
            v
            for k in range(1, ANOMALY_WEEKS + 1)
            if (j := i - k * season) >= 0 and (v := values[j]) is not None
        ]
        band = anomaly_band(history)
        out.append(None if band is None else (band.low, band.high))
    return out


def metric_series_get(*, metric: str, grain: str | None = None) -> Series:
    """The stored (unsliced) values of a metric at one grain (default: the finest stored),
    each with its revision count, anomaly flag and expected range."""
    grains = [
        (g, n)
        for g, n in MetricValue.objects.filter(metric_name=metric, slice_hash=EMPTY_SLICE)
        .values_list("grain")
        .annotate(n=Count("id"))
        if g in GRAINS
    ]
    grains.sort(key=lambda gn: GRAINS.index(gn[0]))
    if grain not in dict(grains):
        grain = grains[0][0] if grains else "day"
    # The unique index (metric, grain, period, slice) serves this scan in period order.
    rows = list(
        MetricValue.objects.filter(metric_name=metric, grain=grain, slice_hash=EMPTY_SLICE)
        .order_by("period_start")
        .values_list("id", "period_start", "value", "revision_count")
    )
    anomalies = list(
        AuditResult.objects.filter(
            check_name="anomaly", target__startswith=f"{metric}/{grain}/", status="fail"
        ).order_by("-id")[:200]
    )
    flagged = {a.target.split("/")[2] for a in anomalies}
    values = [_number(v) for _, _, v, _ in rows]
    band = expected_band(values, SEASON.get(grain, 1))
    if all(v is None or v >= 0 for v in values):
        # A series that is never negative (counts, amounts) cannot be expected below zero.
        band = [(max(r[0], 0.0), r[1]) if r else None for r in band]
    points: list[Point] = []
    for (pk, period, _, revised), value, rng in zip(rows, values, band, strict=True):
        day = period.isoformat()
        points.append(
            {
                "id": pk,
                "period": day,
                "value": value,
                "revised": revised,
                "anomaly": day in flagged,
                "low": rng[0] if rng else None,
                "high": rng[1] if rng else None,
            }
        )
    previous = _previous_definition(rows)
    if previous:
        for point in points:
            point["previous"] = previous[0].get(point["id"], point["value"])
    return Series(
        metric, grain, grains, points, anomalies, sum(1 for p in points if p["revised"]),
        previous[1] if previous else "",
    )  # fmt: skip


def _previous_definition(rows: list[Any]) -> tuple[dict[int, float | None], str] | None:
    """The old values a numbers-changing release replaced in this series (value id → old
    value) and the version they came from; None when no definition change revised it."""
    changed: dict[int, float | None] = {}
    versions: dict[str, int] = {}
    for value_id, old, major, minor in (
        ValueRevision.objects.filter(value_id__in=[r[0] for r in rows], reason="definition_changed")
        .order_by("id")
        .values_list(
            "value_id", "old_value", "old_metric_version__major", "old_metric_version__minor"
        )
    ):
        changed[value_id] = _number(old)
        semver = f"{major}.{minor}"
        versions[semver] = versions.get(semver, 0) + 1
    if not changed:
        return None
    return changed, max(versions, key=lambda v: versions[v])


def metric_dimensions_get(*, metric: str) -> list[tuple[str, str]]:
    """What the metric page offers to slice by: (item, label) for the categorical dimensions
    the metric accepts in the latest release. Not time items, not entity ids, and not the
    dimensions that read a contract's PII column (names and e-mails are no slices)."""
    release = release_resolve(None)
    manifest = manifest_for_release(release)
    offered = []
    for item in queryable_items(manifest, metric):
        path = item.split("__")
        if "metric_time" in item or len(path) < 2 or _is_time(item):
            continue
        *entities, name = path
        if _sliceable(manifest, entity=entities[-1], name=name):
            offered.append((item, f"{name.replace('_', ' ')} ({' → '.join(entities)})"))
    return sorted(offered, key=lambda pair: (pair[0].count("__"), pair[0]))


def _sliceable(manifest: Any, *, entity: str, name: str) -> bool:
    """A categorical, non-PII dimension ``name`` of a model that has ``entity``."""
    for model in manifest.semantic_models.values():
        dim = model.dimensions.get(name)
        has_entity = entity in model.entities or model.primary_entity == entity
        if dim is None or not has_entity or dim.type != "categorical":
            continue
        read = {dim.name.lower(), dim.expr.strip().lower()}
        if not read & {c.lower() for c in model.pii_columns}:
            return True
    return False


def _is_time(item: str) -> bool:
    return item.rsplit("__", 1)[-1] in GRAINS


MAX_SLICES = 10


@dataclass(frozen=True)
class SlicedSeries:
    dimension: str
    rows: list[dict[str, Any]]
    sql: str
    slices: int  # distinct values the dimension had; only the MAX_SLICES largest are drawn


def metric_slice_get(
    *,
    metric: str,
    grain: str,
    dimension: str,
    start: dt.date | None,
    end: dt.date | None,
    principal: Principal,
    acting_user: Any,
) -> SlicedSeries:
    """The metric by period and one dimension, run live on the warehouse for ``principal``
    (row policies, masks; audited) over the range the stored series covers (stored values
    are unsliced unless a run asked for slices)."""
    if grain not in GRAINS:
        raise UserError(f"unknown grain {grain!r}", code="bad_grain", hint=", ".join(GRAINS))
    answer = metric_query_run(
        query=MetricQuery(
            metrics=(metric,),
            group_by=(f"metric_time__{grain}", dimension),
            start_time=start.isoformat() if start else None,
            end_time=end.isoformat() if end else None,
            dialect=settings.WAREHOUSE.dialect,
        ),
        release_ref=None,
        principal=principal,
        acting_user=acting_user,
        row_cap=20_000,
    )
    names = list(answer.columns)
    t, d, v = names.index(f"metric_time__{grain}"), names.index(dimension), names.index(metric)
    rows = [
        {
            "period": _iso(r[t]),
            "slice": "(none)" if r[d] is None else str(r[d]),
            "value": _float(r[v]),
        }
        for r in answer.rows
    ]
    # A dimension with hundreds of values (account names) would draw a hairball: keep the
    # values with the largest absolute totals over the range.
    weight: dict[str, float] = {}
    for row in rows:
        value = row["value"]
        weight[row["slice"]] = weight.get(row["slice"], 0.0) + (
            abs(value) if isinstance(value, int | float) else 0.0
        )
    top = set(sorted(weight, key=lambda k: -weight[k])[:MAX_SLICES])
    kept = [row for row in rows if row["slice"] in top]
    return SlicedSeries(dimension, kept, answer.compiled.sql, len(weight))


def series_versions_get(*, metric: str, grain: str) -> dict[str, Any] | None:
    """When the stored values shown come from another version than the latest release's:
    which versions, the current one, whether the numbers differ (a major change) and the
    backfill run that recomputes them. None when they are all of the current version."""
    release = release_get_latest_or_none()
    if release is None:
        return None
    for state in stored_versions(release=release, metrics=[metric]):
        if state.grain == grain and state.shown_versions != [state.current]:
            return {
                "shown": state.shown_versions,
                "current": state.current,
                "stale": state.stale,
                "run": state.backfill,
                "release": release.name,
            }
    return None


def _series_for(*, metric: str, grain: str | None, principal: Principal) -> Series:
    """The stored series, or PermissionDenied when ``principal`` may not read its values."""
    stored_values_require(principal=principal, metrics=[metric])
    return metric_series_get(metric=metric, grain=grain)


def metric_chart_get(
    *, metric: str, grain: str, principal: Principal, user: Any, dimension: str = ""
) -> dict[str, Any]:
    """The chart fragment of the metric page: the stored series at a grain (403 when the
    principal may not read them), or (with a dimension, which needs ``query``) the metric per
    value of that dimension, queried for the principal, over the stored series' range."""
    from semantic.charts import series_chart, sliced_chart

    if not dimension:
        series = _series_for(metric=metric, grain=grain, principal=principal)
    else:
        access_require(user, Action.QUERY)
        try:
            series = _series_for(metric=metric, grain=grain, principal=principal)
        except PermissionDenied:
            # The stored range is unknown to this reader: slice over all time instead.
            series = Series(metric, grain if grain in GRAINS else "day", [], [], [], 0)
    context: dict[str, Any] = {"metric": metric, "grain": series.grain, "dimension": dimension}
    if not dimension:
        context["series"] = series
        context["versions"] = series_versions_get(metric=metric, grain=series.grain)
        context["chart"] = (
            series_chart(series.points, metric=metric, grain=series.grain)
            if series.points
            else None
        )
        return context
    start = dt.date.fromisoformat(series.points[0]["period"]) if series.points else None
    end = dt.date.fromisoformat(series.points[-1]["period"]) if series.points else None
    try:
        sliced = metric_slice_get(
            metric=metric, grain=series.grain, dimension=dimension, start=start, end=end,
            principal=principal, acting_user=user,
        )  # fmt: skip
    except UserError as exc:
        context["error"] = exc
    else:
        context["sliced"] = sliced
        context["chart"] = sliced_chart(sliced.rows, metric=metric, dimension=dimension)
    return context


def _iso(value: Any) -> Any:
    return value.isoformat()[:10] if isinstance(value, dt.date | dt.datetime) else value


def _float(value: Any) -> Any:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return value


def metric_sql_get(
    *, metric: str, grain: str, dialect: str, principal: Principal, acting_user: Any
) -> CompiledQuery:
    """The SQL of the metric by period for one dialect, compiled for ``principal`` (its row
    policies and masks show; audited) from the latest release (compile cache)."""
    if dialect not in DIALECTS:
        raise UserError(
            f"unknown dialect {dialect!r}", code="bad_dialect", hint=", ".join(DIALECTS)
        )
    if grain not in GRAINS:
        raise UserError(f"unknown grain {grain!r}", code="bad_grain", hint=", ".join(GRAINS))
    return metric_query_compile(
        query=MetricQuery(metrics=(metric,), group_by=(f"metric_time__{grain}",), dialect=dialect),
        release_ref=None,
        principal=principal,
        acting_user=acting_user,
    )


def metric_meaning_get(*, metric: str) -> str:
    """The metric in plain words, from the latest release."""
    release = release_get_latest_or_none()
    if release is None:
        return ""
    return explain_metric(manifest_for_release(release), metric)


def metric_audits_get(
    *, metric: str, contracts: list[str], values: bool = True
) -> list[AuditResult]:
    """The newest result of each check on the metric's values (unless ``values`` is False)
    and on the contracts it reads."""
    wanted = Q(target__startswith=f"{metric}/") if values else Q(pk__in=[])
    for contract in contracts:
        wanted |= Q(target__startswith=f"{contract}:")
    latest: dict[tuple[str, str], AuditResult] = {}
    for result in AuditResult.objects.filter(wanted).order_by("-id")[:500]:
        # One badge per (check, target kind): the newest decides.
        key = (result.check_name, result.target if "/" not in result.target else "values")
        latest.setdefault(key, result)
    return sorted(latest.values(), key=lambda r: (r.status == "pass", r.check_name, r.target))


@dataclass(frozen=True)
class Health:
    """A metric's health from the newest result of each audit on its values and on the
    contracts it reads: ``failing`` (an error-severity check fails or errs), ``warning``,
    ``healthy`` or ``unchecked``. Only check names and targets, never observed values."""

    state: str
    failing: tuple[str, ...]  # "check target" of each failing check, worst first
    checks: int

    @property
    def summary(self) -> str:
        if self.state == "unchecked":
            return "no audit has run on this metric or the data it reads"
        if not self.failing:
            return f"{self.checks} checks pass"
        shown = "; ".join(self.failing[:4]) + (" …" if len(self.failing) > 4 else "")
        return f"{len(self.failing)} of {self.checks} checks fail: {shown}"


def metrics_health_get(*, metrics: Sequence[str], user: Any) -> dict[str, Health]:
    """Health of many metrics at once (the catalog's rows): two queries over the audit
    results, the contracts each metric reads from the release's lineage graph. Value audits
    count only for a user who may read values."""
    from lineage.ui_selectors import contracts_upstream_get

    values = user_can(user, Action.VIEW_VALUES)
    upstream: dict[str, list[str]] = {}
    for metric in metrics:
        try:
            upstream[metric] = contracts_upstream_get(node=f"metric:{metric}")
        except UserError:
            upstream[metric] = []
    prefixes = [f"{c}:" for cs in upstream.values() for c in cs]
    if values:
        prefixes += [f"{m}/" for m in metrics]
    if not prefixes:
        return {m: Health("unchecked", (), 0) for m in metrics}
    wanted = Q()
    for prefix in sorted(set(prefixes)):
        wanted |= Q(target__startswith=prefix)
    newest = (
        AuditResult.objects.filter(wanted)
        .values("check_name", "target")
        .annotate(last=Max("id"))
        .values_list("last", flat=True)
    )
    results = list(
        AuditResult.objects.filter(pk__in=list(newest)).only(
            "id", "check_name", "target", "severity", "status"
        )
    )
    results.sort(key=lambda r: -r.pk)  # newest first: the first per key decides
    out = {}
    for metric in metrics:
        mine = [f"{c}:" for c in upstream[metric]] + ([f"{metric}/"] if values else [])
        latest: dict[tuple[str, str], AuditResult] = {}
        for r in results:
            if r.target.startswith(tuple(mine)):
                # As on the metric page: one per (check, target), value checks as one.
                key = (r.check_name, r.target if "/" not in r.target else "values")
                latest.setdefault(key, r)
        out[metric] = _health(list(latest.values()))
    return out


def _health(results: list[AuditResult]) -> Health:
    if not results:
        return Health("unchecked", (), 0)
    bad = [r for r in results if r.status != "pass"]
    errors = [r for r in bad if r.status == "error" or r.severity == "error"]
    order = sorted(bad, key=lambda r: (r not in errors, r.check_name, r.target))
    state = "failing" if errors else "warning" if bad else "healthy"
    return Health(state, tuple(f"{r.check_name} {r.target}" for r in order), len(results))


# --------------------------------------------------------------------------- explore


@dataclass(frozen=True)
class ExploreResult:
    answer: QueryAnswer
    sql: str  # in the dialect the user asked to see
    dialect: str


def explore_run(
    *,
    query: MetricQuery,
    show_dialect: str,
    principal: Principal,
    acting_user: Any,
    release_ref: str | None = None,
) -> ExploreResult:
    """Runs a query on the warehouse for ``principal`` (row policies, masks) under a release
    (default: the latest) and compiles it for the dialect the user reads; both land in the
    audit log as the API's do."""
    answer = metric_query_run(
        query=query, release_ref=release_ref, principal=principal, acting_user=acting_user
    )
    sql = answer.compiled.sql
    if show_dialect != settings.WAREHOUSE.dialect:
        shown = MetricQuery(**{**query.__dict__, "dialect": show_dialect})
        sql = metric_query_compile(
            query=shown, release_ref=release_ref, principal=principal, acting_user=acting_user
        ).sql
    return ExploreResult(answer, sql, show_dialect)


def save_query_choices(*, user: Any) -> dict[str, list[str]]:
    """Teams the user is in (a saved query's owner) and every domain, for the save form."""
    from registry.models import Domain, Team

    return {
        "owners": list(
            Team.objects.filter(memberships__user=user)
            .order_by("slug")
            .values_list("slug", flat=True)
        ),
        "domains": list(Domain.objects.order_by("slug").values_list("slug", flat=True)),
    }


EXPLORE_RELEASES = 30  # the release picker's newest releases


def explore_options_get(*, metrics: list[str], release_ref: str | None = None) -> dict[str, Any]:
    """The release's metrics (grouped by domain, with labels and certification), the
    group-by items every chosen metric accepts (grouped by entity path) and the releases
    to pick from."""
    from registry.models import Release

    release = release_resolve(release_ref or None)
    manifest = manifest_for_release(release)
    names = sorted(manifest.metrics)
    chosen = [m for m in metrics if m in manifest.metrics]
    common: list[str] = []
    if chosen:
        common = common_queryable_items(manifest, chosen)
    heads = {
        name: (label, domain, tier)
        for name, label, domain, tier in Definition.objects.filter(
            kind=Kind.METRIC, name__in=names
        ).values_list("name", "label", "domain__slug", "tier")
    }
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        label, domain, tier = heads.get(name, ("", "", ""))
        by_domain.setdefault(domain or "other", []).append(
            {"name": name, "label": label or name, "certified": tier == "certified"}
        )
    by_entity: dict[str, list[tuple[str, str]]] = {}
    for item in common:
        path, _, last = item.rpartition("__")
        group = "time" if item.startswith("metric_time") else (path.replace("__", " → ") or item)
        shown = last.replace("_", " ") if path and not item.startswith("metric_time") else item
        by_entity.setdefault(group, []).append((item, shown))
    releases = list(
        Release.objects.order_by("-number").values_list("number", flat=True)[:EXPLORE_RELEASES]
    )
    return {
        "release": release.name,
        "metrics": [(n, heads.get(n, (n,))[0] or n) for n in names],
        "metrics_by_domain": sorted(by_domain.items()),
        "group_by": common,
        "group_by_by_entity": sorted(by_entity.items(), key=lambda kv: (kv[0] != "time", kv[0])),
        "releases": [f"r{n}" for n in releases],
        "grains": (*ALL_GRAINS, *manifest.time_spine.custom_grain_names),
    }


# --------------------------------------------------------------------------- runs, audits


def run_page_list(*, status: str = "", metric: str = "") -> list[ComputeRun]:
    """The newest 100 runs for the runs page."""
    return list(run_list(status=status or None, metric=metric or None)[:100])


def run_detail_get(*, run_id: int) -> ComputeRun:
    """One run; NotFound otherwise."""
    run = ComputeRun.objects.select_related("release", "created_by").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"no compute run {run_id}", code="run_not_found", hint="see the runs list")
    return run


def audit_page_list(
    *, principal: Principal, status: str = "", check_name: str = ""
) -> QuerySet[AuditResult]:
    """Audit results newest first, by status and check; value checks of metrics whose stored
    values the principal may not read are left out (they carry the observed value)."""
    return audit_result_list(
        status=status or None,
        check_name=check_name or None,
        exclude_metrics=stored_values_hidden(principal=principal),
    )


def audit_check_names() -> list[str]:
    """Every check name that has results."""
    return sorted(set(AuditResult.objects.values_list("check_name", flat=True).distinct()))


# --------------------------------------------------------------------------- value trace


@dataclass(frozen=True)
class ValueTrace:
    value: MetricValue
    run: ComputeRun
    revisions: list[ValueRevision]
    sql: str
    sql_error: str
    # lineage.trace.value_trace(...).as_dict(): definitions, contracts, source columns, the
    # upstream tree and the drill-down reads (with their first rows when asked for).
    full: dict[str, Any] | None = None
    # The metric's version in the latest release, when it is not the value's ("superseded").
    current: str = ""


def _current_semver(metric: str) -> str:
    release = release_get_latest_or_none()
    if release is None:
        return ""
    version = metric_versions_in_release(release=release, metrics=[metric]).get(metric)
    return version.semver if version else ""


TRACE_ROWS = 20


def value_trace_get(*, value_id: int, principal: Principal, rows: int | None = None) -> ValueTrace:
    """One stored value traced (lineage.trace.value_trace, as the API and CLI trace it): its
    metric version, release, run, the SQL the run executed, definitions, contracts, source
    columns and drill-down reads under ``principal``'s row policies and masks (their first
    ``rows`` rows when given). A restricted principal may not trace a value of a metric row
    policies narrow (403)."""
    from lineage.trace import value_trace

    value = (
        MetricValue.objects.select_related(
            "metric_version__definition", "release", "run__release", "run__created_by"
        )
        .filter(pk=value_id)
        .first()
    )
    if value is None:
        raise NotFound(
            f"no stored value {value_id}",
            code="value_not_found",
            hint="open a metric page and click a point of its chart",
        )
    stored_values_require(principal=principal, metrics=[value.metric_name], release=value.release)
    revisions = list(revisions_for_value(value_id=value_id))
    current = _current_semver(value.metric_name)
    current = "" if current == value.metric_version.semver else current
    try:
        full = value_trace(value_id=value_id, rows=rows, principal=principal).as_dict()
    except UserError as exc:
        return ValueTrace(value, value.run, revisions, "", exc.message, current=current)
    return ValueTrace(
        value, value.run, revisions, full["compiled"]["sql"], "", full, current=current
    )


# --------------------------------------------------------------------------- metric page


MSG_NO_COMPILE = "the SQL panel needs the compile right, which your roles do not include"


def metric_page_get(
    *,
    name: str,
    user: Any,
    principal: Principal,
    grain: str | None = None,
    dialect: str | None = None,
) -> dict[str, Any]:
    """Everything the metric page shows, as far as the user may see it: the definition page
    (YAML, versions with diffs, releases, owners), its meaning, the stored series and chart
    (``view_values``, and not for a restricted principal on a row-policied metric), SQL for a
    dialect (``compile``, for the principal), audits of its values and contracts, the
    dimensions to slice by (``query``) and a small upstream graph."""
    from lineage.ui_selectors import contracts_upstream_get, lineage_view_get
    from registry.ui_selectors import definition_page_get
    from semantic.charts import series_chart

    page = definition_page_get(kind=Kind.METRIC, name=name, user=user)
    live = page.definition.status != "retired"
    values_error: UserError | None = None
    try:
        access_require(user, Action.VIEW_VALUES)
        series = _series_for(metric=name, grain=grain, principal=principal)
    except PermissionDenied as exc:
        values_error = exc
        series = Series(name, grain if grain in GRAINS else "day", [], [], [], 0)
    dialect = dialect if dialect in DIALECTS else settings.WAREHOUSE.dialect
    sql, sql_error, dimensions, graph, graph_error = "", "", [], None, ""
    contracts: list[str] = []
    if live:
        if user_can(user, Action.COMPILE):
            try:
                sql = metric_sql_get(
                    metric=name, grain=series.grain, dialect=dialect, principal=principal,
                    acting_user=user,
                ).sql  # fmt: skip
            except UserError as exc:
                sql_error = exc.message
        else:
            sql_error = MSG_NO_COMPILE
        try:
            dimensions = metric_dimensions_get(metric=name) if user_can(user, Action.QUERY) else []
        except UserError:
            dimensions = []
        version = page.definition.current_version
        node = f"metric:{name}@{version.semver}" if version else f"metric:{name}"
        try:
            graph = lineage_view_get(node=node, depth=2)
            contracts = contracts_upstream_get(node=node)
        except UserError as exc:
            graph_error = exc.message
    # Value audits carry observed values: hidden with the values themselves.
    audits = audit_results_visible(
        metric_audits_get(metric=name, contracts=contracts, values=values_error is None),
        principal=principal,
    )
    return {
        "page": page,
        "definition": page.definition,
        "meaning": metric_meaning_get(metric=name) if live else "",
        "series": series,
        "versions": series_versions_get(metric=name, grain=series.grain) if series.points else None,
        "error": values_error,
        "chart": series_chart(series.points, metric=name, grain=series.grain)
        if series.points
        else None,
        "dialect": dialect,
        "dialects": DIALECTS,
        "sql": sql,
        "sql_error": sql_error,
        "dimensions": dimensions,
        "audits": audits,
        "health": _health(audits) if live else None,
        "graph": graph,
        "graph_error": graph_error,
    }
