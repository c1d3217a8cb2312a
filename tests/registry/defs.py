"""Small, realistic definition files that registry tests write into tmp folders."""

from __future__ import annotations

import textwrap
from pathlib import Path

SEMANTIC_MODEL_YAML = """\
semantic_models:
  - name: events
    model: ref('events')
    primary_entity: event
    defaults:
      agg_time_dimension: occurred_at
    config:
      meta: {owner: product-analytics, domain: product, tier: certified}
    entities:
      - name: account
        type: foreign
        expr: account_id
    dimensions:
      - name: occurred_at
        type: time
        type_params:
          time_granularity: day
      - name: event_type
        type: categorical
    measures:
      - name: revenue
        agg: sum
      - name: events_tracked
        agg: count_distinct
        expr: event_id
"""

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
      meta: {owner: product-analytics}
"""

CONTRACT_YAML = """\
apiVersion: v3.0.2
kind: DataContract
id: events-contract
name: events
version: 1.0.0
status: active
domain: product
customProperties:
  - {property: owner, value: product-analytics}
schema:
  - name: events
    physicalName: events
    properties:
      - name: event_id
        logicalType: string
      - name: account_id
        logicalType: integer
      - name: event_type
        logicalType: string
      - name: occurred_at
        logicalType: timestamp
      - name: revenue
        logicalType: number
"""


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return root
