"""The compile check: every changed or downstream metric compiles on every dialect."""

from __future__ import annotations

from typing import Any

from registry.services.proposal_checks.inputs import CheckInputs, Result, Status, metrics_to_check
from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import DIALECTS, MetricQuery
from tally.errors import TallyError


def check_compile(inputs: CheckInputs) -> Result:
    metrics = metrics_to_check(inputs)
    if not metrics:
        return Status.PASSED, "no metric to compile", {"metrics": []}
    try:
        new = inputs.manifest(new=True)
        old = inputs.manifest(new=False)
    except (KeyError, TypeError, ValueError) as exc:
        return Status.FAILED, f"the proposed release cannot be loaded: {exc}", {}
    failures: list[dict[str, Any]] = []
    compiled = 0
    for metric in metrics:
        for dialect in DIALECTS:
            query = MetricQuery(
                metrics=(metric,), group_by=("metric_time__month",), dialect=dialect
            )
            try:
                compile_query(query, new)
                compiled += 1
            except TallyError as exc:
                # A query the base release cannot compile either is not this proposal's doing.
                preexisting = metric in old.metrics and _compiles(query, old) is False
                failures.append(
                    {
                        "metric": metric,
                        "dialect": dialect,
                        "code": exc.code,
                        "message": exc.message,
                        "preexisting": preexisting,
                    }
                )
    new_failures = [f for f in failures if not f["preexisting"]]
    details = {"metrics": metrics, "dialects": list(DIALECTS), "failures": failures}
    if new_failures:
        first = new_failures[0]
        return (
            Status.FAILED,
            f"{len(new_failures)} compile failure(s); first: {first['metric']} on "
            f"{first['dialect']}: {first['message']}",
            details,
        )
    return (
        Status.PASSED,
        f"{compiled} compiles ({len(metrics)} metric(s) × {len(DIALECTS)} dialects)",
        details,
    )


def _compiles(query: MetricQuery, manifest: Manifest) -> bool:
    try:
        compile_query(query, manifest)
    except TallyError:
        return False
    return True
