"""Concurrent merges on PostgreSQL: two real connections in two threads, one winner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from registry.models import Proposal, Release
from registry.services.proposals import proposal_create, proposal_merge, proposal_review
from tally.errors import ConflictError
from tests.registry.proposals_setup import metric_yaml

# Row locks are what this tests; SQLite serialises whole-database writes.
pytestmark = [
    pytest.mark.registry_db,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


def _race(*calls: Callable[[], Any]) -> list[Any]:
    """Runs the calls at the same instant, each in its own thread and DB connection."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = call()
        except Exception as exc:  # the loser's error is the result under test
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _approved(owner: Any, reviewer: Any, label: str) -> Proposal:
    proposal = proposal_create(
        acting_user=owner,
        title=f"Revenue as {label}",
        files={"m.yml": metric_yaml(replace={"label: Revenue": f"label: {label}"})},
    )
    proposal_review(proposal=proposal, acting_user=reviewer, verdict="approve")
    return proposal


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    assert connection.vendor == "postgresql", (
        "postgres_only tests run with the registry on PostgreSQL"
    )


def test_two_merges_racing_on_the_same_metric_cannot_both_win(owner: Any, reviewer: Any) -> None:
    """Bad input: two approved proposals on `revenue`, merged at the same instant on two
    connections; one publishes r2, the other sees the conflict and writes nothing."""
    first, second = _approved(owner, reviewer, "Sales"), _approved(owner, reviewer, "Turnover")
    outcomes = _race(
        lambda: proposal_merge(proposal=first.pk, acting_user=reviewer),
        lambda: proposal_merge(proposal=second.pk, acting_user=reviewer),
    )
    winners = [o for o in outcomes if isinstance(o, Proposal)]
    losers = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert losers[0].code == "stale_base"
    assert list(Release.objects.order_by("number").values_list("number", flat=True)) == [1, 2]
    assert Proposal.objects.filter(state="merged").count() == 1


def test_the_same_proposal_merged_twice_at_once_merges_once(owner: Any, reviewer: Any) -> None:
    proposal = _approved(owner, reviewer, "Sales")
    outcomes = _race(
        lambda: proposal_merge(proposal=proposal.pk, acting_user=reviewer),
        lambda: proposal_merge(proposal=proposal.pk, acting_user=owner),
    )
    errors = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(errors) == 1, outcomes
    assert errors[0].code in ("stale_base", "proposal_merged")
    assert Release.objects.count() == 2
