"""Where dbt builds each model of a project root: the profile target's schema, a custom
``schema`` config as dbt's default ``generate_schema_name`` places it (``<target>_<custom>``),
and an ``alias`` (Django-free; read_project resolves ``model: ref('x')`` with it).

A model's config comes, as in dbt, from its ``{{ config(…) }}`` block (string literals only),
else its YAML properties (``models: - name: x, config: {schema: …}``), else the
``dbt_project.yml`` ``models:`` tree by folder. A project that overrides
``generate_schema_name`` (or the alias/database macros) places models where Tally cannot
follow: a warning names the macro and points at ``target/semantic_manifest.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.definitions.dbt_profiles import (
    MANIFEST_HINT,
    DbtTarget,
    ProfileSearch,
    find_target,
    render_env_vars,
)
from registry.definitions.issues import IssueSet, Severity
from registry.definitions.lines import LineDict
from registry.definitions.objects import DEFAULT_SCHEMA
from registry.definitions.yaml_source import (
    DBT_PROJECT_FILE,
    DbtProject,
    SourceFile,
    dbt_project_at,
    display_path,
    read_yaml_file,
)

PLACEMENT_KEYS = ("schema", "alias")
PLACEMENT_MACROS = ("generate_schema_name", "generate_alias_name", "generate_database_name")
MACRO_RE = re.compile(r"\{%-?\s*macro\s+(" + "|".join(PLACEMENT_MACROS) + r")\s*\(")
SQL_CONFIG_RE = re.compile(r"\{\{\s*config\s*\((.*?)\)\s*\}\}", re.DOTALL)
SQL_KEY_RE = re.compile(r"\b(schema|alias)\s*=\s*(?:(['\"])([^'\"]*)\2)?")


@dataclass(frozen=True)
class DbtPlacement:
    """The target a project builds into and each model's configured schema and alias."""

    search: ProfileSearch
    configs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def target(self) -> DbtTarget | None:
        return self.search.target

    def relation(self, model: str) -> tuple[str | None, str, str]:
        """(database, schema, table) dbt builds ``model`` into; the warehouse's default
        schema when no profile was found.

        Example:
            >>> DbtPlacement(ProfileSearch(None, ())).relation("orders")
            (None, 'main', 'orders')
        """
        config = self.configs.get(model, {})
        alias = config.get("alias") or model
        if self.target is None:
            return (None, DEFAULT_SCHEMA, alias)
        custom = config.get("schema", "").strip()
        # dbt's default generate_schema_name: the target schema, suffixed by a custom one.
        schema = f"{self.target.schema}_{custom}" if custom else self.target.schema
        return (self.target.database, schema, alias)


def _project_config(root: Path) -> tuple[LineDict, str]:
    shown = display_path(root / DBT_PROJECT_FILE, root)
    # read_tree already reported a broken dbt_project.yml; read it again quietly.
    source = read_yaml_file(root / DBT_PROJECT_FILE, shown, IssueSet())
    doc = source.documents[0] if source is not None and source.documents else None
    return (doc if isinstance(doc, LineDict) else LineDict()), shown


def _tree_configs(node: Any, file: str, issues: IssueSet) -> dict[str, str]:
    """The placement keys set at one level of the ``models:`` tree (``+schema`` or ``schema``
    when it is not a folder's name)."""
    found: dict[str, str] = {}
    if not isinstance(node, LineDict):
        return found
    for key in PLACEMENT_KEYS:
        for written in (f"+{key}", key):
            value = node.get(written)
            if isinstance(value, str):
                line = node.line_of(written)
                rendered = render_env_vars(
                    value, key=f"models: {written}", file=file, line=line, issues=issues
                )
                if rendered is not None:
                    found[key] = rendered
                break
    return found


