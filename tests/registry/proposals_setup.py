"""A small registry (r1) with the review personas, shared by the proposal tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
