"""Issue 18, Medium (governance): contracts, saved queries and the project config had no owner
or domain, so an editor of any domain could propose changing them (declassifying PII among
them) and the owning team was neither required nor allowed to review. Now a contract carries
its ODCS ``domain`` and ``customProperties.owner``, a saved query ``config.meta`` as a metric
does, and the project config belongs to data governance and to every domain."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from registry.definitions.objects import governance_of
from registry.definitions.project import load_project
from registry.models import Definition, Proposal
from registry.services.proposals import ProposedDefinition, proposal_create
from registry.services.review_policy import proposal_policy_get
from tally.errors import PermissionDenied
from tests.conftest import ROOT

SAVED_QUERIES = ROOT / "fixtures" / "saved_queries.yml"
USERS_CONTRACT = ROOT / "fixtures" / "contracts" / "users.odcs.yaml"
# jonas.berg is a member of product-analytics: reviewer (and so proposer) in domain product.
PRODUCT_EDITOR = "jonas.berg@tally.example"
REVENUE_EDITOR = "sara.okafor@tally.example"
GOVERNOR = "ada.nwosu@tally.example"


def test_fixture_contracts_and_saved_queries_have_an_owner_and_a_domain() -> None:
    project = load_project(ROOT / "fixtures")
    for kind in ("contract", "saved_query"):
        for obj in project.of_kind(kind):
            meta = governance_of(kind, obj.spec)
            assert meta.get("owner") in project.teams, (kind, obj.name)
            assert meta.get("domain") in project.domains, (kind, obj.name)


def test_contract_domain_and_owner_come_from_odcs_fields() -> None:
    spec = {"domain": "growth", "customProperties": [{"property": "owner", "value": "g-team"}]}
    assert dict(governance_of("contract", spec)) == {"domain": "growth", "owner": "g-team"}
    # ODCS 3.1 team object: its name is the owning team when no owner property is set.
    spec = {"domain": "growth", "team": {"name": "g-team", "members": []}}
    assert governance_of("contract", spec)["owner"] == "g-team"


def test_unknown_contract_owner_and_missing_domain_are_reported_with_file_and_line(
    tmp_path: Path,
) -> None:
    import shutil

    root = tmp_path / "defs"
    shutil.copytree(ROOT / "fixtures", root)
    users = root / "contracts" / "users.odcs.yaml"
    text = users.read_text()
    text = text.replace("domain: growth\n", "").replace(
        "value: growth-analytics", "value: growth-analytcs"
    )
    users.write_text(text)
    project = load_project(root)
    found = {i.code: i for i in project.issues.issues if i.object == "users"}
    assert found["unknown_team"].file.endswith("users.odcs.yaml") and found["unknown_team"].line
    assert "growth-analytics" in (found["unknown_team"].hint or "")
    assert found["no_domain"].line > 0 and found["no_domain"].hint


@pytest.fixture
def fixtures_r1(db: None, settings: Any, tmp_path: Path) -> None:
    from registry.services.definitions import definitions_sync

    definitions_sync(root=ROOT / "fixtures", acting_user=None)


def _user(username: str) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def _saved_query_edit(strip_meta: bool = False) -> dict[str, str]:
    text = SAVED_QUERIES.read_text()
    old = "label: Monthly revenue by plan"
    assert old in text
    text = text.replace(old, "label: Monthly revenue per plan")
    if strip_meta:
        meta = "    config:\n      meta: {owner: finance-data, domain: revenue}\n"
        assert meta in text
        text = text.replace(meta, "", 1)
    return {"saved_queries.yml": text}


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
@pytest.mark.parametrize("strip_meta", [False, True], ids=["as-is", "meta-removed"])
def test_an_editor_of_another_domain_cannot_change_a_saved_query(strip_meta: bool) -> None:
    """monthly_revenue_by_plan belongs to revenue; a product editor was allowed to change it
    (and removing its meta must not move it out of its released domain)."""
    with pytest.raises(PermissionDenied) as caught:
        proposal_create(
            acting_user=_user(PRODUCT_EDITOR),
            title="Relabel",
            files=_saved_query_edit(strip_meta),
            open_now=False,
        )
    assert caught.value.details["domains"] == ["revenue"]
    assert not Proposal.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
def test_the_saved_querys_own_domain_may_propose_and_its_owner_reviews() -> None:
    proposal = proposal_create(
        acting_user=_user(REVENUE_EDITOR),
        title="Relabel",
        files=_saved_query_edit(),
        open_now=False,
    )
    assert "finance-data" in proposal_policy_get(proposal=proposal).required_teams
    head = Definition.objects.get(kind="saved_query", name="monthly_revenue_by_plan")
    assert (head.domain.slug, head.owner.slug) == ("revenue", "finance-data")


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
def test_a_contract_change_needs_propose_in_its_domain_and_its_owner_reviews() -> None:
    text = USERS_CONTRACT.read_text().replace(
        "description: ISO 3166-1 alpha-2 country code.", "description: ISO 3166 country code."
    )
    with pytest.raises(PermissionDenied) as caught:
        proposal_create(
            acting_user=_user(PRODUCT_EDITOR),
            title="Doc",
            files={"contracts/users.odcs.yaml": text},
            open_now=False,
        )
    assert caught.value.details["domains"] == ["growth"]
    proposal = proposal_create(
        acting_user=_user("omar.haddad@tally.example"),
        title="Doc",
        files={"contracts/users.odcs.yaml": text},
        open_now=False,
    )
    assert "growth-analytics" in proposal_policy_get(proposal=proposal).required_teams
    head = Definition.objects.get(kind="contract", name="users")
    assert (head.domain.slug, head.owner.slug) == ("growth", "growth-analytics")


def _project_change() -> list[ProposedDefinition]:
    project = load_project(ROOT / "fixtures")
    spec = copy.deepcopy(project.get("project", "default").spec)  # type: ignore[union-attr]
    spec["time_spines"][0]["primary_column"]["name"] = "day"
    return [ProposedDefinition("project", "default", spec)]


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
def test_the_project_config_needs_propose_in_every_domain_and_governance_review() -> None:
    """The time spine serves every domain: an editor of one domain may not change it."""
    with pytest.raises(PermissionDenied) as caught:
        proposal_create(
            acting_user=_user(PRODUCT_EDITOR),
            title="Spine",
            proposed=_project_change(),
            open_now=False,
        )
    assert caught.value.details["domains"] == ["growth", "product", "revenue"]
    proposal = proposal_create(
        acting_user=_user(GOVERNOR), title="Spine", proposed=_project_change(), open_now=False
    )
    assert proposal_policy_get(proposal=proposal).required_teams == ("data-governance",)
