"""JSON-schema and pydantic errors of one object → issues with file:line and a short hint.

dbt-semantic-interfaces ships a JSON schema per object kind and ODCS one for contracts; their
raw messages are long dumps, so each error is rewritten as a message a reader acts on.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from registry.definitions.issues import IssueSet, did_you_mean
from registry.definitions.objects import (
    METRIC,
    PROJECT,
    SAVED_QUERY,
    SEMANTIC_MODEL,
    key_line,
    line_at,
)

if TYPE_CHECKING:
    # jsonschema (~60 ms) loads when a definition is validated, not with every module that
    # reads definitions (access checks import this floor at Django start-up).
    from jsonschema.exceptions import ValidationError as SchemaError


@cache
def dsi_validators() -> dict[str, Any]:
    """DSI's JSON-schema validator per object kind (built once)."""
    from dbt_semantic_interfaces.parsing import schemas

    return {
        SEMANTIC_MODEL: schemas.semantic_model_validator,
        METRIC: schemas.metric_validator,
        SAVED_QUERY: schemas.saved_query_validator,
        PROJECT: schemas.project_configuration_validator,
    }


@cache
def odcs_validator() -> Any:
    """The ODCS v3 JSON-schema validator (built once from the package's schema)."""
    import importlib.resources

    import jsonschema

    schema = json.loads(
        importlib.resources.files("open_data_contract_standard")
        .joinpath("schema.json")
        .read_text(encoding="utf-8")
    )
    return jsonschema.Draft201909Validator(schema)


def _unknown_key(err: SchemaError) -> str | None:
    if err.validator != "additionalProperties":
        return None
    extra = re.findall(r"'([^']+)'", err.message.split("(")[-1])
    return extra[0] if extra else None


def _schema_properties(err: SchemaError) -> list[str]:
    """The property names the failing (sub)schema declares; none for a boolean schema."""
    return list(err.schema.get("properties", {})) if isinstance(err.schema, Mapping) else []


def _schema_error_text(err: SchemaError, obj: str) -> tuple[str, str | None]:
    """A short message and hint for one JSON-schema error (not jsonschema's raw dump)."""
    where = ".".join(str(p) for p in err.absolute_path) or obj
    unknown = _unknown_key(err)
    if unknown is not None:
        known = _schema_properties(err)
        hint = did_you_mean(unknown, known) or ("known keys: " + ", ".join(sorted(known)))
        return f"unknown key {unknown!r} in {where}", hint
    if err.validator == "required":
        return f"{where}: {err.message}", "add the missing key"
    if err.validator == "enum":
        # An enum error's validator_value is the schema's list (jsonschema types it Any | Unset).
        options = ", ".join(repr(o) for o in cast(list[Any], err.validator_value))
        return f"{where}: {err.instance!r} is not allowed", f"use one of {options}"
    if err.validator == "type":
        return (
            f"{where}: expected {err.validator_value}, got {type(err.instance).__name__} "
            f"{json.dumps(err.instance, default=str)[:60]}",
            None,
        )
    if err.validator == "pattern":
        return f"{where}: {err.instance!r} does not match {err.validator_value}", (
            "names are lowercase letters, digits and underscores, starting with a letter"
        )
    return f"{where}: {err.message[:200]}", None


def report_schema_errors(
    errors: Iterable[SchemaError], node: Any, file: str, obj: str, issues: IssueSet
) -> bool:
    """Adds one issue per distinct schema error of an object; True when there was any."""
    # oneOf/anyOf produce a tree of alternatives; best_match per top-level error picks the
    # branch the author most likely meant instead of listing every alternative.
    from jsonschema.exceptions import best_match

    best = [best_match([e]) if e.context else e for e in errors]
    # A misspelt key also makes the real key "missing"; report only the misspelling.
    misspelt = set()
    for err in best:
        unknown = _unknown_key(err)
        if unknown is not None:
            for guess in difflib.get_close_matches(unknown, _schema_properties(err)):
                misspelt.add((tuple(err.absolute_path), guess))
    found = False
    seen: set[tuple[Any, ...]] = set()
    for err in sorted(best, key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(err.absolute_path)
        if err.validator == "required":
            missing = re.findall(r"'([^']+)'", err.message)
            if missing and (path, missing[0]) in misspelt:
                continue
        key = (path, err.validator, err.message)
        if key in seen:
            continue
        seen.add(key)
        found = True
        message, hint = _schema_error_text(err, obj)
        unknown = _unknown_key(err)
        issues.add(
            "schema",
            message,
            file=file,
            line=key_line(node, path, unknown) if unknown else line_at(node, path),
            hint=hint,
            object=obj,
        )
    return found


def pydantic_error(exc: Exception, node: Any, file: str, obj: str, issues: IssueSet) -> None:
    """Adds the issues of a pydantic validation error (at most five), located in the YAML."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        for err in errors()[:5]:
            loc = [p for p in err.get("loc", ()) if p != "__root__"]
            issues.add(
                "invalid_value",
                f"{'.'.join(map(str, loc)) or obj}: {err.get('msg')}",
                file=file,
                line=line_at(node, loc),
                object=obj,
            )
        return
    issues.add(
        "invalid_value", str(exc).splitlines()[0], file=file, line=line_at(node, []), object=obj
    )
