"""Shared bits of the review commands: who is acting, and reading YAML files to propose."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth import get_user_model

from registry.definitions.dbt_manifest import is_semantic_manifest, read_semantic_manifest
from registry.definitions.issues import IssueSet
from registry.definitions.objects import plain
from registry.definitions.yaml_source import discover_files
from tally.errors import NotFound, UserError

YAML_SUFFIXES = (".yml", ".yaml")


def acting_user(username: str | None) -> Any:
    """--user NAME, else $TALLY_USER; reviews and merges always name a person."""
    name = username or os.environ.get("TALLY_USER")
    if not name:
        raise UserError(
            "say who you are", code="no_user", hint="pass --user NAME or set TALLY_USER"
        )
    user = get_user_model().objects.filter(username=name).first()
    if user is None:
        raise NotFound(f"no user {name!r}", code="unknown_user")
    return user


def read_yaml_files(path: Path) -> dict[str, str]:
    """One file, or every YAML file under a folder, as relative name → text."""
    if is_semantic_manifest(path):
        # dbt's semantic_manifest.json: proposed as the YAML documents it holds.
        issues = IssueSet()
        sources = list(read_semantic_manifest(path, path, issues))
        issues.checked()
        documents = [plain(doc) for source in sources for doc in source.documents]
        return {f"{path.stem}.yml": yaml.safe_dump_all(documents, sort_keys=False)}
    if path.is_file():
        return {path.name: path.read_text(encoding="utf-8")}
    if not path.is_dir():
        raise NotFound(f"{path} does not exist", code="no_such_path")
    # discover_files reads a dbt project root as dbt does (its model-paths only).
    files = {
        str(p.relative_to(path)): p.read_text(encoding="utf-8")
        for p in discover_files(path)
        if p.is_file() and p.suffix in YAML_SUFFIXES
    }
    if not files:
        raise UserError(f"no YAML files under {path}", code="no_files")
    return files
