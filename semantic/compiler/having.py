"""Having: conditions on a query's output columns, applied after the metrics are computed.

A having item is a condition over the query's own outputs, its metrics and group-by
items, named as their columns are named (as ``order_by`` names them)::

    revenue > 1000 AND account__plan <> 'free'

Group-by items may also be written as in a where filter (``{{ Dimension('account__plan') }}``,
``{{ TimeDimension('metric_time', 'month') }}``): they name the same output column. A metric
has no Jinja item of its own here: DSI's ``Metric('m', group_by=[…])`` is a metric
aggregated per entity *before* the query's aggregation (a where filter), not the query's
output, and MetricFlow has no HAVING to borrow a spelling from.

The text goes through the where filter's reader (semantic.compiler.where): the same
tokenizer checks, allow-list of nodes and functions, and refusal of subqueries; only the
names it accepts differ. The compiled query is wrapped, ``SELECT <outputs> FROM (<query>)
AS having_input WHERE <having>``, before ORDER BY and LIMIT, so a condition sees each row
as the caller would: after row policies and PII masks, which apply to the reads inside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from semantic.compiler.combine import output_column
from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.filters import ACCESS
from semantic.compiler.joins import Source
from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import Leaf
from semantic.compiler.policies import check_unmasked
from semantic.compiler.resolve import METRIC_TIME, GroupByItem
from semantic.compiler.spec import MetricQuery
from semantic.compiler.where import substitute
from semantic.compiler.where.allow_list import PLACEHOLDER_PREFIX
from semantic.compiler.where.messages import HINT_SUBQUERY
from semantic.compiler.where.reader import Reader
from semantic.compiler.where.refs import Block, ParsedWhere, QueryItemRef, clip, suggest
from tally.errors import QueryError

ERROR_CODE = "bad_having"
ALIAS = "having_input"
MSG_NOT_OUTPUT = (
    "{name!r} is not an output of the query: having filters its metrics and group-by items"
)
HINT_NOT_OUTPUT = (
    "outputs: {outputs}; to filter on another metric or item, request it too, or filter "
    "rows before aggregation with where"
)
MSG_METRIC_CALL = "{text} in having: having names the query's own output columns"
HINT_METRIC_CALL = (
    "name the metric's column, e.g. revenue > 1000 (Metric('…', group_by=[…]) is a where "
    "filter: a metric per entity, before the query's aggregation)"
)
HINT_HAVING_SUBQUERY = (
    "compare the query's outputs with constants; to compare with another metric, request "
    "it too and name its column"
)

OutputOf = Callable[[str], "str | None"]


def item_column_name(ref: QueryItemRef) -> str:
    """The column name a where filter's Jinja item gives its group-by item.

    Example:
        >>> from semantic.compiler.where import parse_where
        >>> ref = parse_where("{{ TimeDimension('metric_time', 'month') }} IS NULL").refs[0]
        >>> item_column_name(ref)
        'metric_time__month'
    """
    suffix = [f"extract_{ref.date_part}"] if ref.date_part else ([ref.grain] if ref.grain else [])
    return "__".join([*ref.entity_path, ref.name, *suffix]).lower()


class HavingReader(Reader):
    """The where reader, reading bare names as output columns and refusing Metric()."""

    def __init__(
        self,
        template: str,
        location: str,
        custom_grains: tuple[str, ...],
        output_of: OutputOf,
        outputs: Sequence[str],
    ) -> None:
        super().__init__(template, location, custom_grains)
        self.output_of = output_of
        self.outputs = tuple(outputs)

    def split(self) -> list[Block]:
        blocks = super().split()
        for block in blocks:
            if block.text[2:-2].strip().startswith("Metric"):
                message = MSG_METRIC_CALL.format(text=clip(block.text))
                raise self.fail(message, HINT_METRIC_CALL, (block.start, block.end))
        return blocks

    def name_columns(self, tree: exp.Expr, refs: list[QueryItemRef]) -> exp.Expr:
        for ref in refs:
            # A Jinja item is a group-by item: it must be one of this query's.
            if self.output_of(item_column_name(ref)) is None:
                segment = next(s for s in self.segments if s.placeholder == ref.placeholder)
                raise self.not_output(ref.text, (segment.start, segment.end))

        def name(node: exp.Expr) -> exp.Expr:
            if type(node) is not exp.Column or not isinstance(node.this, exp.Identifier):
                return node
            identifier = node.this
            start = identifier.meta.get("start")
            if start is not None and self.placeholder_starts.get(start) == identifier.name:
                return node  # a Jinja item's placeholder
            span = self.node_span(node)
            template_span = self.to_template(span) if span else None
            shown = self.template_text(span, node.sql())
            column = self.output_of(identifier.name.lower())
            if column is None or len(node.parts) > 1 or start is None:
                raise self.not_output(shown, template_span)
            same = next((r for r in refs if r.kind == "output" and r.name == column), None)
            if same is None:
                same = QueryItemRef(
                    "output", column, (), None, None, (), shown, f"{PLACEHOLDER_PREFIX}{len(refs)}"
                )
                refs.append(same)
            placeholder = exp.to_identifier(same.placeholder)
            placeholder.meta["start"] = start
            # The guard accepts a column only at a start it knows holds a placeholder.
            self.placeholder_starts[start] = same.placeholder
            return exp.Column(this=placeholder)

        return tree.transform(name, copy=False)

    def not_output(self, name: str, span: tuple[int, int] | None) -> QueryError:
        close = suggest(name.lower(), self.outputs)
        hint = (
            f"did you mean {close!r}?"
            if close
            else HINT_NOT_OUTPUT.format(outputs=", ".join(self.outputs))
        )
        return self.fail(MSG_NOT_OUTPUT.format(name=name), hint, span)


def parse_having(
    template: str,
    *,
    location: str,
    keys: Sequence[str],
    metrics: Sequence[str],
    custom_grains: tuple[str, ...] = (),
) -> tuple[exp.Expr, list[str]]:
    """Parses a having item into a condition on the output columns (unqualified names).

    Args:
        template: The having item as the user wrote it.
        location: ``having[i]``, for error locations.
        keys: The query's group-by output columns.
        metrics: The query's metrics (their output columns).
        custom_grains: The manifest's custom grains (for Jinja items).

    Returns:
        The condition, and the output columns it reads.

    Raises:
        QueryError: code ``bad_having``: a name that is not an output, a Metric() item, or
            anything a where filter's guard refuses (subqueries, functions off the list).

    Example:
        >>> condition, used = parse_having("revenue > 1000 AND account__plan <> 'free'",
        ...     location="having[0]", keys=["account__plan"], metrics=["revenue"])
        >>> condition.sql(), used
        ("revenue > 1000 AND account__plan <> 'free'", ['revenue', 'account__plan'])
    """

    def output_of(name: str) -> str | None:
        return output_column(name, keys, metrics)

    reader = HavingReader(template, location, custom_grains, output_of, [*metrics, *keys])
    try:
        parsed: ParsedWhere = reader.read()
    except QueryError as error:
        # Refusals of the shared reader say bad_where; the field here is having.
        error.code = ERROR_CODE
        if error.hint == HINT_SUBQUERY:
            error.hint = HINT_HAVING_SUBQUERY
        raise
    columns: dict[str, exp.Expr] = {}
    for ref in parsed.refs:
        column = ref.name if ref.kind == "output" else output_of(item_column_name(ref))
        assert column is not None  # checked by the reader
        columns[ref.placeholder] = exp.column(column)
    used = list(dict.fromkeys(c.name for c in columns.values()))
    return substitute(parsed, columns), used


def having_select(
    select: exp.Select,
    query: MetricQuery,
    items: Sequence[GroupByItem],
    manifest: Manifest,
    metric_leaves: dict[str, list[Leaf]],
) -> exp.Select:
    """``select`` filtered by the query's having items: wrapped as ``SELECT <outputs> FROM
    (<select>) AS having_input WHERE …``, its CTEs moved to the outer SELECT (the root's
    WITH is where filter CTEs are prepended). Unchanged without having items."""
    if not query.having:
        return select
    keys = [item.column for item in items]
    conditions: list[exp.Expr] = []
    for index, text in enumerate(query.having):
        condition, used = parse_having(
            text,
            location=f"having[{index}]",
            keys=keys,
            metrics=query.metrics,
            custom_grains=manifest.time_spine.custom_grain_names,
        )
        _check_unmasked_outputs(used, items, manifest, metric_leaves, f"having[{index}]")
        for column in condition.find_all(exp.Column):
            column.set("table", exp.to_identifier(ALIAS))
        conditions.append(condition)
    with_ = select.args.get("with_")
    select.set("with_", None)
    outer = exp.select(*[exp.column(c, table=ALIAS) for c in (*keys, *query.metrics)], copy=False)
    outer = outer.from_(select.subquery(ALIAS, copy=False), copy=False)
    outer = outer.where(exp.and_(*conditions, copy=False), copy=False)
    if with_ is not None:
        outer.set("with_", with_)
    return outer


def _check_unmasked_outputs(
    used: Sequence[str],
    items: Sequence[GroupByItem],
    manifest: Manifest,
    metric_leaves: dict[str, list[Leaf]],
    location: str,
) -> None:
    """Refuses a having on an output a PII mask feeds, for a principal who sees masks: a
    masked item's values are pseudonyms (comparing them matches nothing, and comparing
    values would reveal them), and a metric over a masked column is not its real value
    (fail closed: a count_distinct of pseudonyms happens to be exact, a SUM is not)."""
    access = ACCESS.get(None)
    if access is None or not access.masks:
        return
    by_column = {item.column: item for item in items}
    every_leaf = [leaf for leaves in metric_leaves.values() for leaf in leaves]
    for column in used:
        item = by_column.get(column)
        if item is None:
            for leaf in metric_leaves[column]:
                measures = [leaf.measure]
                if leaf.conversion is not None:
                    measures.append(leaf.conversion.base_measure)
                for measure in measures:
                    model = manifest.semantic_models[measure.semantic_model]
                    source = Source(model, manifest, measure.name, measure.agg_time_dimension)
                    value = definition_expr(measure.expr, source.alias)
                    check_unmasked(value, source, access, location)
        elif item.element != METRIC_TIME:
            # The item as each aggregation reads it (the same column through its own joins).
            for leaf in every_leaf:
                model = manifest.semantic_models[leaf.measure.semantic_model]
                source = Source(model, manifest, leaf.measure.name, leaf.measure.agg_time_dimension)
                try:
                    value = source.item_expr(item, leaf.measure)
                except QueryError:
                    continue  # not reached from this model; the compile itself decides
                check_unmasked(value, source, access, location)
