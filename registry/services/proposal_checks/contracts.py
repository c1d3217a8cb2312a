"""The contracts check: breaking contract changes that definitions still read."""

from __future__ import annotations

from registry.definitions.contracts import contract_changes
from registry.definitions.project import CONTRACT, SEMANTIC_MODEL, DefinitionObject
from registry.definitions.rules import element_columns, semantic_model_table
from registry.services.proposal_checks.inputs import CheckInputs, Result, Status


def check_contracts(inputs: CheckInputs) -> Result:
    findings = []
    broken = 0
    for change in inputs.changes:
        if change.kind != CONTRACT:
            continue
        old = inputs.base.get((change.kind, change.name))
        if old is None or change.spec is None:
            continue
        for item in contract_changes(old.spec, change.spec):
            readers = _readers(inputs, item.table, item.column) if item.breaking else []
            broken += bool(readers)
            findings.append(
                {
                    "contract": change.name,
                    "change": item.describe(),
                    "breaking": item.breaking,
                    "read_by": readers,
                }
            )
    if broken:
        return (
            Status.FAILED,
            f"{broken} breaking contract change(s) still read by definitions",
            {"changes": findings},
        )
    breaking = sum(f["breaking"] for f in findings)
    summary = (
        f"{len(findings)} contract change(s), {breaking} breaking with no reader"
        if findings
        else "no contract changes"
    )
    return Status.PASSED, summary, {"changes": findings}


def _readers(inputs: CheckInputs, table: str, column: str | None) -> list[str]:
    out = []
    for (kind, name), spec in inputs.merged.items():
        if kind != SEMANTIC_MODEL:
            continue
        obj = DefinitionObject(kind, name, spec, "", 0)
        if semantic_model_table(obj) != table:
            continue
        if column is None or column in {c for c, _ in element_columns(obj)}:
            out.append(f"semantic_model:{name}")
    return out
