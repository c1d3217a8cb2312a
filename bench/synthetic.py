"""A synthetic registry of any size in the dbt Semantic Layer layout, for benchmarks."""

from __future__ import annotations

from pathlib import Path

import yaml

DOMAINS = ("product", "revenue", "growth")
TEAMS = ("product-analytics", "finance-data", "growth-analytics")


def write_synthetic_registry(root: Path, *, semantic_models: int, metrics: int) -> Path:
    """Writes ``semantic_models`` models (5 measures, 4 dimensions each) and ``metrics``
    metrics over them: 70% simple, 15% ratio, 15% derived, spread over 3 domains.

    Example:
        >>> import tempfile
        >>> root = write_synthetic_registry(Path(tempfile.mkdtemp()), semantic_models=2, metrics=5)
        >>> sorted(p.name for p in root.rglob("*.yml"))[:2]
        ['governance.yml', 'metrics_0.yml']
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "governance.yml").write_text(
        yaml.safe_dump(
            {
                "teams": [{"slug": t, "name": t.replace("-", " ").title()} for t in TEAMS],
                "domains": [
                    {"slug": d, "name": d.title(), "owner": t}
                    for d, t in zip(DOMAINS, TEAMS, strict=True)
                ],
            }
        )
    )
    models = []
    measures: list[str] = []
    for i in range(semantic_models):
        names = [f"m{i}_amount", f"m{i}_rows", f"m{i}_users", f"m{i}_max", f"m{i}_avg"]
        measures.extend(names)
        models.append(
            {
                "name": f"model_{i}",
                "model": f"ref('table_{i}')",
                "primary_entity": f"entity_{i}",
                "defaults": {"agg_time_dimension": "created_at"},
                "entities": [
                    {"name": "account", "type": "foreign", "expr": "account_id"},
                    {"name": "user", "type": "foreign", "expr": "user_id"},
                ],
                "dimensions": [
                    {
                        "name": "created_at",
                        "type": "time",
                        "type_params": {"time_granularity": "day"},
                    },
                    {"name": f"category_{i}", "type": "categorical", "expr": "category"},
                    {"name": f"region_{i}", "type": "categorical", "expr": "region"},
                    {"name": f"is_paid_{i}", "type": "categorical", "expr": "amount > 0"},
                ],
                "measures": [
                    {"name": names[0], "agg": "sum", "expr": "amount"},
                    {"name": names[1], "agg": "sum", "expr": "1"},
                    {"name": names[2], "agg": "count_distinct", "expr": "user_id"},
                    {"name": names[3], "agg": "max", "expr": "amount"},
                    {"name": names[4], "agg": "average", "expr": "amount"},
                ],
            }
        )
    for start in range(0, len(models), 50):
        (root / f"models_{start // 50}.yml").write_text(
            yaml.safe_dump({"semantic_models": models[start : start + 50]}, sort_keys=False)
        )
    simple = max(1, int(metrics * 0.7))
    items = []
    for j in range(metrics):
        domain = DOMAINS[j % 3]
        meta = {
            "owner": TEAMS[j % 3],
            "domain": domain,
            "tier": ("certified", "standard", "experimental")[j % 3],
        }
        base = {
            "name": f"metric_{j}",
            "label": f"Metric {j}",
            "description": f"Synthetic metric {j} in {domain}, reading {measures[j % len(measures)]}.",
            "config": {"meta": meta},
        }
        if j < simple:
            base |= {"type": "simple", "type_params": {"measure": measures[j % len(measures)]}}
        elif j % 2:
            base |= {
                "type": "ratio",
                "type_params": {
                    "numerator": {"name": f"metric_{j % simple}"},
                    "denominator": {"name": f"metric_{(j + 1) % simple}"},
                },
            }
        else:
            base |= {
                "type": "derived",
                "type_params": {
                    "expr": "val_a - val_b",
                    "metrics": [
                        {"name": f"metric_{j % simple}", "alias": "val_a"},
                        {"name": f"metric_{(j + 7) % simple}", "alias": "val_b"},
                    ],
                },
            }
        items.append(base)
    for start in range(0, len(items), 200):
        (root / f"metrics_{start // 200}.yml").write_text(
            yaml.safe_dump({"metrics": items[start : start + 200]}, sort_keys=False)
        )
    return root
