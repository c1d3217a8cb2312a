"""merge3: the field-by-field three-way merge behind rebase."""

from __future__ import annotations

from registry.definitions.merge import merge3

BASE = {
    "name": "events",
    "measures": [{"name": "revenue", "agg": "sum"}, {"name": "n", "agg": "count"}],
    "label": "Events",
}


def test_edits_to_different_named_items_merge_cleanly() -> None:
    theirs = {**BASE, "measures": [{"name": "revenue", "agg": "max"}, BASE["measures"][1]]}
    ours = {**BASE, "measures": [BASE["measures"][0], {"name": "n", "agg": "count_distinct"}]}
    merged, conflicts = merge3(BASE, theirs, ours)
    assert conflicts == []
    assert merged["measures"] == [
        {"name": "revenue", "agg": "max"},
        {"name": "n", "agg": "count_distinct"},
    ]


def test_the_same_field_changed_two_ways_is_a_conflict_with_its_path() -> None:
    theirs = {**BASE, "measures": [{"name": "revenue", "agg": "max"}, BASE["measures"][1]]}
    ours = {**BASE, "measures": [{"name": "revenue", "agg": "min"}, BASE["measures"][1]]}
    _, conflicts = merge3(BASE, theirs, ours)
    assert [c.as_dict() for c in conflicts] == [
        {"path": "measures[revenue].agg", "base": "sum", "theirs": "max", "ours": "min"}
    ]


def test_an_item_removed_on_one_side_and_untouched_on_the_other_stays_removed() -> None:
    theirs = {**BASE, "measures": [BASE["measures"][0]]}
    ours = {**BASE, "label": "All events"}
    merged, conflicts = merge3(BASE, theirs, ours)
    assert conflicts == []
    assert merged == {"name": "events", "measures": [BASE["measures"][0]], "label": "All events"}


def test_a_key_added_on_both_sides_with_different_values_conflicts() -> None:
    _, conflicts = merge3(BASE, {**BASE, "description": "a"}, {**BASE, "description": "b"})
    assert [c.as_dict() for c in conflicts] == [
        {"path": "description", "base": None, "theirs": "a", "ours": "b"}
    ]
