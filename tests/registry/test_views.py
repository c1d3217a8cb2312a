"""Web UI pages of the registry through the Django test client: status, content, empty states,
rights (who sees which button) and errors rendered as pages, never 500s."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from registry.models import AuditEvent, Proposal, Release
from registry.services.access import role_grant
from registry.services.definitions import definitions_sync
from registry.services.proposals import SELF_REVIEW
from semantic.ui_selectors import MSG_NO_COMPILE
from tests.registry.factories import UserFactory
from tests.registry.proposals_setup import (
    METRICS_YAML,
    bind_to_tenant,
    metric_yaml,
    write_registry,
)

pytestmark = pytest.mark.django_db

CHANGE = {"measure: revenue": "measure: events_tracked"}


def _as(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def _htmx(client: Client, url: str) -> Any:
    return client.get(url, headers={"HX-Request": "true"})


def test_pages_need_a_signed_in_user(client: Client, registry_r1: Release) -> None:
    for url in ("/metrics", "/metrics/revenue", "/proposals", "/contracts", "/explore", "/runs"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next=")


def test_sign_in_page_signs_in_and_lands_on_the_catalog(client: Client, owner: Any) -> None:
    owner.set_password("pw-123456")
    owner.save()
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b"Sign in to Tally" in page.content
    wrong = client.post("/accounts/login/", {"username": "owner", "password": "nope"})
    assert wrong.status_code == 200 and b"did not match" in wrong.content
    right = client.post("/accounts/login/", {"username": "owner", "password": "pw-123456"})
    assert right.status_code == 302 and right["Location"] == "/metrics"


def test_catalog_lists_metrics_with_facets_and_certification(client: Client, outsider: Any) -> None:
    response = _as(client, outsider).get("/metrics")
    assert response.status_code == 200
    page = response.context["page"]
    assert [d.name for d in page.rows] == ["events_tracked", "revenue", "revenue_per_event"]
    assert dict(page.facets["tier"]) == {"certified": 1, "standard": 2}
    assert dict(page.facets["owner"]) == {"product-analytics": 3}
    assert b'class="badge certified"' in response.content


def test_catalog_search_matches_every_word_over_name_owner_and_tier(
    client: Client, outsider: Any
) -> None:
    """Typing narrows the list: an htmx request gets only the results fragment."""
    _as(client, outsider)
    fragment = _htmx(client, "/metrics?q=product+certified")
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert [d.name for d in fragment.context["page"].rows] == ["events_tracked"]
    by_label = _htmx(client, "/metrics?q=per+event")
    assert [d.name for d in by_label.context["page"].rows] == ["revenue_per_event"]
    faceted = client.get("/metrics?tier=standard")
    assert [d.name for d in faceted.context["page"].rows] == ["revenue", "revenue_per_event"]
    # Facet counts ignore their own facet, so the other tiers stay clickable.
    assert dict(faceted.context["page"].facets["tier"]) == {"certified": 1, "standard": 2}


def test_catalog_empty_states_say_what_to_do(
    client: Client, db: None, django_user_model: Any
) -> None:
    client.force_login(django_user_model.objects.create_user("newcomer"))
    empty = client.get("/metrics")
    assert b"The registry has no metrics yet" in empty.content
    assert b"tally sync" in empty.content
    none = client.get("/metrics?q=zzz")
    assert b"No metric matches these filters" in none.content


def test_catalog_marks_a_deprecated_metric_with_its_replacement(
    client: Client, outsider: Any, tmp_path: Path
) -> None:
    deprecated = METRICS_YAML.replace(
        "meta: {owner: product-analytics, domain: product, tier: certified}",
        "meta: {owner: product-analytics, domain: product, tier: certified,\n"
        "             deprecated: {replacement: revenue, reason: use revenue}}",
    )
    root = write_registry(tmp_path / "defs2")
    (root / "metrics/product.yml").write_text(deprecated, encoding="utf-8")
    assert definitions_sync(root=root, acting_user=None).release is not None
    response = _as(client, outsider).get("/metrics")
    assert response.context["page"].replacements, response.content
    text = response.content.decode()
    assert 'class="deprecated"' in text
    assert re.search(r'use <a href="/metrics/revenue">revenue</a> instead', text)
    page = client.get("/metrics/events_tracked")
    assert b"This metric is deprecated" in page.content


def test_metric_page_shows_meaning_definition_versions_and_owners(
    client: Client, outsider: Any
) -> None:
    response = _as(client, outsider).get("/metrics/revenue_per_event")
    assert response.status_code == 200
    text = response.content.decode()
    assert "revenue_per_event is revenue divided by events_tracked." in text
    assert "name: revenue_per_event" in text  # the YAML
    assert "v1.0" in text and "r1" in text
    assert "owner" in text and "reviewer" in text  # product-analytics members
    # A viewer (no team) gets no edit button, and no SQL: compiling needs the compile right.
    assert 'id="edit-metric"' not in text
    assert 'data-copy="metric-sql-text"' not in text
    assert MSG_NO_COMPILE in text


def test_metric_page_shows_compiled_sql_to_a_user_who_may_compile(
    client: Client, reviewer: Any
) -> None:
    """A team member (reviewer in the domain: compile and query everywhere) sees the SQL, and
    the page's compile lands in the audit log as the API's does."""
    text = _as(client, reviewer).get("/metrics/revenue_per_event").content.decode()
    assert 'data-copy="metric-sql-text"' in text  # compiled SQL with a copy button
    event = AuditEvent.objects.filter(action="query.compile").latest("id")
    assert event.actor == reviewer and event.object_name == "revenue_per_event"


def test_metric_page_of_an_unknown_metric_is_a_404_page_with_a_hint(
    client: Client, outsider: Any
) -> None:
    response = _as(client, outsider).get("/metrics/revenu")
    assert response.status_code == 404
    assert b"no metric named" in response.content
    assert b"revenue" in response.content  # did-you-mean


def test_team_member_proposes_a_change_from_the_edit_page(
    client: Client, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _as(client, owner)
    page = client.get("/metrics/revenue")
    assert b'id="edit-metric"' in page.content
    form = client.get("/metrics/revenue/edit")
    assert form.status_code == 200 and b"name: revenue" in form.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/metrics/revenue/edit",
            {
                "title": "Count events",
                "description": "why",
                "definition": metric_yaml(replace=CHANGE),
            },
        )
    proposal = Proposal.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/proposals/{proposal.pk}"
    assert proposal.state == "open" and proposal.author == owner


def test_edit_page_refuses_a_viewer_with_a_403_page(client: Client, outsider: Any) -> None:
    """The 403 page says who may not do what where, and why (the roles)."""
    response = _as(client, outsider).get("/metrics/revenue/edit")
    assert response.status_code == 403
    text = response.content.decode()
    assert "&#x27;outsider&#x27; may not propose: your roles" in text
    assert "your roles (viewer) do not allow it" in text and "tally role grant" in text


def test_a_refusal_in_another_domain_is_a_403_page_and_audited(
    client: Client, registry_r1: Any, django_user_model: Any
) -> None:
    """An editor of another domain may open no edit page of a product metric: the 403 page
    names the domain, and the refusal leaves an access.denied row (as the API's do)."""
    from registry.models import Domain

    Domain.objects.create(slug="growth", name="Growth")
    editor = django_user_model.objects.create_user("eddie")
    role_grant(user=editor, role="editor", domain="growth")
    response = _as(client, editor).get("/metrics/revenue/edit")
    assert response.status_code == 403 and "in domain product" in response.content.decode()
    denied = AuditEvent.objects.get(action="access.denied", actor=editor)
    assert (denied.object_kind, denied.object_name) == ("page", "GET /metrics/revenue/edit")
    assert denied.payload["action"] == "propose"


def test_broken_yaml_on_the_edit_page_is_a_form_error_not_a_500(client: Client, owner: Any) -> None:
    response = _as(client, owner).post(
        "/metrics/revenue/edit",
        {"title": "Broken", "definition": "metrics:\n  - name: revenue\n    type: [unclosed"},
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert not Proposal.objects.exists()


def _proposal(client: Client, owner: Any, capture: Any) -> int:
    with capture(execute=True):
        client.force_login(owner)
        client.post(
            "/metrics/revenue/edit",
            {"title": "Count events", "definition": metric_yaml(replace=CHANGE)},
        )
    return Proposal.objects.get().pk


def test_proposal_buttons_follow_the_users_rights(
    client: Client,
    owner: Any,
    reviewer: Any,
    outsider: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    pid = _proposal(client, owner, django_capture_on_commit_callbacks)
    as_author = client.get(f"/proposals/{pid}").content.decode()
    assert 'id="approve-button"' not in as_author  # authors never review their own
    assert 'id="merge-button"' in as_author and "disabled" in as_author  # blocked: no approval
    assert "needs an approval from team product-analytics" in as_author
    as_reviewer = _as(client, reviewer).get(f"/proposals/{pid}").content.decode()
    assert 'id="approve-button"' in as_reviewer
    as_viewer = _as(client, outsider).get(f"/proposals/{pid}").content.decode()
    assert 'id="approve-button"' not in as_viewer and 'id="merge-button"' not in as_viewer
    assert f"/proposals/{pid}/checks" not in as_viewer
    assert client.post(f"/proposals/{pid}/checks").status_code == 403
    assert "You are not in a team that reviews this proposal" in as_viewer


def test_approve_and_merge_through_the_pages_publish_a_new_version(
    client: Client, owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    pid = _proposal(client, owner, capture)
    detail = client.get(f"/proposals/{pid}")
    assert {c.kind: c.status for c in detail.context["checks"]}["compile"] == "passed"
    _as(client, reviewer)
    with capture(execute=True):
        approved = client.post(f"/proposals/{pid}/review", {"verdict": "approve", "body": "ok"})
    assert approved.status_code == 302
    with capture(execute=True):
        client.post(f"/proposals/{pid}/merge")
    proposal = Proposal.objects.get(pk=pid)
    assert proposal.state == "merged" and proposal.merged_release is not None
    page = client.get("/metrics/revenue").content.decode()
    assert "v2.0" in page and "major" in page  # the new version, with its diff level
    assert "type_params.measure" in page


def test_actions_outside_the_users_roles_are_403_pages_with_the_reason(
    client: Client, owner: Any, outsider: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A viewer posting a review or a merge is refused before any service runs: a 403 page
    naming the action and the roles, and an access.denied audit row."""
    pid = _proposal(client, owner, django_capture_on_commit_callbacks)
    _as(client, outsider)
    for action, url in (("review", "review"), ("merge", "merge"), ("propose", "close")):
        response = client.post(f"/proposals/{pid}/{url}", {"verdict": "approve"})
        assert response.status_code == 403, url
        text = response.content.decode()
        assert f"may not {action}" in text and "your roles (viewer)" in text, url
    assert AuditEvent.objects.filter(action="access.denied", actor=outsider).count() == 3
    assert Proposal.objects.get(pk=pid).state == "open"


def test_failed_actions_show_a_message_not_a_500(
    client: Client, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A user who holds the role but whom the service refuses (the author reviewing their own
    proposal, merging without an approval) gets the service's message on the page."""
    pid = _proposal(client, owner, django_capture_on_commit_callbacks)
    response = client.post(f"/proposals/{pid}/review", {"verdict": "approve"}, follow=True)
    assert response.status_code == 200
    assert SELF_REVIEW in response.content.decode()
    bad = client.post(f"/proposals/{pid}/review", {"verdict": "maybe"}, follow=True)
    assert b"verdict:" in bad.content
    merge = client.post(f"/proposals/{pid}/merge", follow=True)
    assert merge.status_code == 200 and b"cannot merge yet" in merge.content
    assert Proposal.objects.get(pk=pid).state == "open"  # blocked: no approval yet
    assert client.get("/proposals/99999").status_code == 404


def test_proposal_list_and_its_empty_state(
    client: Client, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _as(client, owner)
    assert b"No proposals yet" in client.get("/proposals").content
    _proposal(client, owner, django_capture_on_commit_callbacks)
    listing = client.get("/proposals").content.decode()
    assert "Count events" in listing
    assert b"No merged proposals" in client.get("/proposals?state=merged").content


def test_contract_page_shows_schema_pii_rules_and_consumers(client: Client, outsider: Any) -> None:
    _as(client, outsider)
    listing = client.get("/contracts")
    assert listing.status_code == 200 and b"/contracts/events" in listing.content
    page = client.get("/contracts/events")
    assert page.status_code == 200
    text = page.content.decode()
    assert "revenue" in page.context["consumers"]["metrics"]
    # The semantic models that read the contract's table are named (it used to say "none").
    assert "events" in page.context["consumers"]["models"]
    assert "Freshness and SLA" in text
    assert "/lineage/impact?node=column%3Amain.events.revenue" in text
    assert client.get("/contracts/nope").status_code == 404


def test_proposal_page_draws_the_numbers_diff_of_a_meaning_change(
    client: Client, analyst: Any, warehouse_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """A major change runs old and new on the warehouse: the page charts both by month."""
    bind_to_tenant(analyst, warehouse_path)  # the check runs under the author's tenant policy
    _as(client, analyst)
    current = client.get("/metrics/revenue/edit").context["form"].initial["definition"]
    changed = current.replace("= 'paid'", "!= 'void'")
    assert changed != current
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/metrics/revenue/edit",
            {"title": "Revenue: count open invoices", "definition": changed},
        )
    url = f"/proposals/{Proposal.objects.get().pk}"
    # Another tenant's editor, and revenue's reads are row-policied: numbers computed under
    # the author's tenant policy are not his to read (counted, with the reason).
    stranger = UserFactory(username="stranger")
    bind_to_tenant(stranger, warehouse_path, rank=1)
    hidden = _as(client, stranger).get(url)
    assert hidden.context["checks_by_kind"]["numbers"].details["hidden"]["count"] >= 1
    assert b'id="numbers-hidden"' in hidden.content and b"numbers-revenue" not in hidden.content
    # An auditor reads every tenant's numbers: the page charts old and new.
    auditor = UserFactory(username="audrey")
    role_grant(user=auditor, role="auditor")
    page = _as(client, auditor).get(url)
    numbers = page.context["checks_by_kind"]["numbers"]
    assert numbers.status == "passed", numbers.summary
    entry = next(m for m in numbers.details["metrics"] if m["metric"] == "revenue")
    rows = entry["by_month"]
    assert rows and any(r["new"] != r["old"] for r in rows)  # open invoices now count
    spec = entry["chart"]
    assert {d["which"] for d in spec["data"]["values"]} == {"old", "new"}
    assert b'data-vega-spec="numbers-revenue"' in page.content


def test_a_bad_filter_is_reported_and_the_good_ones_still_apply(
    client: Client, outsider: Any
) -> None:
    response = _as(client, outsider).get("/metrics?tier=bogus&q=revenue")
    assert response.status_code == 200
    assert b"Some filters were ignored" in response.content
    assert {d.name for d in response.context["page"].rows} == {"revenue", "revenue_per_event"}


def test_actions_on_a_missing_proposal_are_404_pages(client: Client, owner: Any) -> None:
    _as(client, owner)
    for action in ("review", "comment", "merge", "close", "open", "checks"):
        assert client.post(f"/proposals/99999/{action}").status_code == 404, action


def test_explore_is_offered_only_to_those_who_may_query(
    client: Client, outsider: Any, analyst: Any
) -> None:
    """A viewer is never sent to Explore's 403: no nav entry, no button, no empty-state hint."""
    viewer_page = _as(client, outsider).get("/metrics").content.decode()
    assert 'href="/explore' not in viewer_page
    assert 'href="/explore' not in client.get("/metrics/revenue").content.decode()
    analyst_page = _as(client, analyst).get("/metrics").content.decode()
    assert 'href="/explore"' in analyst_page


def test_the_author_pushes_a_revision_from_the_page_after_changes_are_requested(
    client: Client, owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    pid = _proposal(client, owner, capture)
    _as(client, reviewer)
    with capture(execute=True):
        client.post(f"/proposals/{pid}/review", {"verdict": "request_changes", "body": "label?"})
    assert Proposal.objects.get(pk=pid).state == "changes_requested"
    assert "Edit and push a revision" not in client.get(f"/proposals/{pid}").content.decode()
    assert client.post(
        f"/proposals/{pid}/revise", {"path": "x.yml", "definition": "x"}
    ).status_code in (302, 403)
    assert Proposal.objects.get(pk=pid).revision == 1  # a reviewer never edits

    page = _as(client, owner).get(f"/proposals/{pid}")
    assert "Edit and push a revision" in page.content.decode()
    (change,) = page.context["changes"]
    revised = metric_yaml(replace={**CHANGE, "label: Revenue": "label: Events as revenue"})
    with capture(execute=True):
        response = client.post(
            f"/proposals/{pid}/revise", {"path": change["path"], "definition": revised}
        )
    assert response.status_code == 302
    proposal = Proposal.objects.get(pk=pid)
    assert proposal.revision == 2 and proposal.state == "open"
    page = client.get(f"/proposals/{pid}").content.decode()
    assert "Revision 2 pushed" in page and "Events as revenue" in page
    # Bad YAML: a clear error naming the file, nothing written.
    with capture(execute=True):
        client.post(
            f"/proposals/{pid}/revise", {"path": change["path"], "definition": "metrics: ["}
        )
    assert Proposal.objects.get(pk=pid).revision == 2
    assert change["path"] in client.get(f"/proposals/{pid}").content.decode()


def test_a_stale_proposal_says_so_and_rebases_from_the_page(
    client: Client, owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from registry.services.proposals import proposal_create, proposal_merge, proposal_review

    capture = django_capture_on_commit_callbacks
    pid = _proposal(client, owner, capture)
    assert 'id="stale-note"' not in client.get(f"/proposals/{pid}").content.decode()
    # Another proposal adds another metric and is merged: r2.
    with capture(execute=True):
        other = proposal_create(
            acting_user=owner, title="label", description="",
            files={"metrics/extra.yml": metric_yaml(
                replace={"name: revenue": "name: revenue_again", "label: Revenue": "label: Again"})},
            retire=[], open_now=True,
        )  # fmt: skip
    with capture(execute=True):
        proposal_review(proposal=other, acting_user=reviewer, verdict="approve", body="ok")
    with capture(execute=True):
        proposal_merge(proposal=Proposal.objects.get(pk=other.pk), acting_user=owner)
    page = client.get(f"/proposals/{pid}").content.decode()
    assert 'id="stale-note"' in page and 'id="rebase-button"' in page
    with capture(execute=True):
        assert client.post(f"/proposals/{pid}/rebase").status_code == 302
    proposal = Proposal.objects.get(pk=pid)
    assert proposal.base_release.number == Release.objects.order_by("-number")[0].number
    page = client.get(f"/proposals/{pid}").content.decode()
    assert "Rebased onto" in page and 'id="stale-note"' not in page


def test_a_rebase_conflict_is_shown_field_by_field(
    client: Client, owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from registry.services.proposals import proposal_create, proposal_merge, proposal_review

    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        mine = proposal_create(
            acting_user=owner, title="mine", description="", retire=[], open_now=True,
            files={"metrics/revenue.yml": metric_yaml(replace={"label: Revenue": "label: Income"})},
        )  # fmt: skip
        theirs = proposal_create(
            acting_user=owner, title="theirs", description="", retire=[], open_now=True,
            files={"metrics/revenue.yml": metric_yaml(replace={"label: Revenue": "label: Sales"})},
        )  # fmt: skip
    with capture(execute=True):
        proposal_review(proposal=theirs, acting_user=reviewer, verdict="approve", body="ok")
    with capture(execute=True):
        proposal_merge(proposal=Proposal.objects.get(pk=theirs.pk), acting_user=owner)
    client.force_login(owner)
    with capture(execute=True):
        client.post(f"/proposals/{mine.pk}/rebase")
    page = client.get(f"/proposals/{mine.pk}").content.decode()
    assert "conflicts in 1 field(s)" in page
    assert "conflict in metric:revenue label" in page
    assert "Sales" in page and "Income" in page
    assert Proposal.objects.get(pk=mine.pk).base_release.number == 1  # nothing changed


def test_version_history_credits_the_author_and_links_the_proposal(
    client: Client, owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    pid = _proposal(client, owner, capture)
    _as(client, reviewer)
    with capture(execute=True):
        client.post(f"/proposals/{pid}/review", {"verdict": "approve", "body": "ok"})
    with capture(execute=True):
        client.post(f"/proposals/{pid}/merge")
    assert Proposal.objects.get(pk=pid).state == "merged"
    row = client.get("/metrics/revenue").context["page"].versions[0]
    assert row.version.semver == "2.0" and row.version.author == owner
    assert row.proposal is not None and row.proposal.pk == pid
    page = client.get("/metrics/revenue").content.decode()
    assert f'<a href="/proposals/{pid}">proposal #{pid}</a>' in page
    assert f"merged by {reviewer.username}" in page


def test_two_open_proposals_on_one_metric_are_announced(
    client: Client, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from registry.services.proposals import proposal_create

    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        first = proposal_create(
            acting_user=owner, title="income", description="", retire=[], open_now=True,
            files={"metrics/revenue.yml": metric_yaml(replace={"label: Revenue": "label: Income"})},
        )  # fmt: skip
    client.force_login(owner)
    page = client.get("/metrics/revenue").content.decode()
    assert "1 open proposal changes revenue" in page and f"#{first.pk} income" in page
    assert "open-proposals" not in client.get("/metrics/events_tracked").content.decode()
    with capture(execute=True):
        second = proposal_create(
            acting_user=owner, title="sales", description="", retire=[], open_now=True,
            files={"metrics/revenue.yml": metric_yaml(replace={"label: Revenue": "label: Sales"})},
        )  # fmt: skip
    assert "2 open proposals change revenue" in client.get("/metrics/revenue/edit").content.decode()
    other = client.get(f"/proposals/{second.pk}").content.decode()
    assert "1 open proposal also changes revenue" in other and f"#{first.pk} income" in other


def test_review_policy_states_what_is_still_required_per_team(
    client: Client, owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    pid = _proposal(client, owner, capture)
    page = client.get(f"/proposals/{pid}")
    assert page.context["approvals_given"] == 0
    assert page.context["team_approvals"] == [("product-analytics", [])]
    text = page.content.decode()
    assert "0 given on revision 1; needs at least 1, and one from each team below" in text
    assert "approval still required" in text
    _as(client, reviewer)
    with capture(execute=True):
        client.post(f"/proposals/{pid}/review", {"verdict": "approve", "body": "ok"})
    page = client.get(f"/proposals/{pid}")
    assert page.context["team_approvals"] == [("product-analytics", [reviewer.username])]
    assert "1 given on revision 1" in page.content.decode()
    assert "approval still required" not in page.content.decode()
