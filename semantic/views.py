from __future__ import annotations

import csv
import datetime as dt
import decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from registry.permissions import principal_for, user_can
from registry.roles import Action
from semantic.charts import explore_chart
from semantic.compiler.spec import MetricQuery
from semantic.forms import (
    AuditFilterForm,
    ExploreForm,
    MetricChartForm,
    MetricSqlForm,
    RunFilterForm,
    SaveQueryForm,
)
from semantic.permissions import audit_results_visible
from semantic.saved_query_file import saved_query_yaml
from semantic.ui_selectors import (
    TRACE_ROWS,
    audit_check_names,
    audit_page_list,
    explore_options_get,
    explore_run,
    metric_chart_get,
    metric_sql_get,
    run_detail_get,
    run_page_list,
    save_query_choices,
    value_trace_get,
)
from tally.errors import UserError, error_body
from tally.spreadsheet import csv_safe_row
from tally.throttling import rate_limit_check
from tally.ui import flash_error, flash_form_errors, is_htmx, page_access


@login_required
@require_POST
@page_access(Action.COMPUTE)
def metric_recompute(request: HttpRequest, name: str) -> HttpResponse:
    """Recompute a metric's stored values under the latest release (one run per stored grain,
    over the stored range); then the run's page, which follows it."""
    from registry.selectors import release_get_latest_or_none
    from semantic.jobs.backfill import metric_recompute as recompute

    release = release_get_latest_or_none()
    try:
        runs = recompute(metric=name, release=release, acting_user=request.user) if release else []
    except UserError as exc:
        messages.error(request, exc.message)
        return redirect("metric-detail", name=name)
    if not runs:
        messages.info(request, f"{name} has no stored values to recompute.")
        return redirect("metric-detail", name=name)
    messages.success(
        request, f"Recomputing {name}: {len(runs)} run(s) queued under r{release.number}."
    )
    return redirect("run-detail", run_id=runs[0].pk)


@login_required
@require_GET
@page_access(Action.VIEW_VALUES)
def metric_chart(request: HttpRequest, name: str) -> HttpResponse:
    form = MetricChartForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    if data.get("dimension"):
        rate_limit_check(request, "query")  # slicing queries the warehouse
    context = metric_chart_get(
        metric=name,
        grain=data.get("grain") or "day",
        dimension=data.get("dimension") or "",
        principal=principal_for(request.user),
        user=request.user,
    )
    return render(request, "semantic/_metric_chart.html", context)


@login_required
@require_GET
@page_access(Action.COMPILE)
def metric_sql(request: HttpRequest, name: str) -> HttpResponse:
    form = MetricSqlForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    dialect = data.get("dialect") or settings.WAREHOUSE.dialect
    context: dict[str, Any] = {"metric": name, "dialect": dialect}
    try:
        context["sql"] = metric_sql_get(
            metric=name,
            grain=data.get("grain") or "day",
            dialect=dialect,
            principal=principal_for(request.user),
            acting_user=request.user,
        ).sql
    except UserError as exc:
        context["sql_error"] = exc.message
    return render(request, "semantic/_metric_sql.html", context)


# --------------------------------------------------------------------------- explore


def _explore_form(request: HttpRequest, params: Any = None) -> tuple[ExploreForm, dict[str, Any]]:
    params = request.GET if params is None else params
    release = params.get("release") or None
    try:
        options = explore_options_get(metrics=params.getlist("metrics"), release_ref=release)
    except UserError:
        # An unknown release: the latest's options; the form then names the bad field.
        options = explore_options_get(metrics=params.getlist("metrics"))
    form = ExploreForm(
        params if params.get("metrics") else None,
        metrics=options["metrics"],
        group_by=options["group_by"],
        releases=options["releases"],
        initial={"dialect": settings.WAREHOUSE.dialect, "limit": 1000},
    )
    return form, options


def _query(data: dict[str, Any]) -> MetricQuery:
    where = tuple(line.strip() for line in (data.get("where") or "").splitlines() if line.strip())
    order = tuple(o.strip() for o in (data.get("order_by") or "").split(",") if o.strip())
    group_by = tuple(data.get("group_by") or ())
    if not order:
        # A time series reads left to right: default to its time column, oldest first.
        order = tuple(g for g in group_by if g.startswith("metric_time"))[:1]
    return MetricQuery(
        metrics=tuple(data["metrics"]),
        group_by=group_by,
        where=where,
        start_time=data["start_time"].isoformat() if data.get("start_time") else None,
        end_time=data["end_time"].isoformat() if data.get("end_time") else None,
        order_by=order,
        limit=data.get("limit") or 1000,
        dialect=settings.WAREHOUSE.dialect,
    )


