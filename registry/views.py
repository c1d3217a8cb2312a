from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from registry import rights
from registry.forms import (
    CatalogForm,
    CloseForm,
    CommentForm,
    ProposalFilterForm,
    ProposeEditForm,
    ReviewForm,
    ReviseForm,
)
from registry.models import Kind, Status
from registry.permissions import page_require, principal_for
from registry.roles import Action
from registry.selectors import proposal_get
from registry.services.proposal_checks import proposal_checks_rerun
from registry.services.proposals import (
    proposal_close,
    proposal_comment,
    proposal_create,
    proposal_merge,
    proposal_open,
    proposal_rebase,
    proposal_review,
    proposal_update,
)
from registry.services.review_policy import proposal_policy_get
from registry.ui_selectors import (
    CatalogFilters,
    catalog_page_get,
    contract_list_get,
    contract_page_get,
    definition_page_get,
    proposal_list_get,
    proposal_page_get,
)
from semantic.ui_selectors import metric_page_get, metrics_health_get
from tally.errors import ConflictError, PermissionDenied, UserError
from tally.ui import flash_error, flash_form_errors, is_htmx, page_access

HINT_RETIRED = "propose a new metric, or restore {name} with a proposal that adds it again"


@login_required
@require_GET
@page_access(Action.READ)
def catalog(request: HttpRequest) -> HttpResponse:
    form = CatalogForm(request.GET)
    form.is_valid()  # cleaned_data keeps the valid fields; the page lists the others' errors
    data = form.cleaned_data
    page = catalog_page_get(
        filters=CatalogFilters(
            q=data.get("q") or "",
            owner=data.get("owner") or "",
            domain=data.get("domain") or "",
            tier=data.get("tier") or "",
            status=data.get("status") or "",
            offset=data.get("offset") or 0,
        )
    )
    # One health badge per metric row (freshness, last audit, anomalies), linking to the
    # metric's audits.
    health = metrics_health_get(
        metrics=[d.name for d in page.rows if d.kind == "metric"], user=request.user
    )
    context = {"page": page, "form": form, "invalid": not form.is_valid(), "health": health}
    template = "registry/_catalog_results.html" if is_htmx(request) else "registry/catalog.html"
    return render(request, template, context)


@login_required
@require_GET
@page_access(Action.READ)
def metric_detail(request: HttpRequest, name: str) -> HttpResponse:
    page = metric_page_get(
        name=name,
        user=request.user,
        principal=principal_for(request.user),
        grain=request.GET.get("grain") or None,
        dialect=request.GET.get("dialect") or None,
    )
    return render(request, "registry/metric.html", page)


@login_required
@require_http_methods(["GET", "POST"])
@page_access(Action.PROPOSE)
def metric_edit(request: HttpRequest, name: str) -> HttpResponse:
    page = definition_page_get(kind=Kind.METRIC, name=name, user=request.user)
    # Proposing needs the propose action in the metric's own domain.
    page_require(request, Action.PROPOSE, obj=page.definition)
    if page.definition.status == Status.RETIRED:
        raise UserError(
            f"{name} is retired", code="definition_retired", hint=HINT_RETIRED.format(name=name)
        )
    if request.method == "POST":
        form = ProposeEditForm(request.POST)
        if form.is_valid():
            try:
                proposal = proposal_create(
                    acting_user=request.user,
                    title=form.cleaned_data["title"],
                    description=form.cleaned_data["description"],
                    files={f"metrics/{name}.yml": form.cleaned_data["definition"]},
                    retire=[],
                    open_now=not form.cleaned_data["draft"],
                )
            except UserError as exc:
                form.add_error(None, f"{exc.message}" + (f" — {exc.hint}" if exc.hint else ""))
            else:
                messages.success(request, f"Proposal #{proposal.pk} opened; checks are running.")
                return redirect("proposal-detail", proposal_id=proposal.pk)
    else:
        form = ProposeEditForm(
            initial={"title": f"{name}: ", "definition": page.spec_yaml, "description": ""}
        )
    return render(request, "registry/metric_edit.html", {"page": page, "form": form})


# --------------------------------------------------------------------------- proposals


@login_required
@require_GET
@page_access(Action.READ)
def proposal_list(request: HttpRequest) -> HttpResponse:
    form = ProposalFilterForm(request.GET)
    state = form.cleaned_data["state"] if form.is_valid() else ""
    return render(
        request,
        "registry/proposals.html",
        {"proposals": proposal_list_get(state=state), "form": form, "state": state},
    )


@login_required
@require_GET
@page_access(Action.READ)
def proposal_detail(request: HttpRequest, proposal_id: int) -> HttpResponse:
    page = proposal_page_get(proposal_id=proposal_id, user=request.user)
    return render(request, "registry/proposal.html", page)


def _back(proposal_id: int) -> HttpResponseRedirect:
    return redirect("proposal-detail", proposal_id=proposal_id)


