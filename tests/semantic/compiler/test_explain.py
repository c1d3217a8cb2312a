"""explain_metric: a metric's meaning in plain words, for each metric type of fixtures/."""

from __future__ import annotations

import pytest

from semantic.compiler.explain import explain_metric
from semantic.compiler.manifest import Manifest


@pytest.mark.parametrize(
    ("metric", "words"),
    [
        ("revenue", "revenue is the total of amount in main.invoices (by issued_at), counting "
                    "only rows where invoice__status = 'paid'."),
        ("events_per_active_account", "events_per_active_account is events_tracked divided by "
                                      "active_accounts."),
        ("revenue_growth_mom", "revenue_growth_mom is computed as (revenue - revenue_prior_month)"
                               " * 1.0 / NULLIF(revenue_prior_month, 0) from the metrics revenue."),
        ("weekly_active_users", "over a trailing 7 days"),
        ("trial_to_paid_rate_14d", "within 14 days"),
    ],
)  # fmt: skip
def test_explains_each_metric_type(manifest: Manifest, metric: str, words: str) -> None:
    assert words in explain_metric(manifest, metric)


def test_unknown_metric_says_so(manifest: Manifest) -> None:
    assert explain_metric(manifest, "nope") == "nope is not in release r1."
