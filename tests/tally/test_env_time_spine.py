"""TALLY_TIME_SPINE_START/END: ISO dates, each optional, refused with the variable named."""

from __future__ import annotations

import datetime as dt

import pytest

from tally.env import ConfigError, load_config


def test_time_spine_range_is_unset_by_default() -> None:
    """Unset means: cover the data (decided when the spine is built)."""
    config = load_config({"TALLY_DEMO": "1"})
    assert (config.time_spine_start, config.time_spine_end) == (None, None)


def test_time_spine_range_is_read_as_iso_dates() -> None:
    """Each bound may be set alone; blank is the same as unset."""
    config = load_config(
        {"TALLY_DEMO": "1", "TALLY_TIME_SPINE_START": " 2020-01-01 ", "TALLY_TIME_SPINE_END": ""}
    )
    assert (config.time_spine_start, config.time_spine_end) == (dt.date(2020, 1, 1), None)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TALLY_TIME_SPINE_START", "2024-02-30"),
        ("TALLY_TIME_SPINE_END", "next year"),
        ("TALLY_TIME_SPINE_START", "2024-01-01T00:00:00"),
    ],
)
def test_a_bad_time_spine_date_names_its_variable(variable: str, value: str) -> None:
    """One line, the variable first, with the expected format as hint."""
    with pytest.raises(ConfigError) as caught:
        load_config({"TALLY_DEMO": "1", variable: value})
    assert str(caught.value) == f"{variable}: {value!r} is not a date (hint: use YYYY-MM-DD)"


def test_a_time_spine_start_after_its_end_is_refused() -> None:
    """A reversed range stops start-up instead of building an empty spine."""
    with pytest.raises(ConfigError) as caught:
        load_config(
            {
                "TALLY_DEMO": "1",
                "TALLY_TIME_SPINE_START": "2026-01-01",
                "TALLY_TIME_SPINE_END": "2025-12-31",
            }
        )
    assert str(caught.value) == (
        "TALLY_TIME_SPINE_END: 2025-12-31 is before TALLY_TIME_SPINE_START 2026-01-01 "
        "(hint: the end must be on or after the start)"
    )