@login_required
@require_POST
@page_access(Action.REVIEW)
def proposal_review_post(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = proposal_get(proposal_id=proposal_id)
    page_require(request, Action.REVIEW, obj=proposal)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        flash_form_errors(request, form)
        return _back(proposal_id)
    try:
        proposal_review(
            proposal=proposal,
            acting_user=request.user,
            verdict=form.cleaned_data["verdict"],
            body=form.cleaned_data["body"],
        )
    except UserError as exc:
        flash_error(request, exc)
    else:
        verdict = form.cleaned_data["verdict"]
        messages.success(request, "Approved." if verdict == "approve" else "Changes requested.")
    return _back(proposal_id)


@login_required
@require_POST
@page_access(Action.COMMENT)
def proposal_comment_post(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = proposal_get(proposal_id=proposal_id)
    form = CommentForm(request.POST)
    if not form.is_valid():
        flash_form_errors(request, form)
        return _back(proposal_id)
    try:
        proposal_comment(
            proposal=proposal,
            acting_user=request.user,
            **form.cleaned_data,
        )
    except UserError as exc:
        flash_error(request, exc)
    return HttpResponseRedirect(reverse("proposal-detail", args=[proposal_id]) + "#discussion")


@login_required
@require_POST
@page_access(Action.PROPOSE)
def proposal_revise_post(request: HttpRequest, proposal_id: int) -> HttpResponse:
    """The author pushes a revision from the page (after failed checks or "request
    changes"): the edited file is laid over the current revision; reviews are dismissed and
    the checks run again, as over the API."""
    form = ReviseForm(request.POST)
    proposal = proposal_get(proposal_id=proposal_id)
    if not form.is_valid():
        flash_form_errors(request, form)
        return _back(proposal_id)
    try:
        proposal = proposal_update(
            proposal=proposal,
            acting_user=request.user,
            files={form.cleaned_data["path"]: form.cleaned_data["definition"]},
        )
    except UserError as exc:
        flash_error(request, exc)
    else:
        messages.success(
            request, f"Revision {proposal.revision} pushed; earlier reviews are dismissed and "
            "the checks run again."
        )  # fmt: skip
    return _back(proposal_id)


@login_required
@require_POST
@page_access(Action.PROPOSE)
def proposal_rebase_post(request: HttpRequest, proposal_id: int) -> HttpResponse:
    """Moves the proposal onto the latest release; conflicts are listed field by field."""
    proposal = proposal_get(proposal_id=proposal_id)
    try:
        proposal = proposal_rebase(proposal=proposal, acting_user=request.user)
    except ConflictError as exc:
        flash_error(request, exc)
        for conflict in exc.details or []:
            if isinstance(conflict, dict):
                messages.error(request, _conflict_text(conflict))
    except UserError as exc:
        flash_error(request, exc)
    else:
        base = proposal.base_release.name if proposal.base_release else "?"
        messages.success(request, f"Rebased onto {base} (revision {proposal.revision}).")
    return _back(proposal_id)


def _conflict_text(conflict: dict[str, Any]) -> str:
    """One conflicting field: where, and what the base, the release and the proposal say."""
    where = f"conflict in {conflict.get('definition', '?')} {conflict.get('path', '')}".strip()
    sides = [
        f"{label}: {conflict[key]!r}"
        for key, label in (("base", "base"), ("theirs", "release"), ("ours", "proposal"))
        if key in conflict
    ]
    return where + (f" ({'; '.join(sides)})" if sides else "")


@login_required
@require_POST
@page_access(Action.MERGE)
def proposal_merge_post(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = proposal_get(proposal_id=proposal_id)
    page_require(request, Action.MERGE, obj=proposal)
    try:
        proposal = proposal_merge(proposal=proposal, acting_user=request.user)
    except UserError as exc:
        flash_error(request, exc)
    else:
        release = proposal.merged_release.name if proposal.merged_release else "?"
        messages.success(request, f"Merged as release {release}.")
    return _back(proposal_id)


@login_required
@require_POST
@page_access(Action.PROPOSE)
def proposal_close_post(request: HttpRequest, proposal_id: int) -> HttpResponse:
    form = CloseForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    proposal = proposal_get(proposal_id=proposal_id)
    try:
        proposal_close(proposal=proposal, acting_user=request.user, reason=reason)
    except UserError as exc:
        flash_error(request, exc)
    else:
        messages.success(request, "Closed.")
    return _back(proposal_id)


@login_required
@require_POST
@page_access(Action.PROPOSE)
def proposal_open_post(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = proposal_get(proposal_id=proposal_id)
    try:
        proposal_open(proposal=proposal, acting_user=request.user)
    except UserError as exc:
        flash_error(request, exc)
    else:
        messages.success(request, "Opened for review.")
    return _back(proposal_id)


@login_required
@require_POST
@page_access(Action.PROPOSE)
def proposal_checks_post(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = proposal_get(proposal_id=proposal_id)
    if not rights.may_rerun_checks(request.user, proposal, proposal_policy_get(proposal=proposal)):
        raise PermissionDenied(
            "only the author or a reviewer may re-run the checks of an unmerged proposal",
            code="not_allowed",
        )
    try:
        proposal_checks_rerun(proposal=proposal, acting_user=request.user)
    except UserError as exc:
        flash_error(request, exc)
    else:
        messages.success(request, "Checks re-run.")
    return _back(proposal_id)


# --------------------------------------------------------------------------- contracts


@login_required
@require_GET
@page_access(Action.READ)
def contract_list(request: HttpRequest) -> HttpResponse:
    return render(request, "registry/contracts.html", {"contracts": contract_list_get()})


@login_required
@require_GET
@page_access(Action.READ)
def contract_detail(request: HttpRequest, name: str) -> HttpResponse:
    return render(
        request, "registry/contract.html", contract_page_get(name=name, user=request.user)
    )
