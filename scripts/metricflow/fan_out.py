"""The fan-out property over MetricFlow's test manifests (``itests.py CHECKOUT --fan-out``).

Issue #16: for every simple metric over a SUM or COUNT measure and every group-by item Tally
lists as reachable for it, the groups must add up to the metric's total (a NULL group holding
the rows a join finds nothing for). A larger sum is a silent fan-out (a join multiplied
rows), a smaller one lost rows; a refusal (QueryError) is counted with its code.

This module holds the pure pieces (which metrics and items, the comparison, the table) and
``child_fan_out``, which itests.py's child process runs after syncing a manifest (Django
is imported there only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from semantic.compiler.date_parts import EXTRACT_PREFIX
from semantic.compiler.grains import GRAINS, SUB_DAILY

ADDITIVE_AGGS = ("sum", "count", "sum_boolean")
ITEM_CAP = 40
REL_TOL = 1e-9  # floats only; whole numbers compare exactly


def probe_items(items: Iterable[str], cap: int = ITEM_CAP) -> tuple[list[str], int]:
    """The items to probe: each time item once, at its own grain (a coarser grain only merges
    groups, so a fan-out shows at the base name too), no date parts; at most ``cap``.
    Returns (items, how many were left out by the cap).

    Example:
        >>> probe_items(["metric_time", "metric_time__month", "metric_time__extract_dow",
        ...     "booking__ds__hour", "listing", "listing__country"], cap=3)
        (['metric_time', 'listing', 'listing__country'], 0)
    """
    kept = []
    for item in items:
        last = item.rsplit("__", 1)[-1] if "__" in item else ""
        if last in GRAINS or last in SUB_DAILY or last.startswith(EXTRACT_PREFIX):
            continue
        kept.append(item)
    return kept[:cap], max(0, len(kept) - cap)


def additive_metrics(metrics: Mapping[str, Any], measures: Mapping[str, Any]) -> list[str]:
    """Simple metrics over a SUM/COUNT measure (not semi-additive), without a time-spine
    join or a null fill (those add rows by design), by name.

    Example:
        >>> from types import SimpleNamespace as N
        >>> ms = {"a": N(agg="sum", non_additive=None), "b": N(agg="max", non_additive=None)}
        >>> mets = {"x": N(type="simple", params={"measure": "a"}),
        ...     "y": N(type="simple", params={"measure": {"name": "b"}}),
        ...     "z": N(type="simple", params={"measure": {"name": "a", "fill_nulls_with": 0}}),
        ...     "r": N(type="ratio", params={})}
        >>> additive_metrics(mets, ms)
        ['x']
    """
    out = []
    for name, metric in metrics.items():
        if metric.type != "simple":
            continue
        ref = metric.params.get("measure")
        ref = ref if isinstance(ref, Mapping) else {"name": ref}
        measure = measures.get(str(ref.get("name")))
        if measure is None or measure.agg not in ADDITIVE_AGGS or measure.non_additive:
            continue
        if ref.get("join_to_timespine") or ref.get("fill_nulls_with") is not None:
            continue
        out.append(name)
    return sorted(out)


def number(value: Any) -> Decimal:
    """A metric cell as a Decimal, NULL as 0 (a sum of nothing)."""
    return Decimal(str(value)) if value is not None else Decimal(0)


def groups_total(rows: Sequence[Sequence[Any]], column: int) -> Decimal:
    """The sum of one column over all groups, NULL-safe.

    Example:
        >>> groups_total([("a", 2), (None, 1.5), ("b", None)], 1)
        Decimal('3.5')
    """
    return sum((number(row[column]) for row in rows), Decimal(0))


def totals_equal(grouped: Decimal, total: Decimal) -> bool:
    """Equal; within a relative 1e-9 only where a side has a fraction (float measures), so
    that whole counts and sums compare exactly however large.

    Example:
        >>> totals_equal(Decimal("3.0000000000001"), Decimal(3)), totals_equal(Decimal(4), Decimal(3))
        (True, False)
    """
    if grouped == total:
        return True
    if grouped == grouped.to_integral_value() and total == total.to_integral_value():
        return False
    return math.isclose(float(grouped), float(total), rel_tol=REL_TOL)


def join_lines(sql: str) -> list[str]:
    """The FROM / JOIN lines of compiled SQL (what a report of a fan-out quotes)."""
    return [line.strip() for line in sql.splitlines() if " JOIN " in f" {line.upper()} "]


def child_fan_out(cap: int = ITEM_CAP) -> dict[str, Any]:
    """In the itests child after a sync: probe every additive metric of the current release
    on the configured warehouse. Returns counts and the findings."""
    from semantic.compiler.api import queryable_items
    from semantic.compiler.spec import MetricQuery
    from semantic.manifests import manifest_for_release, release_resolve
    from semantic.services import query_execute
    from tally.errors import TallyError

    manifest = manifest_for_release(release_resolve(None))
    metrics = additive_metrics(manifest.metrics, manifest.measures)
    out: dict[str, Any] = {
        "metrics": len(metrics), "pairs": 0, "equal": 0, "capped": 0,
        "refused": [], "different": [], "total_errors": [],
    }  # fmt: skip

    def run(metric: str, group_by: tuple[str, ...]) -> tuple[Decimal, str]:
        answer = query_execute(query=MetricQuery(metrics=(metric,), group_by=group_by))
        names = [c.lower() for c in answer.columns]
        column = names.index(metric.lower()) if metric.lower() in names else len(names) - 1
        return groups_total(answer.rows, column), answer.compiled.sql

    for metric in metrics:
        try:
            total, _ = run(metric, ())
        except TallyError as exc:
            out["total_errors"].append({"metric": metric, "code": exc.code, "error": exc.message})
            continue
        items, capped = probe_items(queryable_items(manifest, metric), cap)
        out["capped"] += capped
        for item in items:
            out["pairs"] += 1
            try:
                grouped, sql = run(metric, (item,))
            except TallyError as exc:
                # A warehouse error's message hides the cause (server log): keep it here.
                cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
                out["refused"].append(
                    {"metric": metric, "item": item, "code": exc.code,
                     "error": exc.message + cause}
                )  # fmt: skip
                continue
            if totals_equal(grouped, total):
                out["equal"] += 1
            else:
                out["different"].append(
                    {"metric": metric, "item": item, "total": str(total),
                     "grouped": str(grouped), "sql": sql}
                )  # fmt: skip
    return out


def print_table(results: Mapping[str, Mapping[str, Any]], cap: int = ITEM_CAP) -> None:
    """The per-manifest Markdown table, then every refusal code and every difference."""
    print("| manifest | metrics | pairs checked | equal | refused | DIFFERENT |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        if "error" in r:
            print(f"| {name} | – | – | – | – | – | ({r['error'].splitlines()[0][:120]})")
            continue
        print(
            f"| {name} | {r['metrics']} | {r['pairs']} | {r['equal']} | {len(r['refused'])} "
            f"| {len(r['different'])} |"
        )
    print()
    for name, r in results.items():
        if "error" in r:
            print(f"- {name}: {r['error'][:600]}")
            continue
        codes: dict[str, list[dict[str, str]]] = {}
        for refusal in r["refused"]:
            codes.setdefault(refusal["code"], []).append(refusal)
        for code, refusals in sorted(codes.items()):
            first = refusals[0]
            print(
                f"- {name} refused {code} ×{len(refusals)}, e.g. {first['metric']} by "
                f"{first['item']}: {first['error'][:300]}"
            )
        if r["capped"]:
            print(f"- {name}: {r['capped']} item(s) left out by the cap of {cap} per metric")
        for err in r["total_errors"]:
            print(f"- {name}: total of {err['metric']} refused: {err['code']}: {err['error']}")
        for d in r["different"]:
            print(
                f"- {name} DIFFERENT {d['metric']} by {d['item']}: groups {d['grouped']}, "
                f"total {d['total']}; joins: {' | '.join(join_lines(d['sql']))[:400]}"
            )
