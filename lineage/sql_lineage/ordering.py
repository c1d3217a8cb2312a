"""A project's models in dependency order, and which of them may be extracted side by side.

Each model is scanned once (parsed, the tables it reads and writes noted); the scans order the
project as before (a model that reads another's table comes after it, names tie-broken by
their order) and split that order into *levels*: a model's level is past that of every earlier
model whose writes it reads or writes, so the models of one level can be extracted in any
process and still see exactly the book (the known columns) the serial order would show them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import networkx as nx
from sqlglot import exp

from lineage.sql_lineage.book import BookChange, SchemaBook
from lineage.sql_lineage.edges import ColumnEdge
from lineage.sql_lineage.script import ParsedStatement, StatementIssue, parse_script
from lineage.sql_lineage.statements import statements_edges


@dataclass(frozen=True)
class SqlModel:
    name: str
    sql: str
    schema: str | None = None  # where a bare SELECT model is materialised
    database: str | None = None
    file: str = ""
    # Names of the models this one reads, when the project states them (dbt's ref()s); None
    # means unknown, and the order is then guessed from the tables the SQL reads.
    depends_on: tuple[str, ...] | None = None
    table: str | None = None  # the table a bare SELECT writes; the model's name by default


@dataclass
class ModelScan:
    """What ordering needs of one model, found while parsing it (``parsed`` stays with the
    process that parsed it; the rest is small enough to send between processes)."""

    issues: list[StatementIssue]
    made: set[str]  # tables it creates or writes (lower-case names), ordering's view
    reads: set[str]  # tables it reads, CTE references left out (when depends_on is None)
    touches: frozenset[str]  # every table name it names, CTE names included
    writes: frozenset[str]  # every table name the book may learn from it
    writes_database: bool  # whether one of those may be database-qualified
    parsed: list[ParsedStatement] = field(default_factory=list)

    def shareable(self) -> ModelScan:
        """This scan without its syntax trees (what a worker sends back)."""
        return ModelScan(self.issues, self.made, self.reads, self.touches, self.writes,
                         self.writes_database)  # fmt: skip


@dataclass
class ModelResult:
    """One model's extraction: its edges and issues, and what it told the book."""

    edges: list[ColumnEdge]
    issues: list[StatementIssue]
    changes: list[BookChange]


def model_scan(model: SqlModel, dialect: str) -> ModelScan:
    """Parses ``model`` and notes the tables it reads and writes."""
    found, issues = parse_script(model.sql, dialect, file=model.file or model.name)
    made = {model.name.lower(), (model.table or model.name).lower()}
    read: set[str] = set()
    touches: set[str] = set(made)
    writes: set[str] = set(made)
    writes_database = model.database is not None
    for parsed in found:
        stmt = parsed.statement
        target = (
            stmt.this if isinstance(stmt, (exp.Create, exp.Insert, exp.Merge, exp.Update)) else None
        )
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table):
            made.add(target.name.lower())
        # One walk of the tree: the tables it names, and whatever a CREATE, INSERT or
        # SELECT … INTO anywhere in it (a script block too) names as its target, which may
        # reach the book.
        for node in stmt.find_all(exp.Table, exp.Create, exp.Insert, exp.Into):
            if isinstance(node, exp.Table):
                name = node.name.lower()
                touches.add(name)
                if model.depends_on is None and not _is_cte_ref(node):
                    read.add(name)
                continue
            for table in node.this.find_all(exp.Table) if node.this is not None else ():
                writes.add(table.name.lower())
                writes_database = writes_database or bool(table.catalog)
    writes |= made
    touches |= writes
    return ModelScan(issues, made, read - made, frozenset(touches), frozenset(writes),
                     writes_database, found)  # fmt: skip


