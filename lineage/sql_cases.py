"""The SQL lineage case suite (tests/lineage/data/sql_cases.yml): loading and edge-level scoring.

Shared by the table-driven test and ``bench lineage`` (which reports edge-level F1 on it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from lineage.sql_lineage import ColumnEdge, sql_edges

CASES_FILE = Path(__file__).resolve().parent.parent / "tests" / "lineage" / "data" / "sql_cases.yml"

EdgeKey = tuple[str, str, str]


@dataclass(frozen=True)
class SqlCase:
    id: str
    dialect: str
    sql: str
    expected: frozenset[EdgeKey]
    schema: dict[str, list[str]]


def parse_edge(text: str) -> EdgeKey:
    """``"a.b.c > d.e.f"`` (direct) or ``"a.b.c ~ d.e.f"`` (indirect) as an edge key.

    Example:
        >>> parse_edge("raw.e.x ~ main.m.y")
        ('raw.e.x', 'main.m.y', 'indirect')
    """
    for mark, subtype in ((" > ", "direct"), (" ~ ", "indirect")):
        if mark in text:
            source, target = text.split(mark)
            return (source.strip(), target.strip(), subtype)
    raise ValueError(f"edge {text!r} needs ' > ' or ' ~ '")


def load_cases(path: Path = CASES_FILE) -> list[SqlCase]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    schema = data["schema"]
    return [
        SqlCase(
            id=case["id"],
            dialect=case.get("dialect", "duckdb"),
            sql=case["sql"],
            expected=frozenset(parse_edge(e) for e in case.get("edges") or []),
            schema=schema,
        )
        for case in data["cases"]
    ]


def case_edges(case: SqlCase) -> frozenset[EdgeKey]:
    return edge_keys(sql_edges(case.sql, dialect=case.dialect, model="m", schema=case.schema))


def edge_keys(edges: Iterable[ColumnEdge]) -> frozenset[EdgeKey]:
    return frozenset(e.key for e in edges)


def f1(expected: Iterable[frozenset[EdgeKey]], found: Iterable[frozenset[EdgeKey]]) -> float:
    """Edge-level F1 summed over cases (micro average).

    Example:
        >>> a = frozenset({("x", "y", "direct")})
        >>> f1([a], [a])
        1.0
    """
    tp = fp = fn = 0
    for want, got in zip(expected, found, strict=True):
        tp += len(want & got)
        fp += len(got - want)
        fn += len(want - got)
    if tp == 0:
        return 0.0 if fp or fn else 1.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall)