def _cell(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time(0) and value.tzinfo is None:
        return value.date().isoformat()  # a period start: the date says it all
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


@login_required
@require_GET
@page_access(Action.QUERY)
def explore(request: HttpRequest) -> HttpResponse:
    form, options = _explore_form(request)
    context: dict[str, Any] = {"form": form, "options": options}
    if user_can(request.user, Action.PROPOSE):
        context["save"] = save_query_choices(user=request.user)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        rate_limit_check(request, "query")
        try:
            result = explore_run(
                query=_query(data),
                show_dialect=data.get("dialect") or settings.WAREHOUSE.dialect,
                principal=principal_for(request.user),
                acting_user=request.user,
                release_ref=data.get("release") or None,
            )
        except UserError as exc:
            context["error"] = exc
            context["error_body"] = error_body(exc, request=request)
        else:
            rows = [[_cell(v) for v in row] for row in result.answer.rows]
            context.update(
                result=result,
                rows=rows,
                columns=list(result.answer.columns),
                chart=explore_chart(result.answer.columns, rows, metrics=data["metrics"]),
                csv_query=request.GET.urlencode(),
            )
    template = "semantic/_explore_result.html" if is_htmx(request) else "semantic/explore.html"
    return render(request, template, context)


@login_required
@require_POST
@page_access(Action.PROPOSE)
def explore_save(request: HttpRequest) -> HttpResponse:
    """Explore's query as a dbt saved query, proposed for review (a proposal opens)."""
    from urllib.parse import urlencode

    from registry.services.proposals import proposal_create

    form, options = _explore_form(request, request.POST)
    save = SaveQueryForm(request.POST)
    back = "/explore?" + urlencode(
        [(k, v) for k in ("metrics", "group_by", "where", "order_by", "limit", "release")
         for v in request.POST.getlist(k) if v]
    )  # fmt: skip
    if not (form.is_valid() and save.is_valid()):
        flash_form_errors(request, form, save, strip="sq_")
        return redirect(back)
    name = save.cleaned_data["sq_name"]
    text = saved_query_yaml(
        name=name,
        label=save.cleaned_data["sq_label"],
        owner=save.cleaned_data["sq_owner"],
        domain=save.cleaned_data["sq_domain"],
        query=_query(form.cleaned_data),
        grains=options["grains"],
    )
    try:
        proposal = proposal_create(
            acting_user=request.user,
            title=f"Saved query {name}",
            description=f"Saved from Explore by {request.user.get_username()}.",
            files={f"saved_queries/{name}.yml": text},
            retire=[],
            open_now=True,
        )
    except UserError as exc:
        flash_error(request, exc)
        return redirect(back)
    messages.success(request, f"Proposal #{proposal.pk} opened for saved query {name}.")
    return redirect("proposal-detail", proposal_id=proposal.pk)


@login_required
@require_GET
@page_access(Action.QUERY)
def explore_options(request: HttpRequest) -> HttpResponse:
    form, options = _explore_form(request)
    return render(
        request,
        "semantic/_group_by_options.html",
        {"form": form, "options": options, "chosen": request.GET.getlist("group_by")},
    )


@login_required
@require_GET
@page_access(Action.QUERY)
def explore_csv(request: HttpRequest) -> HttpResponse:
    form, _ = _explore_form(request)
    if not (form.is_bound and form.is_valid()):
        return render(
            request,
            "errors/error.html",
            {"title": "Cannot export", "error": {"code": "bad_query",
                                                 "message": "pick at least one metric to export"}},
            status=400,
        )  # fmt: skip
    rate_limit_check(request, "query")
    try:
        result = explore_run(
            query=_query(form.cleaned_data),
            show_dialect=settings.WAREHOUSE.dialect,
            principal=principal_for(request.user),
            acting_user=request.user,
            release_ref=form.cleaned_data.get("release") or None,
        )
    except UserError as exc:
        return render(
            request,
            "errors/error.html",
            {"title": "Cannot export", "error": error_body(exc, request=request)},
            status=exc.http_status,
        )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="tally-explore.csv"'
    writer = csv.writer(response)
    writer.writerow(csv_safe_row(result.answer.columns))
    for row in result.answer.rows:
        # Dimension values are warehouse data anyone may have typed: never a formula.
        writer.writerow(csv_safe_row(_cell(v) for v in row))
    return response


# --------------------------------------------------------------------------- runs, audits, values


@login_required
@require_GET
@page_access(Action.VIEW_VALUES)
def run_list(request: HttpRequest) -> HttpResponse:
    form = RunFilterForm(request.GET)
    form.is_valid()  # a bad filter is shown on its field; the valid ones still apply
    data = form.cleaned_data
    runs = run_page_list(status=data.get("status") or "", metric=data.get("metric") or "")
    active = any(r.status in ("queued", "running", "retrying") for r in runs)
    context = {"runs": runs, "form": form, "active": active}
    template = "semantic/_runs_table.html" if is_htmx(request) else "semantic/runs.html"
    return render(request, template, context)


@login_required
@require_GET
@page_access(Action.VIEW_VALUES)
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_detail_get(run_id=run_id)
    template = "semantic/_run_status.html" if is_htmx(request) else "semantic/run.html"
    return render(request, template, {"run": run})


@login_required
@require_GET
@page_access(Action.VIEW_VALUES)
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    form.is_valid()  # a bad filter is shown on its field; the valid ones still apply
    data = form.cleaned_data
    results = audit_page_list(
        principal=principal_for(request.user),
        status=data.get("status") or "",
        check_name=data.get("check_name") or "",
    )
    page = Paginator(results, 100).get_page(request.GET.get("page"))
    # Contract findings measured over every tenant: observed values hidden for this user.
    page.object_list = audit_results_visible(
        page.object_list, principal=principal_for(request.user)
    )
    return render(
        request,
        "semantic/audits.html",
        {"page": page, "form": form, "checks": audit_check_names(),
         "query": request.GET.copy().urlencode()},
    )  # fmt: skip


@login_required
@require_GET
@page_access(Action.VIEW_VALUES)
def value_trace(request: HttpRequest, value_id: int) -> HttpResponse:
    # The drill-down's rows are a query of the warehouse: shown to those who may query.
    rows = TRACE_ROWS if user_can(request.user, Action.QUERY) else None
    if rows:
        rate_limit_check(request, "query")  # the drill-down's rows are a warehouse query
    trace = value_trace_get(value_id=value_id, principal=principal_for(request.user), rows=rows)
    return render(request, "semantic/value_trace.html", {"trace": trace})
