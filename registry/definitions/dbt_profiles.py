"""The dbt profile a project root builds with: which ``profiles.yml``, profile and target, and
the target's schema and database (Django-free; read by registry/definitions/dbt_placement.py).

Found as dbt finds it: ``DBT_PROFILES_DIR`` (what ``--profiles-dir`` sets), else the project
folder, else ``~/.dbt``; the profile that ``dbt_project.yml`` names; the target ``DBT_TARGET``
names, else the profile's ``target:``. Values may use ``{{ env_var('NAME') }}`` and
``{{ env_var('NAME', 'default') }}``, the only Jinja rendered here. Profiles hold passwords
and tokens: no message ever quotes a profile value, only keys, files and lines.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.definitions.issues import IssueSet, Severity
from registry.definitions.lines import LineDict
from registry.definitions.yaml_source import read_yaml_file

PROFILES_FILE = "profiles.yml"
PROFILES_DIR_ENV = "DBT_PROFILES_DIR"
TARGET_ENV = "DBT_TARGET"
ENV_VAR_RE = re.compile(
    r"""\{\{\s*env_var\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])(.*?)\3\s*)?\)\s*\}\}"""
)
JINJA_RE = re.compile(r"\{\{|\{%|\{#")
MANIFEST_HINT = (
    "sync dbt's target/semantic_manifest.json instead (written by `dbt parse`): it holds the "
    "schemas dbt resolved"
)
# dbt-duckdb's schema when a target names none.
DUCKDB_DEFAULT_SCHEMA = "main"
# Adapters whose connection is to one database: a three-part name would only repeat it, and
# would break when Tally's warehouse is a copy under another name.
ONE_DATABASE_ADAPTERS = {"postgres", "redshift", "duckdb", "sqlite", "mysql"}


@dataclass(frozen=True)
class DbtTarget:
    """Where dbt builds a project's models: its profile's target schema (and database)."""

    file: str
    profile: str
    target: str
    adapter: str
    schema: str
    database: str | None


@dataclass(frozen=True)
class ProfileSearch:
    """The target found (None when there is none) and every profiles.yml looked for."""

    target: DbtTarget | None
    searched: tuple[str, ...]

    def where(self) -> str:
        """Where Tally looked, for hints: "looked for /p/profiles.yml, ~/.dbt/profiles.yml"."""
        if not self.searched:
            return "dbt_project.yml names no profile:"
        return "looked for " + ", ".join(self.searched)


def render_env_vars(value: Any, *, key: str, file: str, line: int, issues: IssueSet) -> str | None:
    """``value`` with each ``{{ env_var(…) }}`` replaced; None (and an issue naming ``key``,
    never the value) when a variable is unset without default or other Jinja remains.

    Example:
        >>> render_env_vars("dbt_{{ env_var('TALLY_UNSET_X', 'ci') }}", key="schema",
        ...     file="profiles.yml", line=3, issues=IssueSet())
        'dbt_ci'
    """
    text = str(value)
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        found = os.environ.get(match.group(2), match.group(4))
        if found is None:
            missing.append(match.group(2))
            return ""
        return found

    rendered = ENV_VAR_RE.sub(substitute, text)
    if missing:
        issues.add(
            "dbt_env_var",
            f"{key} reads env_var('{missing[0]}'), which is not set and has no default",
            file=file,
            line=line,
            hint=f"set {missing[0]} as you do for dbt, or give env_var a default",
        )
        return None
    if JINJA_RE.search(ENV_VAR_RE.sub("", text)):
        issues.add(
            "dbt_jinja",
            f"{key} uses Jinja Tally does not evaluate (it renders only env_var('NAME') and "
            "env_var('NAME', 'default'))",
            file=file,
            line=line,
            hint=MANIFEST_HINT,
        )
        return None
    return rendered


def profile_candidates(root: Path) -> list[Path]:
    """The profiles.yml files dbt would read, in order (only the first that exists counts)."""
    explicit = os.environ.get(PROFILES_DIR_ENV, "").strip()
    if explicit:
        return [Path(explicit).expanduser() / PROFILES_FILE]
    return [root / PROFILES_FILE, Path.home() / ".dbt" / PROFILES_FILE]


def _warn(issues: IssueSet, code: str, message: str, file: str, line: int, hint: str) -> None:
    issues.add(code, message, file=file, line=line, hint=hint, severity=Severity.WARNING)


def find_target(root: Path, profile_name: str | None, issues: IssueSet) -> ProfileSearch:
    """The target a dbt project at ``root`` builds into, found as dbt finds it.

    A profile or target that is absent is a warning (Tally keeps the warehouse's default
    schema); a value that cannot be rendered is an error, as a wrong schema would be silent.
    """
    if not profile_name:
        return ProfileSearch(None, ())
    candidates = profile_candidates(root)
    searched = tuple(str(c) for c in candidates)
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        return ProfileSearch(None, searched)
    shown = str(path)
    source = read_yaml_file(path, shown, issues)
    doc = source.documents[0] if source is not None and source.documents else None
    profile = doc.get(profile_name) if isinstance(doc, LineDict) else None
    if not isinstance(profile, LineDict):
        if source is not None:
            names = sorted(k for k in (doc or {}) if k != "config")
            _warn(issues, "dbt_profile", f"profile {profile_name!r} (named by dbt_project.yml) "
                  f"is not in {shown}", shown, 1,
                  f"profiles there: {', '.join(names) or 'none'}; Tally reads ref() tables from "
                  "the warehouse's default schema")  # fmt: skip
        return ProfileSearch(None, searched)
    wanted = os.environ.get(TARGET_ENV, "").strip() or profile.get("target") or "default"
    target = render_env_vars(
        wanted, key="target", file=shown, line=profile.line_of("target"), issues=issues
    )
    outputs = profile.get("outputs")
    output = outputs.get(target) if isinstance(outputs, LineDict) and target else None
    if not isinstance(output, LineDict):
        if target is not None:
            names = sorted(outputs) if isinstance(outputs, dict) else []
            _warn(issues, "dbt_profile", f"profile {profile_name!r} has no target {target!r}",
                  shown, profile.line,
                  f"targets there: {', '.join(names) or 'none'} (set DBT_TARGET or target:); "
                  "Tally reads ref() tables from the warehouse's default schema")  # fmt: skip
        return ProfileSearch(None, searched)
    return ProfileSearch(_target_of(output, shown, profile_name, target or "", issues), searched)


def _value(output: LineDict, keys: tuple[str, ...], file: str, issues: IssueSet) -> str | None:
    for key in keys:
        if output.get(key) not in (None, ""):
            return render_env_vars(
                output[key], key=key, file=file, line=output.line_of(key), issues=issues
            )
    return None


def _target_of(
    output: LineDict, file: str, profile: str, target: str, issues: IssueSet
) -> DbtTarget | None:
    adapter = str(output.get("type") or "").lower()
    errors_before = len(issues.errors)
    # BigQuery calls the schema a dataset and the database a project; Databricks a catalog.
    schema = _value(output, ("schema", "dataset"), file, issues)
    database = _value(output, ("database", "project", "catalog"), file, issues)
    if len(issues.errors) > errors_before:
        return None
    if schema is None:
        if adapter != "duckdb":
            _warn(issues, "dbt_profile", f"target {target!r} of profile {profile!r} has no "
                  "schema", file, output.line,
                  "add schema: to the target; Tally reads ref() tables from the warehouse's "
                  "default schema")  # fmt: skip
            return None
        schema = DUCKDB_DEFAULT_SCHEMA
    if adapter == "duckdb" and database is not None:
        # DuckDB names a file's catalog after the file: only another (attached) database is
        # worth naming, as Tally's warehouse may be the same file under another path.
        path = str(output.get("path") or "")
        if database == Path(path).stem:
            database = None
    elif adapter in ONE_DATABASE_ADAPTERS:
        database = None
    return DbtTarget(file, profile, target, adapter, schema, database)


def missing_table_hint(search: ProfileSearch | None) -> str | None:
    """The hint for a table the warehouse lacks, when the definitions are a dbt project root.

    Example:
        >>> missing_table_hint(ProfileSearch(None, ("/p/profiles.yml",)))[:48]
        'no dbt profile found (looked for /p/profiles.yml'
    """
    if search is None:
        return None
    if search.target is None:
        return (
            f"no dbt profile found ({search.where()}), so ref() read the warehouse's default "
            f"schema: set {PROFILES_DIR_ENV} or pass --profiles-dir to the folder holding "
            "profiles.yml, or sync target/semantic_manifest.json"
        )
    found = search.target
    return (
        f"ref() read the schema dbt builds into with profile {found.profile!r}, target "
        f"{found.target!r} ({found.file}): run `dbt run` for that target, or set {TARGET_ENV} "
        "to the target that built the warehouse"
    )
