"""Issue 18, Medium (governance): declassifying PII (dropping or weakening ``classification:
pii`` or a column's ``tallyMask`` on a contract, or moving the column out of it) merged with any
single approval, and an editor of any domain could propose it. Now it is a detected change
that needs approvals from the data owner (the contract's owning team) and data governance;
merge is refused with 409 ``declassification_unapproved`` until both are in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.definitions.changes import classify_change
from registry.definitions.contracts import contract_declassifications
from tally.errors import ConflictError, PermissionDenied
from tests.conftest import ROOT, demo_warehouse_at

USERS_CONTRACT = ROOT / "fixtures" / "contracts" / "users.odcs.yaml"
PII_LINES = "        classification: pii\n        tags: [pii]\n"
DATA_OWNER = "lena.fischer@tally.example"  # growth-analytics, owns the users contract
OWNER_MEMBER = "omar.haddad@tally.example"  # growth-analytics
PRODUCT_EDITOR = "jonas.berg@tally.example"  # product-analytics: reviewer in product only
GOVERNOR = "ada.nwosu@tally.example"  # data-governance


def _contract(props: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": [{"name": "users", "properties": props}]}


EMAIL = {"name": "email", "logicalType": "string", "classification": "pii"}


def _masked(value: str | None) -> dict[str, Any]:
    return EMAIL | {"customProperties": [{"property": "tallyMask", "value": value}]}


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ([{"name": "email", "logicalType": "string"}], "users.email: classification pii → none"),
        ([], "users.email: PII column removed from the contract"),
        ([_masked("hash")], "users.email: tallyMask null → hash"),
        ([EMAIL], "users.email: tallyMask null → default"),
    ],
    ids=["unclassified", "removed", "mask-weakened", "mask-dropped"],
)
def test_declassifications_are_detected(new: list[dict[str, Any]], expected: str) -> None:
    old = _contract([_masked("null")]) if "tallyMask" in expected else _contract([EMAIL])
    assert contract_declassifications(old, _contract(new)) == [expected]
    assert classify_change("contract", old, _contract(new)).declassified == (expected,)


def test_classifying_is_not_a_declassification() -> None:
    plain = _contract([{"name": "email", "logicalType": "string"}])
    assert contract_declassifications(plain, _contract([EMAIL])) == []
    assert contract_declassifications(_contract([EMAIL]), _contract([_masked("null")])) == []
    assert contract_declassifications(_contract([EMAIL]), None) == [
        "users.email: PII column removed from the contract"
    ]


# --------------------------------------------------------------------------- the service path


@pytest.fixture
def fixtures_r1(db: None, settings: Any, tmp_path: Path) -> None:
    from registry.services.definitions import definitions_sync
    from semantic.warehouse.config import parse_warehouse_url

    warehouse = tmp_path / "demo.duckdb"
    demo_warehouse_at(warehouse, events=500, seed=3)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)


def _user(username: str) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def _declassify_files() -> dict[str, str]:
    text = USERS_CONTRACT.read_text()
    assert PII_LINES in text
    return {"contracts/users.odcs.yaml": text.replace(PII_LINES, "", 1)}


def _propose(capture: Any, username: str) -> Any:
    from registry.services.proposals import proposal_create
    from tests.registry.proposals_setup import committed

    return committed(
        capture,
        proposal_create,
        acting_user=_user(username),
        title="users.email is not personal data",
        files=_declassify_files(),
    )


def _approve(capture: Any, proposal: Any, username: str) -> None:
    from registry.services.proposals import proposal_review
    from tests.registry.proposals_setup import committed

    committed(
        capture, proposal_review, proposal=proposal, acting_user=_user(username), verdict="approve"
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
def test_an_editor_of_another_domain_cannot_propose_declassifying(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from registry.models import Proposal

    with pytest.raises(PermissionDenied) as caught:
        _propose(django_capture_on_commit_callbacks, PRODUCT_EDITOR)
    assert caught.value.details["domains"] == ["growth"]
    assert not Proposal.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
@pytest.mark.parametrize("approver", [OWNER_MEMBER, GOVERNOR], ids=["owner-only", "governance"])
def test_a_declassification_cannot_merge_with_one_side_approving(
    approver: str, django_capture_on_commit_callbacks: Any
) -> None:
    from registry.models import ProposalCheck
    from registry.services.proposals import proposal_merge
    from registry.services.review_policy import merge_blockers, proposal_policy_get

    capture = django_capture_on_commit_callbacks
    proposal = _propose(capture, DATA_OWNER)
    checks = ProposalCheck.objects.filter(proposal=proposal)
    assert {c.kind: c.status for c in checks if c.kind in ("validation", "compile")} == {
        "validation": "passed",
        "compile": "passed",
    }
    _approve(capture, proposal, approver)
    policy = proposal_policy_get(proposal=proposal)
    assert policy.declassifies == ("contract:users: users.email: classification pii → none",)
    missing = "growth-analytics" if approver == GOVERNOR else "data-governance"
    blockers = [b.as_dict() for b in merge_blockers(proposal, latest_release_id=None)]
    assert {
        "code": "declassification_approval_missing",
        "message": (
            "declassifies PII (contract:users: users.email: classification pii → none): "
            f"needs an approval from {'the data owner' if missing != 'data-governance' else 'data governance'}"
            f", team {missing}"
        ),
    } in blockers
    with pytest.raises(ConflictError) as caught:
        proposal_merge(proposal=proposal, acting_user=_user(approver))
    assert caught.value.http_status == 409
    assert caught.value.code == "declassification_unapproved"
    assert missing in caught.value.message


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
def test_a_declassification_merges_with_the_data_owner_and_governance(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from registry.models import Definition
    from registry.services.proposals import proposal_merge

    capture = django_capture_on_commit_callbacks
    proposal = _propose(capture, DATA_OWNER)
    _approve(capture, proposal, OWNER_MEMBER)
    _approve(capture, proposal, GOVERNOR)
    merged = proposal_merge(proposal=proposal, acting_user=_user(GOVERNOR))
    assert merged.state == "merged"
    spec = Definition.objects.get(kind="contract", name="users").current_version.spec
    email = next(p for p in spec["schema"][0]["properties"] if p["name"] == "email")
    assert "classification" not in email


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
def test_the_api_shows_the_declassification_blocker(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from rest_framework.test import APIClient

    proposal = _propose(django_capture_on_commit_callbacks, DATA_OWNER)
    client = APIClient()
    client.force_authenticate(_user(GOVERNOR))
    body = client.get(f"/api/v1/proposals/{proposal.pk}").json()
    codes = [b["code"] for b in body["blockers"]]
    assert codes.count("declassification_approval_missing") == 2
    response = client.post(f"/api/v1/proposals/{proposal.pk}/merge")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "declassification_unapproved"


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
def test_the_proposal_page_shows_who_must_approve_the_declassification(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.test import Client

    proposal = _propose(django_capture_on_commit_callbacks, DATA_OWNER)
    client = Client()
    client.force_login(_user(GOVERNOR))
    page = client.get(f"/proposals/{proposal.pk}").content.decode()
    assert (
        "declassifies PII (contract:users: users.email: classification pii → none): needs an "
        "approval from the data owner, team growth-analytics"
    ) in page
    assert 'id="declassifies"' in page


@pytest.mark.django_db
@pytest.mark.usefixtures("fixtures_r1")
def test_classifying_pii_needs_only_the_normal_review(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from registry.services.proposals import proposal_create, proposal_merge
    from tests.registry.proposals_setup import committed

    capture = django_capture_on_commit_callbacks
    text = USERS_CONTRACT.read_text()
    old = "        description: ISO 3166-1 alpha-2 country code.\n"
    proposal = committed(
        capture,
        proposal_create,
        acting_user=_user(DATA_OWNER),
        title="country is personal",
        files={
            "contracts/users.odcs.yaml": text.replace(old, old + "        classification: pii\n")
        },
    )
    _approve(capture, proposal, OWNER_MEMBER)
    assert proposal_merge(proposal=proposal, acting_user=_user(OWNER_MEMBER)).state == "merged"
