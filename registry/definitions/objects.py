"""What a definitions project holds: the kinds of object, one parsed object, teams and domains,
the project itself, and where in the YAML a value was written (Django-free)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from registry.definitions.issues import IssueSet
from registry.definitions.lines import LineDict, LineList

if TYPE_CHECKING:  # dbt_profiles reads DEFAULT_SCHEMA from here
    from registry.definitions.dbt_profiles import ProfileSearch

SEMANTIC_MODEL = "semantic_model"
METRIC = "metric"
SAVED_QUERY = "saved_query"
CONTRACT = "contract"
PROJECT = "project"
KINDS = (SEMANTIC_MODEL, METRIC, SAVED_QUERY, CONTRACT, PROJECT)
PROJECT_NAME = "default"

TIERS = ("certified", "standard", "experimental")
DEFAULT_SCHEMA = "main"
DEFAULT_TIME_SPINE = "tally_time_spine"
# Before dbt 1.9 the spine was a model of this name with a `date_day` column.
LEGACY_TIME_SPINE = "metricflow_time_spine"
REF_RE = re.compile(r"""^\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*$""")


@dataclass
class DefinitionObject:
    """One parsed definition: its canonical spec (what is versioned) and where it came from."""

    kind: str
    name: str
    spec: dict[str, Any]
    file: str
    line: int
    source: Any = field(repr=False, default=None)
    parsed: Any = field(repr=False, default=None)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


@dataclass(frozen=True)
class TeamSpec:
    slug: str
    name: str
    email: str
    members: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DomainSpec:
    slug: str
    name: str
    description: str
    owner: str | None
    # Review policy: approvals a proposal touching the domain needs (config.meta.review
    # on a definition overrides it).
    min_approvals: int = 1


@dataclass
class Project:
    """Everything read from one folder, plus the issues found."""

    root: str
    objects: dict[tuple[str, str], DefinitionObject] = field(default_factory=dict)
    teams: dict[str, TeamSpec] = field(default_factory=dict)
    domains: dict[str, DomainSpec] = field(default_factory=dict)
    issues: IssueSet = field(default_factory=IssueSet)
    manifest: Any = None
    # A dbt project root: where its profiles.yml was looked for and the target found; None
    # for other folders.
    dbt_profiles: ProfileSearch | None = None

    def of_kind(self, kind: str) -> list[DefinitionObject]:
        return [o for (k, _), o in sorted(self.objects.items()) if k == kind]

    def get(self, kind: str, name: str) -> DefinitionObject | None:
        return self.objects.get((kind, name))


# --------------------------------------------------------------------------- helpers


def plain(value: Any) -> Any:
    """LineDict/LineList → plain dicts and lists (JSON-able, hashable content)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def line_at(node: Any, path: Iterable[Any]) -> int:
    """The line of the deepest node along ``path`` that still has a recorded position."""
    line = getattr(node, "line", 0)
    for step in path:
        if (isinstance(node, LineDict) and step in node) or (
            isinstance(node, LineList) and isinstance(step, int) and step < len(node)
        ):
            line = node.line_of(step) or line
            node = node[step]
        else:
            break
        line = getattr(node, "line", 0) or line
    return line


def key_line(node: Any, path: Iterable[Any], key: str) -> int:
    """The line of ``key`` itself inside the mapping at ``path`` (not of its value)."""
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return getattr(node, "line", 0)
    return node.line_of(key) if isinstance(node, LineDict) else getattr(node, "line", 0)


def object_line(obj: DefinitionObject, path: list[Any]) -> int:
    """The line of ``path`` inside a definition, or the object's own line without a source."""
    return line_at(obj.source, path) if obj.source is not None else obj.line


def meta_of(obj: DefinitionObject) -> Mapping[str, Any]:
    """``config.meta`` of a semantic-layer object (governance fields live there)."""
    config = obj.spec.get("config") or {}
    return config.get("meta") or {}


# The ODCS custom property that names a contract's owning team (``customProperties``), as
# ``config.meta.owner`` does on a semantic-layer object.
OWNER_PROPERTY = "owner"


def custom_property(items: Any, name: str) -> Any:
    """The value of ODCS ``customProperties`` entry ``name`` (None when absent).

    Example:
        >>> custom_property([{"property": "owner", "value": "growth"}], "owner")
        'growth'
    """
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("property") == name:
            return item.get("value")
    return None


def governance_of(kind: str, spec: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Owner, domain, tier and review policy of a definition of any kind (``{}`` for none).

    Metrics, semantic models and saved queries carry them in ``config.meta``. An ODCS contract
    uses the standard's own fields: its top-level ``domain``, and as owner the custom property
    ``owner`` (a team slug) or, failing that, the name of an ODCS 3.1 ``team`` object. The
    project configuration has none here: it belongs to data governance and to every domain
    (the registry applies that, it knows the governance team).

    Example:
        >>> governance_of("saved_query", {"config": {"meta": {"domain": "revenue"}}})
        {'domain': 'revenue'}
        >>> governance_of("contract", {"domain": "growth", "team": {"name": "growth-analytics"}})
        {'owner': 'growth-analytics', 'domain': 'growth'}
    """
    if not spec or kind == PROJECT:
        return {}
    if kind == CONTRACT:
        out: dict[str, Any] = {}
        team = spec.get("team")
        owner = custom_property(spec.get("customProperties"), OWNER_PROPERTY) or (
            team.get("name") if isinstance(team, dict) else None
        )
        if owner:
            out["owner"] = owner
        if spec.get("domain"):
            out["domain"] = spec["domain"]
        return out
    config = spec.get("config") or {}
    meta = config.get("meta") if isinstance(config, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def default_project_configuration() -> dict[str, Any]:
    """The time spine Tally maintains itself when a project declares none."""
    return {
        "time_spines": [
            {
                "node_relation": {"alias": DEFAULT_TIME_SPINE, "schema_name": DEFAULT_SCHEMA},
                "primary_column": {"name": "date_day", "time_granularity": "day"},
            }
        ]
    }
