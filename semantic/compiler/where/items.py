"""Jinja query items: each ``{{ Dimension(…) }}``, ``TimeDimension``, ``Entity`` or ``Metric`` call.

The Jinja is parsed (with a ``SandboxedEnvironment``) but never rendered: only constant
arguments and the ``.grain()``/``.date_part()`` methods are read from its syntax tree, then
handed to dbt-semantic-interfaces' own builder objects and parameter-set factory, so names
split exactly as DSI splits them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from dbt_semantic_interfaces.call_parameter_sets import (
    DimensionCallParameterSet,
    EntityCallParameterSet,
    MetricCallParameterSet,
    TimeDimensionCallParameterSet,
)
from dbt_semantic_interfaces.naming.dundered import StructuredDunderedName
from dbt_semantic_interfaces.parsing.text_input.rendering_helper import (
    ObjectBuilderJinjaRenderHelper,
)
from dbt_semantic_interfaces.parsing.text_input.ti_description import (
    ObjectBuilderItemDescription,
    QueryItemType,
)
from dbt_semantic_interfaces.parsing.text_input.ti_processor import (
    ObjectBuilderItemDescriptionProcessor,
)
from dbt_semantic_interfaces.parsing.text_input.valid_method import ConfiguredValidMethodMapping
from dbt_semantic_interfaces.parsing.where_filter.parameter_set_factory import (
    ParameterSetFactory,
    QueryItemLocation,
)
from dbt_semantic_interfaces.type_enums.date_part import DatePart
from dbt_semantic_interfaces.type_enums.time_granularity import TimeGranularity
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from semantic.compiler.where.allow_list import DUNDER, MAX_NESTING, NAME_RE, PLACEHOLDER_PREFIX
from semantic.compiler.where.base import ReaderBase
from semantic.compiler.where.messages import (
    EXAMPLE_DIMENSION,
    HINT_BAD_ITEM,
    HINT_BAD_NAME,
    HINT_CHOICES,
    HINT_DID_YOU_MEAN,
    HINT_JINJA_DESCENDING,
    HINT_JINJA_ITEMS,
    HINT_JINJA_METHOD,
    HINT_TOO_DEEP,
    HINT_USAGE,
    MSG_BAD_ITEM,
    MSG_BAD_NAME,
    MSG_JINJA_ARGUMENT_VALUE,
    MSG_JINJA_ARGUMENTS,
    MSG_JINJA_ATTRIBUTE,
    MSG_JINJA_DESCENDING,
    MSG_JINJA_LIST_EXPECTED,
    MSG_JINJA_METHOD,
    MSG_JINJA_MISMATCH,
    MSG_JINJA_NAME_EXPECTED,
    MSG_JINJA_NOT_CALL,
    MSG_JINJA_SYNTAX,
    MSG_TOO_DEEP,
    MSG_UNKNOWN_DATE_PART,
    MSG_UNKNOWN_GRAIN,
    MSG_UNKNOWN_JINJA_FUNCTION,
    USAGE,
)
from semantic.compiler.where.refs import Block, QueryItemRef, clip, ref_key, suggest
from tally.errors import QueryError

LIST_PARAMS = frozenset({"entity_path", "group_by"})


# MetricFlow spells the grain `time_granularity_name`; `grain=` is the name users reach for
# (and the one the docs of `.grain()` suggest), so Tally accepts it as an alias.
KWARG_ALIASES: dict[str, dict[str, str]] = {"TimeDimension": {"grain": "time_granularity_name"}}
METHODS = frozenset({"grain", "date_part"})
WEEK_PART = "week"


JINJA = SandboxedEnvironment(undefined=StrictUndefined)


class Collector(ObjectBuilderItemDescriptionProcessor):
    """Receives the description DSI's builder object produces once all methods ran."""

    def __init__(self) -> None:
        self.descriptions: list[ObjectBuilderItemDescription] = []

    def process_description(self, item_description: ObjectBuilderItemDescription) -> str:
        self.descriptions.append(item_description)
        return ""


