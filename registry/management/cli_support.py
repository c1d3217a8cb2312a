"""Shared bits of the review commands: who is acting, and reading YAML files to propose."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth import get_user_model

from registry.definitions.dbt_manifest import is_semantic_manifest, read_semantic_manifest
from registry.definitions.dbt_profiles import PROFILES_DIR_ENV
from registry.definitions.issues import IssueSet
from registry.definitions.objects import plain
from registry.definitions.yaml_source import (
    FileRefused,
    discover_files,
    max_file_bytes,
    read_file_bytes,
)
from tally.errors import NotFound, UserError

YAML_SUFFIXES = (".yml", ".yaml")


PROFILES_DIR_HELP = (
    "folder holding the dbt profiles.yml that places a dbt project's ref() tables (as dbt's "
    "--profiles-dir; default $DBT_PROFILES_DIR, the project folder, then ~/.dbt)"
)


@contextmanager
def dbt_profiles_dir(folder: Path | None) -> Iterator[None]:
    """--profiles-dir for the length of one command: dbt reads the flag and
    $DBT_PROFILES_DIR as one setting, and so does Tally's profile lookup."""
    if folder is None:
        yield
        return
    before = os.environ.get(PROFILES_DIR_ENV)
    os.environ[PROFILES_DIR_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROFILES_DIR_ENV, None)
        else:
            os.environ[PROFILES_DIR_ENV] = before


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


def _read_text(path: Path) -> str:
    # The one safe reader (regular files, bounded size, non-blocking open).
    try:
        raw = read_file_bytes(path, max_file_bytes())
    except FileRefused as refused:
        raise UserError(refused.message, code=refused.code, hint=refused.hint,
                        location=str(path)) from refused  # fmt: skip
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"byte offset {exc.start} is not valid UTF-8", code="not_utf8",
                        hint="save the file as UTF-8", location=str(path)) from exc  # fmt: skip


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
        return {path.name: _read_text(path)}
    if not path.is_dir():
        raise NotFound(f"{path} does not exist", code="no_such_path")
    # discover_files reads a dbt project root as dbt does (its model-paths only).
    files = {
        str(p.relative_to(path)): _read_text(p)
        for p in discover_files(path)
        if p.suffix in YAML_SUFFIXES and not p.is_dir()
    }
    if not files:
        raise UserError(f"no YAML files under {path}", code="no_files")
    return files
