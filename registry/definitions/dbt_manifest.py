"""dbt's own output, ``target/semantic_manifest.json``, read as definitions.

dbt writes the semantic manifest as DSI's pydantic JSON: every optional field present (as
null), where filters as ``{"where_filters": [{"where_sql_template": …}]}``, windows as
``{"count", "granularity"}``, the measures it derived (``input_measures``), the metrics that
``create_metric`` made, and ``node_relation`` resolved to the real database and schema. This
module turns each object back into the YAML shape the Semantic Layer spec describes, as one
MetricFlow-layout document per object, so that the loader checks it exactly as it checks YAML.
JSON has no line numbers worth showing, so an object's line is where its ``"name"`` stands in
the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.definitions.dsi_parse import as_written_spec
from registry.definitions.issues import IssueSet
from registry.definitions.lines import LineDict
from registry.definitions.yaml_source import SourceFile, display_path, max_file_bytes

MANIFEST_FILE = "semantic_manifest.json"
# List key in the JSON → the one-object document key the loader reads.
SECTIONS = {
    "semantic_models": "semantic_model",
    "metrics": "metric",
    "saved_queries": "saved_query",
}
# Fields dbt adds that the YAML spec does not have: positions, the DSI version that wrote
# the file, and what dbt derived from other fields (input_measures from the measures).
DERIVED_KEYS = {"metadata", "dsi_package_version", "input_measures"}


def is_semantic_manifest(path: Path) -> bool:
    """A ``.json`` file is read as dbt's semantic manifest (its usual name is
    ``target/semantic_manifest.json``)."""
    return path.is_file() and path.suffix == ".json"


def _without_derived(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_derived(v) for k, v in value.items() if k not in DERIVED_KEYS}
    if isinstance(value, list):
        return [_without_derived(v) for v in value]
    return value


def _line_finder(text: str) -> Any:
    """A function name → the line of its next ``"name": "<name>"`` (0 when absent)."""
    position = 0

    def line_of(name: str) -> int:
        nonlocal position
        match = re.compile(r'"name"\s*:\s*' + re.escape(json.dumps(name))).search(text, position)
        if match is None:
            return 0
        position = match.end()
        return text.count("\n", 0, match.start()) + 1

    return line_of


def _lined(value: dict[str, Any], line: int) -> LineDict:
    out = LineDict(value)
    out.line, out.key_lines = line, {}
    return out


def manifest_documents(data: Any, text: str = "") -> list[LineDict]:
    """The objects of a parsed semantic manifest as one-object documents in YAML shape.

    Example:
        >>> docs = manifest_documents({"metrics": [{"name": "m", "type": "simple",
        ...     "filter": None, "type_params": {"measure": {"name": "x", "filter": None},
        ...     "input_measures": [{"name": "x"}]}}]})
        >>> dict(docs[0])
        {'metric': {'name': 'm', 'type': 'simple', 'type_params': {'measure': {'name': 'x'}}}}
    """
    line_of = _line_finder(text)
    documents: list[LineDict] = []
    for section, key in SECTIONS.items():
        for item in data.get(section) or ():
            if not isinstance(item, dict):
                continue
            line = line_of(str(item.get("name", "")))
            spec = as_written_spec(_without_derived(item))
            documents.append(_lined({key: _lined(spec, line)}, line))
    config = data.get("project_configuration")
    if isinstance(config, dict):
        spec = as_written_spec(_without_derived(config))
        if spec:
            documents.append(_lined({"project_configuration": _lined(spec, 1)}, 1))
    return documents


def read_semantic_manifest(path: Path, root: Path, issues: IssueSet) -> Iterator[SourceFile]:
    """dbt's ``semantic_manifest.json`` at ``path`` as one source of documents."""
    shown = display_path(path, root)
    if path.stat().st_size > max_file_bytes() * 8:
        # A whole project's manifest is one file: allow it the size of several YAML files.
        issues.add(
            "file_too_large",
            f"{path.name} is {path.stat().st_size / 2**20:.1f} MB",
            file=shown,
            hint="the limit is 8 × TALLY_MAX_DEFINITION_BYTES",
        )
        return
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        issues.add(
            "json_syntax",
            f"{path.name} is not a JSON document: {exc}",
            file=shown,
            line=getattr(exc, "lineno", 0),
            hint="point at dbt's target/semantic_manifest.json (run `dbt parse` to write it)",
        )
        return
    if not isinstance(data, dict) or not (set(SECTIONS) | {"project_configuration"}) & set(data):
        issues.add(
            "not_a_semantic_manifest",
            f"{path.name} is JSON but not a dbt semantic manifest (no semantic_models, metrics, "
            "saved_queries or project_configuration)",
            file=shown,
            hint="point at dbt's target/semantic_manifest.json, or a folder of YAML",
        )
        return
    yield SourceFile(shown, tuple(manifest_documents(data, text)), text)