def read_items(
    blocks: Sequence[Block], template: str, location: str, custom_grains: tuple[str, ...]
) -> tuple[list[QueryItemRef], list[str]]:
    """The query items of a filter's ``{{ … }}`` blocks and each block's placeholder.

    Args:
        blocks: The blocks found in ``template`` (``Reader.split``), in order.
        template: The whole filter, which Jinja must read as the same blocks.
        location: Where the filter came from, for error locations.
        custom_grains: The manifest's custom time grains.

    Returns:
        The distinct items in order of first appearance, and per block the placeholder of
        its item (equal items share one).

    Raises:
        QueryError: code ``bad_where`` for a call or argument outside MetricFlow's items.

    Example:
        >>> text = "{{ Entity('account') }}"
        >>> refs, _ = read_items([Block(0, len(text), text)], text, "where[0]", ())
        >>> refs[0].kind, refs[0].placeholder
        ('entity', '__tally_ref_0')
    """
    items = JinjaItems(template, location, custom_grains)
    refs: list[QueryItemRef] = []
    placeholders: list[str] = []
    exprs: list[nodes.Expr] = []
    for block in blocks:
        expr, ref = items.read_item(block, len(refs))
        exprs.append(expr)
        same = next((r for r in refs if ref_key(r) == ref_key(ref)), None)
        if same is None:
            refs.append(ref)
            same = ref
        placeholders.append(same.placeholder)
    items.cross_check(exprs)
    return refs, placeholders


