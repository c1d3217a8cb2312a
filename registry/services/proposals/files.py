"""A proposal's files: YAML texts → canonical specs, retirements, and what really changes."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from registry.definitions.changes import content_hash
from registry.definitions.issues import IssueSet
from registry.definitions.project import KINDS, load_project
from registry.definitions.yaml_source import file_name_check
from registry.selectors import PinnedSpec
from registry.services.proposals.base import ProposedDefinition
from semantic.compiler.definition_checks import check_definition_expressions
from tally.errors import NotFound, UserError

MAX_FILES = 200
MAX_FILE_BYTES = 5 * 1024 * 1024


def _safe_relative(name: str) -> str:
    file_name_check(name)  # issue 18: NUL / over 255 bytes → 400, not an OSError (500)
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UserError(
            f"file name {name!r} must be a relative path inside the proposal",
            code="bad_file_name",
            location=f"files.{name}",
        )
    if path.suffix not in (".yml", ".yaml"):
        raise UserError(
            f"file {name!r} is not YAML", code="bad_file_name", hint="name it *.yml or *.yaml"
        )
    return str(path)


def proposed_from_files(files: Mapping[str, str]) -> list[ProposedDefinition]:
    """Parses YAML texts (dbt Semantic Layer or ODCS) into canonical specs.

    Raises:
        DefinitionError: a file does not parse or breaks the spec's schema (with file:line).
    """
    if not files:
        raise UserError("a proposal needs at least one file", code="no_files")
    if len(files) > MAX_FILES:
        raise UserError(f"at most {MAX_FILES} files per proposal", code="too_many_files")
    with tempfile.TemporaryDirectory(prefix="tally-proposal-") as tmp:
        root = Path(tmp)
        for name, text in files.items():
            rel = _safe_relative(name)
            if len(text.encode("utf-8")) > MAX_FILE_BYTES:
                raise UserError(f"{rel} is over 5 MB", code="file_too_large", location=rel)
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        # Cross-object rules need the whole release: the validation check runs them.
        project = load_project(root, validate=False)
        # Issue 18: refuse unchecked definition expressions with file:line before the
        # proposal exists, so no check ever runs them on the warehouse.
        check_definition_expressions(project)
    prefix = f"{root.name}/"

    def shown(file: str) -> str:
        # Paths as the caller named them, not under the temporary folder.
        return file[len(prefix) :] if file.startswith(prefix) else file

    issues = IssueSet()
    issues.extend(dataclasses.replace(i, file=shown(i.file)) for i in project.issues.issues)
    issues.checked()
    return [
        ProposedDefinition(o.kind, o.name, o.spec, shown(o.file), o.line)
        for o in project.objects.values()
    ]


def proposed_retirements(items: Iterable[str]) -> list[ProposedDefinition]:
    """``kind:name`` items → retirements (a spec of None)."""
    out = []
    for item in items:
        kind, _, name = str(item).partition(":")
        if kind not in KINDS or not name:
            raise UserError(
                f"cannot retire {item!r}",
                code="bad_deletion",
                hint="name it kind:name, e.g. metric:mrr",
            )
        out.append(ProposedDefinition(kind, name, None))
    return out


def only_real_changes(
    proposed: Iterable[ProposedDefinition], base: Mapping[tuple[str, str], PinnedSpec]
) -> list[ProposedDefinition]:
    """Drops definitions identical to the base; refuses retiring what the base lacks."""
    out = []
    for item in proposed:
        old = base.get((item.kind, item.name))
        if item.spec is None:
            if old is None:
                raise NotFound(
                    f"{item.kind} {item.name!r} is not in the base release",
                    code="unknown_definition",
                )
        elif old is not None and content_hash(old.spec) == content_hash(item.spec):
            continue
        out.append(item)
    return out