def dependency_order(models: Sequence[SqlModel], scans: Sequence[ModelScan]) -> list[int]:
    """Indices of ``models`` in dependency order: a model that reads another's table comes
    after it. Stated dependencies (dbt's ``depends_on``) are used as they are; only a model
    without them has its reads guessed from the tables its SQL names, leaving out CTE
    references. Ties (and a cycle: then all) go by name."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    creates: dict[str, str] = {}
    for model, scan in zip(models, scans, strict=True):
        graph.add_node(model.name)
        for name in scan.made:
            creates.setdefault(name, model.name)
    names = {m.name for m in models}
    for model, scan in zip(models, scans, strict=True):
        if model.depends_on is not None:
            for upstream in model.depends_on:
                if upstream in names and upstream != model.name:
                    graph.add_edge(upstream, model.name)
            continue
        for table in scan.reads:
            if table in creates and creates[table] != model.name:
                graph.add_edge(creates[table], model.name)
    index = {m.name: i for i, m in enumerate(models)}
    try:
        order = list(nx.lexicographical_topological_sort(graph))
    except nx.NetworkXUnfeasible:
        order = sorted(index)
    return [index[n] for n in order]


def levels(order: Sequence[int], scans: Sequence[ModelScan], book: SchemaBook) -> list[list[int]]:
    """``order`` cut into levels whose models may run side by side, each level in ``order``.

    A model goes past the level of every earlier model that writes a table it names (it must
    see that write), and no earlier than any earlier model naming a table it writes (that one
    must not see it). Names are compared without schema, so the cut is conservative. The first
    write that may add a database-qualified table to a book without one changes how sqlglot
    nests every table: everything after it waits for it."""
    last_write: dict[str, int] = {}
    last_touch: dict[str, int] = {}
    floor = 0  # no model goes below this level (after a nesting change)
    nested = any(database for database, _, _ in book.tables)
    cut: list[list[int]] = []
    for i in order:
        scan = scans[i]
        level = max([floor, *(last_write[n] + 1 for n in scan.touches if n in last_write),
                     *(last_touch[n] for n in scan.writes if n in last_touch)])  # fmt: skip
        if level == len(cut):
            cut.append([])
        cut[level].append(i)
        for name in scan.writes:
            last_write[name] = max(last_write.get(name, 0), level)
        for name in scan.touches:
            last_touch[name] = max(last_touch.get(name, 0), level)
        if scan.writes_database and not nested:
            nested = True
            floor = level + 1
    return cut


def model_extract(
    model: SqlModel, parsed: list[ParsedStatement], *, book: SchemaBook, dialect: str,
    default_schema: str,
) -> ModelResult:  # fmt: skip
    """Edges of one model's parsed statements against ``book``, noting what it learns."""
    book.default_schema = (model.schema or default_schema).lower()
    book.default_database = model.database
    changes: list[BookChange] = []
    book.journal = changes
    issues: list[StatementIssue] = []
    try:
        edges = list(statements_edges(parsed, issues, model=model.name, book=book,
                                      dialect=dialect, file=model.file or model.name,
                                      table=model.table))  # fmt: skip
    finally:
        book.journal = None
    return ModelResult(edges, issues, changes)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raises the collector's thresholds for a project's extraction, then restores them.

    Syntax trees are cyclic (each node points at its parent) and every model keeps its trees
    until the project is done, so at the default thresholds the young-generation collections
    keep re-walking them: a third of the extraction's CPU time. Garbage still gets collected,
    in larger batches."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], 20_000), max(old[1], 50), max(old[2], 100))
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _is_cte_ref(table: exp.Table) -> bool:
    """Whether ``table`` names a CTE visible where it stands rather than a real table.

    A qualified name (``db.t``) is always a table. An unqualified one is a CTE when a WITH
    around it defines that name before it: inside a CTE's own body only the CTEs listed
    earlier are visible (all of them, itself too, under WITH RECURSIVE), so
    ``order_items AS (SELECT * FROM order_items)`` reads the real table.
    """
    if table.args.get("db") is not None or table.args.get("catalog") is not None:
        return False
    name = table.name.lower()
    child: exp.Expr = table
    cte_above: exp.Expr | None = None  # the nearest CTE whose body holds the table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.CTE):
            cte_above = parent
        with_ = parent.args.get("with_")
        if isinstance(with_, exp.With):
            recursive = bool(with_.args.get("recursive"))
            in_body = child is with_  # the table sits inside one of this WITH's CTEs
            for cte in with_.expressions:
                if in_body and cte is cte_above and not recursive:
                    break  # only the CTEs before this one are visible in its body
                if cte.alias_or_name.lower() == name:
                    return True
                if in_body and cte is cte_above:
                    break
        child, parent = parent, parent.parent
    return False
