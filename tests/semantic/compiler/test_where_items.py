"""semantic.compiler.where.items and .reader: Jinja query items, read one block at a time."""

from __future__ import annotations

import pytest

from semantic.compiler.where.items import JinjaItems
from semantic.compiler.where.messages import MSG_UNKNOWN_JINJA_FUNCTION
from semantic.compiler.where.reader import Reader
from semantic.compiler.where.refs import Block, QueryItemRef
from tally.errors import QueryError


def read(text: str, index: int = 0) -> QueryItemRef:
    return JinjaItems(text, "where[0]", ()).read_item(Block(0, len(text), text), index)[1]


def test_dimension_with_a_grain_is_a_time_dimension_along_its_path() -> None:
    """DSI's own parameter sets decide the kind; the dundered path becomes entity_path."""
    ref = read("{{ Dimension('user__account__created_at').grain('month') }}")
    assert (ref.kind, ref.name, ref.entity_path, ref.grain) == (
        "time_dimension",
        "created_at",
        ("user", "account"),
        "month",
    )


def test_each_item_gets_the_placeholder_of_its_index() -> None:
    """Placeholders are numbered by first appearance, so SQL is deterministic."""
    assert read("{{ Entity('account') }}", 3).placeholder == "__tally_ref_3"


def test_metric_item_keeps_its_group_by() -> None:
    """Metric('revenue', group_by=['account']) is a metric ref grouped by account."""
    ref = read("{{ Metric('revenue', group_by=['account']) }}")
    assert (ref.kind, ref.name, ref.group_by) == ("metric", "revenue", ("account",))


def test_an_unknown_builder_call_is_refused() -> None:
    """Only the four builder calls are items."""
    with pytest.raises(QueryError) as info:
        read("{{ Measure('x') }}")
    assert info.value.message == MSG_UNKNOWN_JINJA_FUNCTION.format(
        name="Measure", text="{{ Measure('x') }}"
    )


def test_reader_splits_the_template_into_item_blocks() -> None:
    """Block offsets are template offsets (end-exclusive), used for error spans."""
    template = "{{ Entity('account') }} = 1 AND {{ Dimension('account__plan') }} = 'x'"
    blocks = Reader(template, "where[0]", ()).split()
    assert [template[b.start : b.end] for b in blocks] == [
        "{{ Entity('account') }}",
        "{{ Dimension('account__plan') }}",
    ]
