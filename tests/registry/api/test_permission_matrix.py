"""Each role × each endpoint: allowed calls pass the access check, the rest are 403 with a
reason (anonymous: 401). The expected table is written out here, not derived from
registry/roles.py, so a change to either shows up as a failing cell."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import LazySettings
from django.test import Client

from registry.models import AuditEvent, Domain, Release
from registry.services.access import role_grant, token_create
from registry.services.proposals import proposal_create
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT
from tests.registry.proposals_setup import metric_yaml

ALL = {"viewer", "analyst", "editor", "reviewer", "governance", "auditor", "admin"}
READERS = ALL
COMPILERS = ALL - {"viewer"}
COMPUTERS = {"governance", "admin"}
PROPOSERS = {"editor", "reviewer", "governance", "admin"}
REVIEWERS = {"reviewer", "governance", "admin"}
AUDIT_READERS = {"governance", "auditor", "admin"}

# (method, path, body, roles allowed). Bodies are chosen so that an allowed call fails
# *after* the access check (400/404) or succeeds; only the access check may say 401/403.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/api/v1/metrics", None, READERS),
    ("GET", "/api/v1/metrics/revenue", None, READERS),
    ("GET", "/api/v1/releases", None, READERS),
    ("GET", "/api/v1/lineage/nodes?q=revenue", None, READERS),
    ("GET", "/api/v1/metrics/revenue/dimensions", None, READERS),
    ("GET", "/api/v1/metrics/no_such_metric/dimensions/account__plan/values", None, COMPILERS),
    ("POST", "/api/v1/compile", {"metrics": ["revenue"], "group_by": ["metric_time__month"]},
     COMPILERS),
    ("POST", "/api/v1/query", {"metrics": ["no_such_metric"]}, COMPILERS),
    ("GET", "/api/v1/values", None, READERS),
    ("GET", "/api/v1/runs", None, READERS),
    ("GET", "/api/v1/audits", None, READERS),
    ("POST", "/api/v1/runs", {"metrics": ["no_such_metric"]}, COMPUTERS),
    ("POST", "/api/v1/time-spine", {"start": "not-a-date"}, COMPUTERS),
    ("GET", "/api/v1/proposals", None, READERS),
    ("POST", "/api/v1/proposals", {"title": ""}, PROPOSERS),
    ("POST", "/api/v1/proposals/999/comments", {"body": "hi"}, READERS),
    ("POST", "/api/v1/proposals/999/reviews", {"verdict": "approve"}, REVIEWERS),
    ("POST", "/api/v1/proposals/999/merge", None, PROPOSERS),
    ("GET", "/api/v1/audit-log", None, AUDIT_READERS),
    ("GET", "/api/v1/roles", None, {"admin"}),
    ("POST", "/api/v1/roles", {"user": "nobody", "role": "viewer"}, {"admin"}),
    ("GET", "/api/v1/tokens", None, ALL | {"none"}),
    ("GET", "/api/v1/me", None, ALL | {"none"}),
]  # fmt: skip
ROLES = ["none", *sorted(ALL)]


@pytest.fixture
def matrix_users(
    registry_r1: Release, django_user_model: Any, settings: LazySettings
) -> dict[str, Any]:
    """One user per role (editor and reviewer in domain product), and no default role."""
    settings.TALLY_DEFAULT_ROLE = ""
    settings.WAREHOUSE = parse_warehouse_url("duckdb:///:memory:", base_dir=ROOT)
    users = {}
    for role in ROLES:
        user = django_user_model.objects.create_user(f"as-{role}")
        if role != "none":
            domain = "product" if role in ("editor", "reviewer") else None
            role_grant(user=user, role=role, domain=domain)
        users[role] = user
    return users


def _call(client: Client, method: str, path: str, body: dict[str, Any] | None) -> Any:
    if method == "GET":
        return client.get(path)
    return client.post(path, body or {}, content_type="application/json")


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS,
                         ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])  # fmt: skip
def test_role_matrix(
    client: Client,
    matrix_users: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: set[str],
) -> None:
    """Every role gets exactly the endpoints its row of the table allows."""
    anonymous = _call(client, method, path, body)
    assert anonymous.status_code == 401, anonymous.content
    cells = {}
    for role in ROLES:
        client.force_login(matrix_users[role])
        response = _call(client, method, path, body)
        assert response.status_code != 500, (role, response.content)
        cells[role] = response.status_code
        if role not in allowed:
            assert response.status_code == 403, (role, response.content)
            error = response.json()["error"]
            assert error["code"] in ("forbidden", "not_a_reviewer")
            assert "may not" in error["message"] and error["hint"]
    assert {r for r, status in cells.items() if status not in (401, 403)} == allowed, cells


# --------------------------------------------------------------------------- tokens × scopes

SCOPE_ENDPOINTS = [
    ("GET", "/api/v1/metrics", None, {"read", "compile", "query", "propose", "audit"}),
    ("POST", "/api/v1/compile", {"metrics": ["revenue"]}, {"compile"}),
    ("POST", "/api/v1/query", {"metrics": ["no_such_metric"]}, {"query"}),
    ("GET", "/api/v1/values", None, {"read"}),
    ("POST", "/api/v1/proposals", {"title": ""}, {"propose"}),
    ("GET", "/api/v1/audit-log", None, {"audit"}),
    ("GET", "/api/v1/roles", None, set()),
    ("POST", "/api/v1/runs", {"metrics": ["no_such_metric"]}, set()),
]


@pytest.mark.parametrize("service", [False, True], ids=["admin-token", "service-token"])
def test_token_scopes_bound_what_a_token_may_do(
    client: Client, matrix_users: dict[str, Any], service: bool
) -> None:
    """An admin's token can do only what its scope allows; so can a service account's."""
    for scope in ("read", "compile", "query", "propose", "audit"):
        created = token_create(
            acting_user=None,
            scopes=[scope],
            user=None if service else matrix_users["admin"],
            service=f"bi-{scope}" if service else None,
        )
        auth = {"HTTP_AUTHORIZATION": f"Bearer {created.raw}"}
        for method, path, body, scopes in SCOPE_ENDPOINTS:
            if method == "GET":
                response = client.get(path, **auth)
            else:
                response = client.post(path, body, content_type="application/json", **auth)
            assert response.status_code != 500, (scope, path, response.content)
            expect_allowed = scope in scopes
            assert (response.status_code not in (401, 403)) == expect_allowed, (
                scope,
                path,
                response.status_code,
                response.content,
            )
            if not expect_allowed:
                assert "scopes" in response.json()["error"]["message"]


def test_a_token_never_exceeds_its_user(client: Client, matrix_users: dict[str, Any]) -> None:
    """A viewer's token with the query scope (made by the operator) still cannot query."""
    created = token_create(acting_user=None, scopes=["query"], user=matrix_users["viewer"])
    response = client.post(
        "/api/v1/query",
        {"metrics": ["revenue"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {created.raw}",
    )
    assert response.status_code == 403
    assert "roles (viewer)" in response.json()["error"]["message"]
    denied = AuditEvent.objects.get(action="access.denied")
    assert denied.object_name == "POST /api/v1/query" and denied.token_id == created.token.pk
    assert denied.payload["action"] == "query" and denied.actor == matrix_users["viewer"]


# --------------------------------------------------------------------------- per domain


@pytest.fixture
def product_proposal(owner: Any) -> Any:
    files = {"revenue.yml": metric_yaml("revenue", {"label: Revenue": "label: Net revenue"})}
    return proposal_create(acting_user=owner, title="relabel revenue", files=files)


def test_merge_needs_merge_rights_in_the_proposals_domain(
    client: Client, product_proposal: Any, django_user_model: Any
) -> None:
    """An editor of another domain is refused by the access check, naming the domain; an
    editor of product passes it and meets the review service's own rule (not the author)."""
    Domain.objects.create(slug="growth", name="Growth")
    elsewhere = django_user_model.objects.create_user("growth-editor")
    role_grant(user=elsewhere, role="editor", domain="growth")
    client.force_login(elsewhere)
    response = client.post(f"/api/v1/proposals/{product_proposal.pk}/merge")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "in domain product" in response.json()["error"]["message"]

    here = django_user_model.objects.create_user("product-editor")
    role_grant(user=here, role="editor", domain="product")
    client.force_login(here)
    response = client.post(f"/api/v1/proposals/{product_proposal.pk}/merge")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_allowed"


def test_an_explicit_reviewer_grant_counts_as_the_domains_team(
    client: Client, product_proposal: Any, django_user_model: Any
) -> None:
    """reviewer@product (not a team member) may approve, and the approval covers the
    product-analytics team the policy requires."""
    steward = django_user_model.objects.create_user("steward")
    role_grant(user=steward, role="reviewer", domain="product")
    client.force_login(steward)
    response = client.post(
        f"/api/v1/proposals/{product_proposal.pk}/reviews",
        {"verdict": "approve"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    detail = client.get(f"/api/v1/proposals/{product_proposal.pk}").json()
    codes = {b["code"] for b in detail["blockers"]}
    assert "team_approval_missing" not in codes and "approvals_missing" not in codes


def test_team_membership_makes_a_domain_reviewer(owner: Any, registry_r1: Release) -> None:
    """The owner persona (lead of product-analytics, which owns domain product) reviews
    there without any explicit grant; has_perm answers the same through rules."""
    from registry.permissions import user_grants

    assert "reviewer@product" in user_grants(owner).labels()
    assert owner.has_perm("registry.review", Domain.objects.get(slug="product"))
    assert not owner.has_perm("registry.view_audit_log")


# --------------------------------------------------------------------------- messages and roles API


def test_denial_messages_say_who_what_and_why(client: Client, matrix_users: dict[str, Any]) -> None:
    """Snapshot of the two denial texts: by role, and by token scope."""
    client.force_login(matrix_users["viewer"])
    error = client.post(
        "/api/v1/compile", {"metrics": ["revenue"]}, content_type="application/json"
    ).json()["error"]
    assert error == {
        "code": "forbidden",
        "message": "'as-viewer' may not compile: your roles (viewer) do not allow it",
        "hint": "ask an admin: tally role grant as-viewer ROLE [--domain D]",
        "location": None,
        "details": {"action": "compile", "domains": []},
    }
    created = token_create(
        acting_user=None, scopes=["read"], user=matrix_users["admin"], name="looker"
    )
    error = (
        Client()
        .post(
            "/api/v1/compile",
            {"metrics": ["revenue"]},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {created.raw}",
        )
        .json()["error"]
    )
    assert error["message"] == (
        "token 'looker' may not compile: the token's scopes (read) do not include it"
    )
    assert error["hint"] == (
        "create a token with a scope that allows it (tally token create --scope …)"
    )


def test_admins_grant_and_revoke_roles_over_the_api(
    client: Client, matrix_users: dict[str, Any]
) -> None:
    client.force_login(matrix_users["admin"])
    granted = client.post(
        "/api/v1/roles",
        {"user": "as-viewer", "role": "reviewer", "domain": "product"},
        content_type="application/json",
    )
    assert granted.status_code == 201, granted.json()
    assert (granted.json()["role"], granted.json()["domain"]) == ("reviewer", "product")
    listed = client.get("/api/v1/roles?user=as-viewer").json()["results"]
    assert {(g["role"], g["domain"]) for g in listed} == {("viewer", None), ("reviewer", "product")}
    missing_domain = client.post(
        "/api/v1/roles", {"user": "as-viewer", "role": "editor"}, content_type="application/json"
    )
    assert missing_domain.status_code == 400
    assert missing_domain.json()["error"]["location"] == "domain"
    revoked = client.post(
        "/api/v1/roles/revoke",
        {"user": "as-viewer", "role": "reviewer", "domain": "product"},
        content_type="application/json",
    )
    assert revoked.json() == {"revoked": 1}
