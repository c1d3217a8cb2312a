"""Registry contents → files in the dbt Semantic Layer YAML and ODCS layouts (Django-free).

The layout is one file per object kind and owner domain, so a diff of an export reads like a
diff of the definitions. Syncing an export back changes nothing (tests assert the round trip).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from registry.definitions.project import (
    CONTRACT,
    METRIC,
    PROJECT,
    SAVED_QUERY,
    SEMANTIC_MODEL,
    DomainSpec,
    TeamSpec,
)


@dataclass(frozen=True)
class ExportItem:
    kind: str
    name: str
    spec: Mapping[str, Any]


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Multi-line SQL and descriptions stay readable as block scalars.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _domain_of(spec: Mapping[str, Any]) -> str:
    meta = (spec.get("config") or {}).get("meta") or {}
    return str(meta.get("domain") or "shared")


def export_files(
    items: Iterable[ExportItem],
    *,
    teams: Iterable[TeamSpec] = (),
    domains: Iterable[DomainSpec] = (),
) -> dict[str, str]:
    """Relative path → file text for every definition.

    Example:
        >>> files = export_files([ExportItem("metric", "m", {"name": "m", "type": "simple"})])
        >>> sorted(files)
        ['metrics/shared.yml']
    """
    grouped: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    files: dict[str, str] = {}
    for item in sorted(items, key=lambda i: (i.kind, i.name)):
        spec = dict(item.spec)
        if item.kind == SEMANTIC_MODEL:
            grouped[f"semantic_models/{item.name}.yml"]["semantic_models"].append(spec)
        elif item.kind == METRIC:
            grouped[f"metrics/{_domain_of(spec)}.yml"]["metrics"].append(spec)
        elif item.kind == SAVED_QUERY:
            grouped["saved_queries.yml"]["saved_queries"].append(spec)
        elif item.kind == PROJECT:
            files["project_configuration.yml"] = dump_yaml({"project_configuration": spec})
        elif item.kind == CONTRACT:
            files[f"contracts/{item.name}.odcs.yaml"] = dump_yaml(spec)
    for path, doc in grouped.items():
        files[path] = dump_yaml(dict(doc))
    team_rows = [
        {
            "slug": t.slug,
            "name": t.name,
            **({"email": t.email} if t.email else {}),
            **(
                {"members": [{"username": u, "role": r} for u, r in t.members]} if t.members else {}
            ),
        }
        for t in sorted(teams, key=lambda t: t.slug)
    ]
    domain_rows = [
        {
            "slug": d.slug,
            "name": d.name,
            **({"description": d.description} if d.description else {}),
            **({"owner": d.owner} if d.owner else {}),
            **({"min_approvals": d.min_approvals} if d.min_approvals != 1 else {}),
        }
        for d in sorted(domains, key=lambda d: d.slug)
    ]
    if team_rows or domain_rows:
        files["governance.yml"] = dump_yaml({"teams": team_rows, "domains": domain_rows})
    return files