class JinjaItems(ReaderBase):
    """Reads each ``{{ … }}`` block into a ``QueryItemRef`` through DSI's own builder objects."""

    def read_item(self, block: Block, index: int) -> tuple[nodes.Expr, QueryItemRef]:
        span, text = (block.start, block.end), clip(block.text)
        try:
            body = JINJA.parse(block.text).body
        except TemplateSyntaxError as error:
            detail = error.message or "syntax error"
            raise self.fail(
                MSG_JINJA_SYNTAX.format(text=text, detail=detail), HINT_JINJA_ITEMS, span
            ) from None
        except RecursionError:
            raise self.fail(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP, span) from None
        if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
            raise self.fail(MSG_JINJA_NOT_CALL.format(text=text), HINT_JINJA_ITEMS, span)
        expr = body[0].nodes[0]
        function, call, methods = self.unchain(expr, text, span)
        description = self.describe(function, call, methods, text, span)
        ref = self.to_ref(description, block.text, f"{PLACEHOLDER_PREFIX}{index}", text, span)
        return expr, ref

    def cross_check(self, exprs: list[nodes.Expr]) -> None:
        # MetricFlow hands the whole filter to Jinja; if Jinja found other expressions than
        # our block scan did, the filter would mean different things to Tally and MetricFlow.
        try:
            tree = JINJA.parse(self.template)
        except TemplateSyntaxError as error:
            detail = error.message or "syntax error"
            raise self.fail(
                MSG_JINJA_SYNTAX.format(text=clip(self.template), detail=detail), HINT_JINJA_ITEMS
            ) from None
        except RecursionError:
            raise self.fail(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP) from None
        found: list[nodes.Node] = []
        for output in tree.body:
            if not isinstance(output, nodes.Output):
                raise self.fail(MSG_JINJA_MISMATCH, HINT_JINJA_ITEMS)
            found.extend(n for n in output.nodes if not isinstance(n, nodes.TemplateData))
        if found != exprs:
            raise self.fail(MSG_JINJA_MISMATCH, HINT_JINJA_ITEMS)

    def unchain(
        self, expr: nodes.Expr, text: str, span: tuple[int, int]
    ) -> tuple[str, nodes.Call, list[nodes.Call]]:
        """Splits ``Dimension(…).grain(…)`` into the builder call and its method calls."""
        methods: list[nodes.Call] = []
        # None: a Filter's node, which Jinja leaves empty inside a {% filter %} block.
        node: nodes.Node | None = expr
        while isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            methods.append(node)
            node = node.node.node
        if not (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name)):
            attributes: list[str] = []
            while isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Call | nodes.Filter):
                if isinstance(node, nodes.Getattr):
                    attributes.append(node.attr)
                node = node.node
            # Name the offending attribute nearest the base (`.grain` alone is merely misused).
            unusual = [name for name in attributes if name not in METHODS]
            named = unusual or attributes
            attribute = named[-1] if named else None
            if attribute is not None:
                message = MSG_JINJA_ATTRIBUTE.format(name=attribute, text=text)
                raise self.fail(message, HINT_JINJA_METHOD, span)
            raise self.fail(MSG_JINJA_NOT_CALL.format(text=text), HINT_JINJA_ITEMS, span)
        function = node.node.name
        if function not in USAGE:
            suggestion = suggest(function.lower(), [name.lower() for name in USAGE])
            hint = HINT_JINJA_ITEMS
            if suggestion is not None:
                proper = next(name for name in USAGE if name.lower() == suggestion)
                hint = HINT_DID_YOU_MEAN.format(suggestion=f"{proper}()")
            raise self.fail(MSG_UNKNOWN_JINJA_FUNCTION.format(name=function, text=text), hint, span)
        methods.reverse()
        for method in methods:
            assert isinstance(method.node, nodes.Getattr)
            name = method.node.attr
            if name == "descending":
                raise self.fail(MSG_JINJA_DESCENDING.format(text=text), HINT_JINJA_DESCENDING, span)
            # DSI's own table of builder methods per item type (filters, not order-by).
            valid = ConfiguredValidMethodMapping.DEFAULT_MAPPING[QueryItemType(function)]
            if name not in METHODS or name not in {allowed.value for allowed in valid}:
                raise self.fail(
                    MSG_JINJA_METHOD.format(name=name, text=text), HINT_JINJA_METHOD, span
                )
        return function, node, methods

    def arguments(
        self, call: nodes.Call, function: str, text: str, span: tuple[int, int]
    ) -> tuple[list[str | tuple[str, ...]], dict[str, str | tuple[str, ...]]]:
        """The call's arguments as Python values; only string constants and their lists."""
        usage = HINT_USAGE.format(usage=USAGE[function.split("(")[0]])
        if call.dyn_args is not None or call.dyn_kwargs is not None:
            raise self.fail(MSG_JINJA_ARGUMENT_VALUE.format(function=function), usage, span)

        def value(node: nodes.Expr) -> str | tuple[str, ...]:
            if isinstance(node, nodes.Const) and isinstance(node.value, str):
                return node.value.lower()
            if isinstance(node, nodes.List | nodes.Tuple) and all(
                isinstance(item, nodes.Const) and isinstance(item.value, str) for item in node.items
            ):
                return tuple(item.value.lower() for item in node.items)  # type: ignore[attr-defined]
            raise self.fail(MSG_JINJA_ARGUMENT_VALUE.format(function=function), usage, span)

        args = [value(arg) for arg in call.args]
        kwargs: dict[str, str | tuple[str, ...]] = {}
        for keyword in call.kwargs:
            if keyword.key == "descending":
                raise self.fail(MSG_JINJA_DESCENDING.format(text=text), HINT_JINJA_DESCENDING, span)
            key = KWARG_ALIASES.get(function, {}).get(keyword.key, keyword.key)
            if key in kwargs:
                detail = f"multiple values for argument {key!r}"
                message = MSG_JINJA_ARGUMENTS.format(function=function, detail=detail)
                raise self.fail(message, usage, span)
            kwargs[key] = value(keyword.value)
        return args, kwargs

    def bind(
        self,
        target: Callable[..., Any],
        label: str,
        args: list[str | tuple[str, ...]],
        kwargs: dict[str, str | tuple[str, ...]],
        usage: str,
        span: tuple[int, int],
    ) -> inspect.BoundArguments:
        """Checks arguments against DSI's own signature before calling it."""
        try:
            bound = inspect.signature(target).bind(*args, **kwargs)
        except TypeError as error:
            message = MSG_JINJA_ARGUMENTS.format(function=label, detail=str(error))
            raise self.fail(message, HINT_USAGE.format(usage=usage), span) from None
        for param, given in bound.arguments.items():
            if param in LIST_PARAMS and not isinstance(given, tuple):
                # DSI would iterate a string: entity_path='user' becomes u, s, e, r.
                message = MSG_JINJA_LIST_EXPECTED.format(param=param, function=label)
                raise self.fail(message, HINT_USAGE.format(usage=usage), span)
            if param not in LIST_PARAMS and isinstance(given, tuple):
                message = MSG_JINJA_NAME_EXPECTED.format(param=param, function=label)
                raise self.fail(message, HINT_USAGE.format(usage=usage), span)
        return bound

    def describe(
        self,
        function: str,
        call: nodes.Call,
        methods: list[nodes.Call],
        text: str,
        span: tuple[int, int],
    ) -> ObjectBuilderItemDescription:
        """Runs DSI's builder object (what Jinja would call) on the constant arguments."""
        collector = Collector()
        helper = ObjectBuilderJinjaRenderHelper(
            description_processor=collector,
            valid_method_mapping=ConfiguredValidMethodMapping.DEFAULT_MAPPING,
        )
        builders: dict[str, Callable[..., Any]] = {
            "Dimension": helper.get_function_for_dimension(),
            "TimeDimension": helper.get_function_for_time_dimension(),
            "Entity": helper.get_function_for_entity(),
            "Metric": helper.get_function_for_metric(),
        }
        args, kwargs = self.arguments(call, function, text, span)
        usage = USAGE[function]
        bound = self.bind(builders[function], function, args, kwargs, usage, span)
        self.check_date_part(bound.arguments.get("date_part_name"), text, span)
        # DSI has no week date part; Tally reads it as the ISO week (semantic.compiler.
        # date_parts). DSI builds the item without it and to_ref puts it back.
        self.week_part = bound.arguments.get("date_part_name") == WEEK_PART
        if self.week_part:
            bound.arguments["date_part_name"] = None
        try:
            builder = builders[function](*bound.args, **bound.kwargs)
        except Exception as error:  # DSI raises assorted types for bad items
            raise self.bad_item(error, text, span) from None
        for method in methods:
            assert isinstance(method.node, nodes.Getattr)
            name = method.node.attr  # one of METHODS, checked by unchain()
            label = f"{function}(…).{name}"
            margs, mkwargs = self.arguments(method, label, text, span)
            mbound = self.bind(getattr(builder, name), label, margs, mkwargs, usage, span)
            if name == "date_part":
                given = next(iter(mbound.arguments.values()), None)
                self.check_date_part(given, text, span)
                if given == WEEK_PART:
                    self.week_part = True
                    continue
            try:
                builder = getattr(builder, name)(*mbound.args, **mbound.kwargs)
            except Exception as error:
                raise self.bad_item(error, text, span) from None
        try:
            str(builder)  # DSI hands the finished description to the collector here
        except Exception as error:
            raise self.bad_item(error, text, span) from None
        return collector.descriptions[-1]

    def check_date_part(self, given: object, text: str, span: tuple[int, int]) -> None:
        # DSI's own check lists the valid parts from a set, in random order; ours is stable.
        parts = [part.value for part in DatePart] + [WEEK_PART]
        if given is None or given in parts:
            return
        message = MSG_UNKNOWN_DATE_PART.format(date_part=given, text=text)
        suggestion = suggest(str(given), parts)
        hint = (
            HINT_DID_YOU_MEAN.format(suggestion=repr(suggestion))
            if suggestion
            else HINT_CHOICES.format(choices=", ".join(parts))
        )
        raise self.fail(message, hint, span)

    def bad_item(self, error: Exception, text: str, span: tuple[int, int]) -> QueryError:
        detail = " ".join(str(error).split()) or type(error).__name__
        return self.fail(
            MSG_BAD_ITEM.format(text=text, detail=detail),
            HINT_BAD_ITEM.format(example=EXAMPLE_DIMENSION),
            span,
        )

    def to_ref(
        self,
        description: ObjectBuilderItemDescription,
        raw_text: str,
        placeholder: str,
        text: str,
        span: tuple[int, int],
    ) -> QueryItemRef:
        """Turns DSI's description into its call parameter set, then into a QueryItemRef."""
        try:
            parameter_set = self.parameter_set(description)
        except Exception as error:
            raise self.bad_item(error, text, span) from None
        grain: str | None = None
        date_part: str | None = None
        group_by: tuple[str, ...] = ()
        entity_path: tuple[str, ...] = ()
        if isinstance(parameter_set, DimensionCallParameterSet):
            kind, name = "dimension", parameter_set.dimension_reference.element_name
        elif isinstance(parameter_set, TimeDimensionCallParameterSet):
            kind, name = "time_dimension", parameter_set.time_dimension_reference.element_name
            grain = parameter_set.time_granularity_name
            date_part = parameter_set.date_part.value if parameter_set.date_part else None
        elif isinstance(parameter_set, EntityCallParameterSet):
            kind, name = "entity", parameter_set.entity_reference.element_name
        else:
            kind, name = "metric", parameter_set.metric_reference.element_name
            group_by = tuple(ref.element_name for ref in parameter_set.group_by)
        if not isinstance(parameter_set, MetricCallParameterSet):
            entity_path = tuple(ref.element_name for ref in parameter_set.entity_path)
        if self.week_part and kind in ("dimension", "time_dimension"):
            date_part = WEEK_PART
        for part in (name, *entity_path, *(p for g in group_by for p in g.split(DUNDER))):
            if not NAME_RE.match(part):
                raise self.fail(MSG_BAD_NAME.format(name=part, text=text), HINT_BAD_NAME, span)
        grains = [g.value for g in TimeGranularity] + list(self.custom_grains)
        if grain is not None and grain not in grains:
            suggestion = suggest(grain, grains)
            hint = (
                HINT_DID_YOU_MEAN.format(suggestion=repr(suggestion))
                if suggestion
                else HINT_CHOICES.format(choices=", ".join(grains))
            )
            raise self.fail(MSG_UNKNOWN_GRAIN.format(grain=grain, text=text), hint, span)
        return QueryItemRef(
            kind=kind,
            name=name,
            entity_path=entity_path,
            grain=grain,
            date_part=date_part,
            group_by=group_by,
            text=raw_text,
            placeholder=placeholder,
        )

    def parameter_set(
        self, description: ObjectBuilderItemDescription
    ) -> (
        DimensionCallParameterSet
        | TimeDimensionCallParameterSet
        | EntityCallParameterSet
        | MetricCallParameterSet
    ):
        """DSI's dispatch (JinjaObjectParser.parse_call_parameter_sets) for one item.

        JinjaObjectParser itself reads a whole template into four de-duplicated buckets,
        losing order and positions, so the per-item dispatch is repeated here.
        """
        item_type, grains = description.item_type, self.custom_grains
        if item_type is QueryItemType.ENTITY:
            return ParameterSetFactory.create_entity(
                entity_name=description.item_name, entity_path=description.entity_path
            )
        if item_type is QueryItemType.METRIC:
            return ParameterSetFactory.create_metric(
                metric_name=description.item_name,
                group_by=description.group_by_for_metric_item,
                query_item_location=QueryItemLocation.NON_ORDER_BY,
            )
        name, path = hoist_entity_links(description.item_name, description.entity_path, grains)
        # DSI's create_dimension recognises a grain suffix (metric_time__month) and then drops
        # it; routing such names to create_time_dimension keeps the grain the user asked for.
        suffix = StructuredDunderedName.parse_name(name=name, custom_granularity_names=grains)
        if (
            item_type is QueryItemType.TIME_DIMENSION
            or description.time_granularity_name
            or description.date_part_name
            or suffix.time_granularity
        ):
            return ParameterSetFactory.create_time_dimension(
                time_dimension_name=name,
                custom_granularity_names=grains,
                time_granularity_name=description.time_granularity_name,
                entity_path=path,
                date_part_name=description.date_part_name,
            )
        return ParameterSetFactory.create_dimension(dimension_name=name, entity_path=path)


def hoist_entity_links(
    name: str, entity_path: Sequence[str], custom_grains: Sequence[str]
) -> tuple[str, tuple[str, ...]]:
    """``user__account__plan`` → (``account__plan``, path + ``user``), which DSI accepts.

    DSI's factory refuses names with more than one entity link ("incorrect format") and only
    takes multi-hop paths through ``entity_path``; both spellings mean the same join path,
    so the leading links move into ``entity_path`` (which DSI puts first).
    """
    parsed = StructuredDunderedName.parse_name(name=name, custom_granularity_names=custom_grains)
    if len(parsed.entity_links) <= 1:
        return name, tuple(entity_path)
    last = StructuredDunderedName(
        entity_links=parsed.entity_links[-1:],
        element_name=parsed.element_name,
        time_granularity=parsed.time_granularity,
    )
    leading = tuple(link.element_name for link in parsed.entity_links[:-1])
    return last.dundered_name, (*entity_path, *leading)
