"""A small registry (r1) with the review personas, shared by the proposal tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# A major change of the certified `mrr` (count half the churn) that moves its numbers.
MRR_HALF_CHURN = """\
metrics:
  - name: mrr
    label: MRR
    type: derived
    type_params:
      expr: mrr_started_to_date - 0.5 * mrr_ended_to_date
      metrics:
        - name: mrr_started_to_date
        - name: mrr_ended_to_date
    config:
      meta: {owner: finance-data, domain: revenue, tier: certified}
"""


GOVERNANCE_YAML = """\
teams:
  - slug: product-analytics
    name: Product Analytics
    email: product-analytics@tally.example
    members:
      - {username: owner, role: lead}
      - {username: reviewer, role: member}
  - slug: data-governance
    name: Data Governance
    email: governance@tally.example
    members:
      - {username: governor, role: member}
domains:
  - slug: product
    name: Product
    owner: product-analytics
"""

# revenue (standard), events_tracked; a ratio on top of revenue for impact.
METRICS_YAML = """\
metrics:
  - name: revenue
    label: Revenue
    type: simple
    type_params:
      measure: revenue
    config:
      meta: {owner: product-analytics, domain: product, tier: standard}
  - name: events_tracked
    label: Events tracked
    type: simple
    type_params:
      measure: events_tracked
    config:
      meta: {owner: product-analytics, domain: product, tier: certified}
  - name: revenue_per_event
    label: Revenue per event
    type: ratio
    type_params:
      numerator: revenue
      denominator: events_tracked
    config:
      meta: {owner: product-analytics, domain: product, tier: standard}
"""


def metric_yaml(name: str = "revenue", replace: dict[str, str] | None = None) -> str:
    """One metric of METRICS_YAML as its own file, with text replacements applied."""
    text = {
        "revenue": """\
metrics:
  - name: revenue
    label: Revenue
    type: simple
    type_params:
      measure: revenue
    config:
      meta: {owner: product-analytics, domain: product, tier: standard}
""",
        "events_tracked": """\
metrics:
  - name: events_tracked
    label: Events tracked
    type: simple
    type_params:
      measure: events_tracked
    config:
      meta: {owner: product-analytics, domain: product, tier: certified}
""",
    }[name]
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def write_registry(root: Path) -> Path:
    from tests.registry.defs import CONTRACT_YAML, SEMANTIC_MODEL_YAML, write

    return write(
        root,
        {
            "governance.yml": GOVERNANCE_YAML,
            "semantic_models/events.yml": SEMANTIC_MODEL_YAML,
            "metrics/product.yml": METRICS_YAML,
            "contracts/events.odcs.yaml": CONTRACT_YAML,
        },
    )


def committed(capture: Callable[..., Any], fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Calls a service and runs what it enqueued on commit (checks, e-mails), as in production."""
    with capture(execute=True):
        return fn(**kwargs)


def bind_to_tenant(user: Any, warehouse_path: Path, rank: int = 0) -> str:
    """Binds ``user`` to the demo warehouse's tenant of that size rank (0: the largest), as a
    tenant-bound editor: proposal checks run as their author, under the author's row policy."""
    import duckdb

    from registry.services.access import access_profile_set

    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT tenant_id FROM accounts GROUP BY 1 ORDER BY count(*) DESC, 1"
        ).fetchall()
    finally:
        con.close()
    tenant = str(rows[rank][0])
    access_profile_set(user=user, attributes={"tenant_id": tenant})
    return tenant
