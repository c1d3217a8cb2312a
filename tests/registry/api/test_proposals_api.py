"""Proposals API end to end through the client: status codes and error codes pinned."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from registry.services.access import role_grant
from tests.conftest import ROOT
from tests.registry.proposals_setup import metric_yaml

pytestmark = pytest.mark.django_db

CHANGE = {"measure: revenue": "measure: events_tracked"}


def _as(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def _create(client: Client, capture: Any, **extra: Any) -> dict[str, Any]:
    body = {
        "title": "Count events as revenue",
        "files": {"revenue.yml": metric_yaml(replace=CHANGE)},
    }
    with capture(execute=True):
        response = client.post("/api/v1/proposals", body | extra, content_type="application/json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_proposals_need_a_signed_in_user(client: Client, registry_r1: Any) -> None:
    response = client.get("/api/v1/proposals")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_propose_review_merge_through_the_api(
    client: Client, owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The 'done when' path over HTTP: checks and diff visible, approve, merge into r2."""
    capture = django_capture_on_commit_callbacks
    created = _create(_as(client, owner), capture)
    pid = created["proposal"]["id"]
    assert created["proposal"]["state"] == "open"
    assert created["changes"][0]["action"] == "change"
    assert created["changes"][0]["level"] == "major"
    # Checks run after the create commits: the create answer shows them pending.
    assert {c["status"] for c in created["checks"]} == {"pending"}
    checks = client.get(f"/api/v1/proposals/{pid}/checks").json()
    assert {c["kind"]: c["status"] for c in checks}["compile"] == "passed"
    assert {b["code"] for b in created["blockers"]} == {
        "checks_pending",
        "approvals_missing",
        "team_approval_missing",
    }

    with capture(execute=True):
        response = _as(client, reviewer).post(
            f"/api/v1/proposals/{pid}/reviews",
            {"verdict": "approve", "body": "numbers look right"},
            content_type="application/json",
        )
    assert response.status_code == 201
    detail = client.get(f"/api/v1/proposals/{pid}").json()
    assert (detail["proposal"]["state"], detail["mergeable"]) == ("approved", True)

    with capture(execute=True):
        merged = client.post(f"/api/v1/proposals/{pid}/merge")
    assert merged.status_code == 200
    assert merged.json()["proposal"]["merged_release"] == "r2"
    actions = [e["action"] for e in client.get(f"/api/v1/proposals/{pid}/timeline").json()]
    assert actions[0] == "proposal.create" and actions[-1] == "proposal.merge"
    assert "proposal.review" in actions and "proposal.check" in actions
    assert client.get("/api/v1/releases/r1").json()["versions"]["metric"]["revenue"] == "1.0"
    assert client.get("/api/v1/releases/r2").json()["versions"]["metric"]["revenue"] == "2.0"


