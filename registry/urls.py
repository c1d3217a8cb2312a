"""Web UI routes of the registry: catalog, metric pages, proposals, contracts."""

from __future__ import annotations

from django.urls import path, re_path

from registry import views

NAME = r"(?P<name>[A-Za-z0-9_.\-]+)"

urlpatterns = [
    path("metrics", views.catalog, name="catalog"),
    re_path(rf"^metrics/{NAME}$", views.metric_detail, name="metric-detail"),
    re_path(rf"^metrics/{NAME}/edit$", views.metric_edit, name="metric-edit"),
    path("proposals", views.proposal_list, name="proposal-list"),
    path("proposals/<int:proposal_id>", views.proposal_detail, name="proposal-detail"),
    path("proposals/<int:proposal_id>/review", views.proposal_review_post, name="proposal-review"),
    path(
        "proposals/<int:proposal_id>/comment", views.proposal_comment_post, name="proposal-comment"
    ),
    path("proposals/<int:proposal_id>/merge", views.proposal_merge_post, name="proposal-merge"),
    path("proposals/<int:proposal_id>/revise", views.proposal_revise_post, name="proposal-revise"),
    path("proposals/<int:proposal_id>/rebase", views.proposal_rebase_post, name="proposal-rebase"),
    path("proposals/<int:proposal_id>/close", views.proposal_close_post, name="proposal-close"),
    path("proposals/<int:proposal_id>/open", views.proposal_open_post, name="proposal-open"),
    path("proposals/<int:proposal_id>/checks", views.proposal_checks_post, name="proposal-checks"),
    path("contracts", views.contract_list, name="contract-list"),
    re_path(rf"^contracts/{NAME}$", views.contract_detail, name="contract-detail"),
]
