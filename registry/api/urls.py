from __future__ import annotations

from django.urls import path, re_path

from registry.api import access, proposals, views

COLLECTION = r"(?P<collection>metrics|semantic-models|saved-queries|contracts)"
NAME = r"(?P<name>[A-Za-z0-9_.\-]+)"

urlpatterns = [
    path("me", access.MeApi.as_view(), name="me"),
    path("tokens", access.TokenListApi.as_view(), name="token-list"),
    path("tokens/<int:token_id>", access.TokenDetailApi.as_view(), name="token-detail"),
    path("roles", access.RoleListApi.as_view(), name="role-list"),
    path("roles/revoke", access.RoleRevokeApi.as_view(), name="role-revoke"),
    path("audit-log", access.AuditLogApi.as_view(), name="audit-log"),
    re_path(rf"^{COLLECTION}$", views.DefinitionListApi.as_view(), name="definition-list"),
    re_path(
        rf"^{COLLECTION}/{NAME}$", views.DefinitionDetailApi.as_view(), name="definition-detail"
    ),
    re_path(
        rf"^{COLLECTION}/{NAME}/diff$", views.DefinitionDiffApi.as_view(), name="definition-diff"
    ),
    re_path(
        rf"^{COLLECTION}/{NAME}/versions/(?P<version>[0-9.#]+)$",
        views.DefinitionVersionDetailApi.as_view(),
        name="definition-version",
    ),
    path("releases", views.ReleaseListApi.as_view(), name="release-list"),
    path("releases/<str:ref>", views.ReleaseDetailApi.as_view(), name="release-detail"),
    path("proposals", proposals.ProposalListApi.as_view(), name="proposal-list"),
    path(
        "proposals/<int:proposal_id>", proposals.ProposalDetailApi.as_view(), name="proposal-detail"
    ),
    path(
        "proposals/<int:proposal_id>/revisions",
        proposals.ProposalRevisionsApi.as_view(),
        name="proposal-revisions",
    ),
    path(
        "proposals/<int:proposal_id>/reviews",
        proposals.ProposalReviewsApi.as_view(),
        name="proposal-reviews",
    ),
    path(
        "proposals/<int:proposal_id>/comments",
        proposals.ProposalCommentsApi.as_view(),
        name="proposal-comments",
    ),
    path(
        "proposals/<int:proposal_id>/checks",
        proposals.ProposalChecksApi.as_view(),
        name="proposal-checks",
    ),
    path(
        "proposals/<int:proposal_id>/open",
        proposals.ProposalOpenApi.as_view(),
        name="proposal-open",
    ),
    path(
        "proposals/<int:proposal_id>/merge",
        proposals.ProposalMergeApi.as_view(),
        name="proposal-merge",
    ),
    path(
        "proposals/<int:proposal_id>/close",
        proposals.ProposalCloseApi.as_view(),
        name="proposal-close",
    ),
    path(
        "proposals/<int:proposal_id>/rebase",
        proposals.ProposalRebaseApi.as_view(),
        name="proposal-rebase",
    ),
    path(
        "proposals/<int:proposal_id>/timeline",
        proposals.ProposalTimelineApi.as_view(),
        name="proposal-timeline",
    ),
]
