"""Every web UI page declares the action its API equivalent requires (``tally.ui.page_access``),
as every API view declares ``access``: a page added without one fails here."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

import lineage.urls
import registry.urls
import semantic.urls
from registry.roles import Action

# What each page needs: the same action as the endpoint that serves the same data.
EXPECTED = {
    "catalog": Action.READ,
    "metric-detail": Action.READ,
    "metric-edit": Action.PROPOSE,
    "proposal-list": Action.READ,
    "proposal-detail": Action.READ,
    "proposal-review": Action.REVIEW,
    "proposal-comment": Action.COMMENT,
    "proposal-merge": Action.MERGE,
    "proposal-revise": Action.PROPOSE,
    "proposal-rebase": Action.PROPOSE,
    "proposal-close": Action.PROPOSE,
    "proposal-open": Action.PROPOSE,
    "proposal-checks": Action.PROPOSE,
    "contract-list": Action.READ,
    "contract-detail": Action.READ,
    "metric-chart": Action.VIEW_VALUES,
    "metric-sql": Action.COMPILE,
    "metric-recompute": Action.COMPUTE,
    "explore": Action.QUERY,
    "explore-options": Action.QUERY,
    "explore-save": Action.PROPOSE,
    "explore-csv": Action.QUERY,
    "run-list": Action.VIEW_VALUES,
    "run-detail": Action.VIEW_VALUES,
    "audit-list": Action.VIEW_VALUES,
    "value-trace": Action.VIEW_VALUES,
    "lineage": Action.READ,
    "lineage-impact": Action.READ,
    "lineage-nodes": Action.READ,
}


def test_every_page_declares_the_action_of_its_api_equivalent() -> None:
    found: dict[str, object] = {}
    for module in (registry.urls, semantic.urls, lineage.urls):
        for pattern in module.urlpatterns:
            assert not isinstance(pattern, URLResolver)
            assert isinstance(pattern, URLPattern) and pattern.name
            found[pattern.name] = getattr(pattern.callback, "tally_access", None)
    assert found == EXPECTED
