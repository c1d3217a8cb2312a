"""Hand-labelled column edges of public dbt projects (tests/lineage/data/real_projects/): loading,
scoring Tally's DIRECT edges against them, and the per-model excerpts the tests run on.

Each ``<project>.yml`` pins a repository and commit and lists, per labelled target column, the
columns whose value flows into it (one hop). Scoring counts, over the labelled columns only,
the edges found and expected (true positives), found but not labelled (false positives) and
labelled but not found (false negatives). ``<project>.excerpts.yml`` holds, for each model that
has labelled columns, its compiled SQL and the columns of the relations it reads, so that the
test suite scores the extractor without the project's checkout. The full-project score (with
model ordering, catalog and all) comes from ``scripts/lineage_eval/projects.py`` on a checkout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lineage.sql_lineage import ColumnEdge, SchemaBook, sql_lineage

DATA = Path(__file__).resolve().parent.parent / "tests" / "lineage" / "data" / "real_projects"


@dataclass(frozen=True)
class Labels:
    project: str
    repo: str
    commit: str
    dialect: str
    database: str
    columns: dict[str, frozenset[str]]  # target column -> its direct sources


@dataclass
class Score:
    project: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)  # "fn source > target" / "fp …"

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: Score) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn
        self.misses += other.misses


def load_labels(path: Path) -> Labels:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Labels(
        project=data["project"],
        repo=data["repo"],
        commit=data["commit"],
        dialect=data.get("dialect", "duckdb"),
        database=str(data.get("database") or "").lower(),
        columns={
            str(t).lower(): frozenset(str(s).lower() for s in (sources or []))
            for t, sources in data["columns"].items()
        },
    )


def label_files(root: Path = DATA) -> list[Path]:
    return sorted(p for p in root.glob("*.yml") if not p.name.endswith(".excerpts.yml"))


def _strip(name: str, database: str) -> str:
    return name[len(database) + 1 :] if database and name.startswith(database + ".") else name


def score(labels: Labels, edges: Iterable[ColumnEdge]) -> Score:
    """Tally's DIRECT edges into the labelled columns against the labels.

    Example:
        >>> from lineage.sql_lineage import sql_edges
        >>> labels = Labels("p", "", "", "duckdb", "", {"main.b.y": frozenset({"main.a.x"})})
        >>> s = score(labels, sql_edges("CREATE TABLE b AS SELECT x AS y, z FROM a"))
        >>> (s.tp, s.fp, s.fn)
        (1, 0, 0)
    """
    found: dict[str, set[str]] = {}
    for edge in edges:
        source, target, subtype = edge.key
        if subtype == "direct":
            found.setdefault(_strip(target, labels.database), set()).add(
                _strip(source, labels.database)
            )
    result = Score(labels.project)
    for target, expected in sorted(labels.columns.items()):
        got = found.get(target, set())
        result.tp += len(expected & got)
        result.fp += len(got - expected)
        result.fn += len(expected - got)
        result.misses += [f"missing {s} > {target}" for s in sorted(expected - got)]
        result.misses += [f"extra   {s} > {target}" for s in sorted(got - expected)]
    return result


# --------------------------------------------------------------------------- excerpts


@dataclass(frozen=True)
class Excerpt:
    model: str
    table: str
    schema: str
    database: str | None
    sql: str
    reads: dict[str, list[str]]  # "db.schema.table" -> columns, as known when it was read


def excerpts_path(labels_path: Path) -> Path:
    return labels_path.with_name(labels_path.stem + ".excerpts.yml")


def load_excerpts(path: Path) -> list[Excerpt]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Excerpt(
            model=e["model"],
            table=e.get("table") or e["model"],
            schema=e["schema"],
            database=e.get("database"),
            sql=e["sql"],
            reads={k: list(v) for k, v in (e.get("reads") or {}).items()},
        )
        for e in data["models"]
    ]


def excerpt_edges(excerpt: Excerpt, dialect: str) -> list[ColumnEdge]:
    """One model's edges from its excerpt alone (its reads as the known schema)."""
    book = SchemaBook(default_schema=excerpt.schema.lower(), default_database=excerpt.database)
    for name, columns in excerpt.reads.items():
        parts = name.lower().split(".")
        relation = (parts[0] or None, parts[1], parts[2]) if len(parts) == 3 else (None, *parts)
        book.add(relation, columns)  # type: ignore[arg-type]
    found = sql_lineage(excerpt.sql, dialect=dialect, model=excerpt.model, schema=book)
    # A bare SELECT model writes its own table name (dbt's alias).
    return [e for e in found.edges] if excerpt.table == excerpt.model else [
        ColumnEdge(e.source_table, e.source_column,
                   (e.target_table[0], e.target_table[1], excerpt.table.lower())
                   if e.target_table[2] == excerpt.model.lower() else e.target_table,
                   e.target_column, e.subtype, e.transformation, e.expr, e.model)
        for e in found.edges
    ]  # fmt: skip


def score_excerpts(labels_path: Path) -> Score:
    """The labelled project scored on its stored excerpts (no checkout needed)."""
    labels = load_labels(labels_path)
    edges: list[ColumnEdge] = []
    for excerpt in load_excerpts(excerpts_path(labels_path)):
        edges.extend(excerpt_edges(excerpt, labels.dialect))
    return score(labels, edges)


def excerpts_dump(
    labels: Labels, models: Iterable[Any], tables: Mapping[tuple[str | None, str, str], list[str]]
) -> dict[str, Any]:
    """The excerpts of the models that hold labelled columns: their SQL and the columns of
    every known table they read (``tables`` is the project's SchemaBook after import)."""
    import sqlglot
    from sqlglot import exp

    wanted = {t.rsplit(".", 1)[0] for t in labels.columns}
    out = []
    for model in models:
        name = f"{(model.schema or 'main').lower()}.{(model.table or model.name).lower()}"
        if name not in wanted:
            continue
        reads: dict[str, list[str]] = {}
        try:
            statements = sqlglot.parse(model.sql, read=labels.dialect)
        except Exception:
            statements = []
        for stmt in statements:
            for table in stmt.find_all(exp.Table) if stmt is not None else ():
                key = (
                    (table.catalog or model.database or "").lower() or None,
                    (table.db or model.schema or "main").lower(),
                    table.name.lower(),
                )
                if key in tables:
                    reads[".".join(p or "" for p in key)] = list(tables[key])
        out.append({
            "model": model.name, "table": model.table or model.name,
            "schema": model.schema or "main", "database": model.database,
            "file": model.file, "sql": _tidy(model.sql), "reads": dict(sorted(reads.items())),
        })  # fmt: skip
    return {"project": labels.project, "repo": labels.repo, "commit": labels.commit,
            "models": out}  # fmt: skip


def _tidy(sql: str) -> str:
    """Trailing spaces and blank runs dropped (dbt's Jinja leaves many), so the YAML can hold
    the SQL as a readable block."""
    lines = [line.rstrip() for line in sql.splitlines()]
    return "\n".join(line for i, line in enumerate(lines) if line or (i and lines[i - 1]))


class _BlockDumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def excerpts_yaml(dump: Mapping[str, Any]) -> str:
    return yaml.dump(
        dict(dump), Dumper=_BlockDumper, sort_keys=False, width=100, allow_unicode=True
    )
