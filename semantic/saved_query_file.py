"""An Explore query written as a dbt saved query file, for a proposal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from semantic.compiler.spec import MetricQuery


def saved_query_yaml(
    *, name: str, label: str, owner: str, domain: str, query: MetricQuery, grains: Sequence[str]
) -> str:
    """An Explore query as a dbt saved query file (the group-bys in dbt's object syntax), for
    a proposal: ``grains`` are the time grains the release knows (custom ones included)."""

    def obj(item: str) -> str:
        base, _, last = item.rpartition("__")
        if "__extract_" in item:
            time, _, part = item.partition("__extract_")
            return f"TimeDimension('{time}', date_part_name='{part}')"
        if base and last in grains:
            return f"TimeDimension('{base}', '{last}')"
        return f"Dimension('{item}')"

    params: dict[str, Any] = {"metrics": list(query.metrics)}
    if query.group_by:
        params["group_by"] = [obj(g) for g in query.group_by]
    if query.where:
        params["where"] = list(query.where)
    if query.order_by:
        order = []
        for item in query.order_by:
            bare = item.lstrip("-")
            ref = f"Metric('{bare}')" if bare in query.metrics else obj(bare)
            order.append(f"{ref}.descending(True)" if item.startswith("-") else ref)
        params["order_by"] = order
    if query.limit:
        params["limit"] = query.limit
    doc = {
        "saved_queries": [
            {
                "name": name,
                "label": label,
                "config": {"meta": {"owner": owner, "domain": domain}},
                "query_params": params,
            }
        ]
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