def test_self_approval_is_403_self_review(
    client: Client, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pid = _create(_as(client, owner), django_capture_on_commit_callbacks)["proposal"]["id"]
    response = client.post(
        f"/api/v1/proposals/{pid}/reviews", {"verdict": "approve"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "self_review"


def test_approval_without_reviewer_rights_is_403(
    client: Client, owner: Any, outsider: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pid = _create(_as(client, owner), django_capture_on_commit_callbacks)["proposal"]["id"]
    response = _as(client, outsider).post(
        f"/api/v1/proposals/{pid}/reviews", {"verdict": "approve"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_reviewer"


def test_merge_without_approval_is_400_merge_blocked(
    client: Client, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pid = _create(_as(client, owner), django_capture_on_commit_callbacks)["proposal"]["id"]
    response = client.post(f"/api/v1/proposals/{pid}/merge")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "merge_blocked"
    assert {d["code"] for d in error["details"]} >= {"approvals_missing"}


def test_merge_of_a_stale_base_is_409_then_rebase_fixes_it(
    client: Client, owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    first = _create(_as(client, owner), capture)["proposal"]["id"]
    second = _create(
        client,
        capture,
        files={"revenue.yml": metric_yaml(replace={"label: Revenue": "label: Sales"})},
    )["proposal"]["id"]
    _as(client, reviewer)
    with capture(execute=True):
        for pid in (first, second):
            client.post(
                f"/api/v1/proposals/{pid}/reviews",
                {"verdict": "approve"},
                content_type="application/json",
            )
        assert client.post(f"/api/v1/proposals/{first}/merge").status_code == 200
    stale = client.post(f"/api/v1/proposals/{second}/merge")
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale_base"
    with capture(execute=True):
        rebased = client.post(f"/api/v1/proposals/{second}/rebase")
    assert rebased.status_code == 200
    assert rebased.json()["proposal"]["base_release"] == "r2"


def test_comments_on_a_field_and_unknown_definitions(
    client: Client, owner: Any, outsider: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pid = _create(_as(client, owner), django_capture_on_commit_callbacks)["proposal"]["id"]
    _as(client, outsider)
    ok = client.post(
        f"/api/v1/proposals/{pid}/comments",
        {
            "body": "why events?",
            "definition": "metric:revenue",
            "field_path": "type_params.measure",
        },
        content_type="application/json",
    )
    assert ok.status_code == 201
    assert (ok.json()["definition"], ok.json()["field_path"]) == (
        "metric:revenue",
        "type_params.measure",
    )
    bad = client.post(
        f"/api/v1/proposals/{pid}/comments",
        {"body": "?", "definition": "metric:mrr"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "unknown_definition"


def test_invalid_yaml_is_400_with_its_location(client: Client, owner: Any) -> None:
    text = metric_yaml(replace={"type: simple": "type: simple\n    colour: red"})
    response = _as(client, owner).post(
        "/api/v1/proposals",
        {"title": "bad", "files": {"bad.yml": text}},
        content_type="application/json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_definitions" and error["location"].startswith("bad.yml:")


def test_unknown_proposal_is_404(client: Client, owner: Any) -> None:
    response = _as(client, owner).get("/api/v1/proposals/999")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_proposal"


def test_list_filters_by_state_in_constant_queries(
    client: Client,
    owner: Any,
    django_capture_on_commit_callbacks: Any,
    django_assert_num_queries: Any,
) -> None:
    capture = django_capture_on_commit_callbacks
    _create(_as(client, owner), capture)
    _create(
        client,
        capture,
        files={"revenue.yml": metric_yaml(replace={"label: Revenue": "label: Sales"})},
        draft=True,
    )
    # session + user, role grants + teams (access check), count, page
    with django_assert_num_queries(6):
        response = client.get("/api/v1/proposals?state=open")
    assert [p["state"] for p in response.json()["results"]] == ["open"]


def test_revisions_and_check_reruns_through_the_api(
    client: Client, owner: Any, django_capture_on_commit_callbacks: Any, django_user_model: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    pid = _create(_as(client, owner), capture)["proposal"]["id"]
    with capture(execute=True):
        revised = client.post(
            f"/api/v1/proposals/{pid}/revisions",
            {"files": {"revenue.yml": metric_yaml(replace={"label: Revenue": "label: Sales"})}},
            content_type="application/json",
        )
    assert revised.status_code == 201
    assert revised.json()["proposal"]["revision"] == 2
    revisions = client.get(f"/api/v1/proposals/{pid}/revisions").json()
    assert [r["revision"] for r in revisions] == [1, 2]
    # The new file replaced the earlier version of the same metric in revision 2.
    assert revisions[1]["changes"][0]["spec"]["label"] == "Sales"
    assert revisions[1]["changes"][0]["spec"]["type_params"]["measure"]["name"] == "revenue"
    with capture(execute=True):
        rerun = client.post(f"/api/v1/proposals/{pid}/checks")
    assert rerun.status_code == 202
    checks = client.get(f"/api/v1/proposals/{pid}/checks").json()
    assert {c["revision"] for c in checks} == {2}
    assert {c["kind"]: c["status"] for c in checks}["validation"] == "passed"
    # An editor who neither wrote nor reviews it may not make it query the warehouse again.
    stranger = django_user_model.objects.create_user("edna")
    role_grant(user=stranger, role="editor", domain="product")
    denied = _as(client, stranger).post(f"/api/v1/proposals/{pid}/checks")
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "not_allowed")
    _as(client, owner)
    closed = client.post(f"/api/v1/proposals/{pid}/close", {"reason": "x"})
    assert closed.json()["proposal"]["state"] == "closed"
    refused = client.post(f"/api/v1/proposals/{pid}/checks")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "proposal_not_open")


def test_proposing_needs_propose_in_the_changed_definitions_domain(
    client: Client, fixtures_registry: None, django_user_model: Any
) -> None:
    """An editor of growth may not propose a change to a revenue metric through the API (as
    the UI's edit page refuses it); nothing is written; in growth the same editor may."""
    from registry.models import Proposal

    editor = django_user_model.objects.create_user("eddie")
    role_grant(user=editor, role="editor", domain="growth")
    revenue = (ROOT / "fixtures" / "metrics" / "revenue.yml").read_text()
    changed = revenue.replace("Amount of paid invoices", "Amount of paid invoices (edited)", 1)
    assert changed != revenue
    denied = _as(client, editor).post(
        "/api/v1/proposals",
        {"title": "edit revenue", "files": {"revenue.yml": changed}},
        content_type="application/json",
    )
    assert denied.status_code == 403, denied.json()
    assert "revenue" in denied.json()["error"]["message"]
    assert not Proposal.objects.exists()
    growth = (ROOT / "fixtures" / "metrics" / "growth.yml").read_text()
    edited = growth.replace("description: ", "description: (edited) ", 1)
    created = client.post(
        "/api/v1/proposals",
        {"title": "edit growth", "files": {"growth.yml": edited}},
        content_type="application/json",
    )
    assert created.status_code == 201, created.json()