def _sql_config(path: Path, shown: str, issues: IssueSet) -> dict[str, str]:
    """``schema=``/``alias=`` string literals of a model's ``{{ config(…) }}`` block."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    found: dict[str, str] = {}
    for block in SQL_CONFIG_RE.finditer(text):
        for key in SQL_KEY_RE.finditer(block.group(1)):
            if key.group(2) is None:
                issues.add(
                    "dbt_jinja",
                    f"config({key.group(1)}=…) is not a string literal Tally can read",
                    file=shown,
                    line=text.count("\n", 0, block.start(1) + key.start()) + 1,
                    hint=MANIFEST_HINT,
                )
                continue
            found[key.group(1)] = key.group(3)
    return found


def _property_configs(sources: Iterable[SourceFile], issues: IssueSet) -> dict[str, dict[str, str]]:
    """``config: {schema, alias}`` of each ``models:`` entry in the properties YAML."""
    found: dict[str, dict[str, str]] = {}
    for source in sources:
        for doc in source.documents:
            models = doc.get("models") if isinstance(doc, dict) else None
            for item in models if isinstance(models, list) else ():
                config = item.get("config") if isinstance(item, dict) else None
                if not isinstance(config, LineDict) or not item.get("name"):
                    continue
                for key in PLACEMENT_KEYS:
                    if isinstance(config.get(key), str):
                        value = render_env_vars(
                            config[key], key=f"config.{key}", file=source.path,
                            line=config.line_of(key), issues=issues,
                        )  # fmt: skip
                        if value is not None:
                            found.setdefault(str(item["name"]), {})[key] = value
    return found


def _macro_folders(root: Path, config: LineDict) -> list[Path]:
    """The project's macro-paths (default macros/) that exist inside it."""
    paths = config.get("macro-paths")
    folders = [
        (root / str(f)).resolve() for f in (paths if isinstance(paths, list) else ["macros"])
    ]
    return [f for f in folders if f.is_relative_to(root.resolve()) and f.is_dir()]


def _macro_warnings(root: Path, config: LineDict, issues: IssueSet) -> None:
    for base in _macro_folders(root, config):
        for path in sorted(base.rglob("*.sql")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for match in MACRO_RE.finditer(text):
                issues.add(
                    "dbt_schema_macro",
                    f"this project overrides {match.group(1)}, which Tally cannot evaluate: it "
                    "places models by dbt's default (the target schema, <target>_<custom> for "
                    "a custom schema)",
                    file=display_path(path, root),
                    line=text.count("\n", 0, match.start()) + 1,
                    hint=MANIFEST_HINT,
                    severity=Severity.WARNING,
                )


def dbt_placement(
    root: Path, dbt: DbtProject, sources: Iterable[SourceFile], issues: IssueSet
) -> DbtPlacement:
    """How dbt places the models of the project at ``root``: its profile target, and every
    model's schema and alias config, precedence as in dbt (SQL config, properties, tree)."""
    config, shown = _project_config(root)
    profile = config.get("profile")
    profile_name = (
        render_env_vars(
            profile, key="profile", file=shown, line=config.line_of("profile"), issues=issues
        )
        if profile
        else None
    )
    search = find_target(root, profile_name, issues)
    if search.target is None:
        return DbtPlacement(search)
    _macro_warnings(root, config, issues)
    configs = _property_configs(sources, issues)
    tree = config.get("models")
    project_name = str(config.get("name") or "")
    levels: dict[int, dict[str, str]] = {}

    def level(node: Any) -> dict[str, str]:
        # Each level of the tree is read once, so a bad value is reported once.
        if id(node) not in levels:
            levels[id(node)] = _tree_configs(node, shown, issues)
        return levels[id(node)]

    for folder in dbt.model_paths:
        for path in sorted(p for p in folder.rglob("*") if p.suffix in (".sql", ".py")):
            name = path.stem
            merged = dict(level(tree))
            node = tree.get(project_name) if isinstance(tree, LineDict) else None
            for part in (*path.relative_to(folder).parent.parts, name):
                merged.update(level(node))
                node = node.get(part) if isinstance(node, LineDict) else None
            merged.update(level(node))
            merged.update(configs.get(name, {}))
            if path.suffix == ".sql":
                merged.update(_sql_config(path, display_path(path, root), issues))
            if merged:
                configs[name] = merged
    return DbtPlacement(search, configs)


def placement_fingerprint(root: Path) -> bytes:
    """What decides placement beyond the definitions YAML (for the sync digest): the target
    found (rendered schema and database, never credentials), dbt_project.yml, and the models'
    and macros' config text. Empty for a folder that is not a dbt project root."""
    dbt = dbt_project_at(root) if root.is_dir() else None
    if dbt is None:
        return b""
    config, _ = _project_config(root)
    profile = config.get("profile")
    scratch = IssueSet()
    name = render_env_vars(profile, key="profile", file="", line=0, issues=scratch)
    search = find_target(root, name if profile else None, scratch)
    parts = [repr(search).encode(), (root / DBT_PROJECT_FILE).read_bytes()]
    for folder in [*dbt.model_paths, *_macro_folders(root, config)]:
        for path in sorted(folder.rglob("*.sql")) if folder.is_dir() else ():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            found = [m.group(0) for m in (*SQL_CONFIG_RE.finditer(text), *MACRO_RE.finditer(text))]
            if found:
                shown = os.path.relpath(path.resolve(), root.resolve())
                parts.append(f"{shown}:{found}".encode())
    return b"\0".join(parts)
