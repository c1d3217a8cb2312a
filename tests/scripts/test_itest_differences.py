"""The itest runner's "MetricFlow differs" verdict (scripts/metricflow/itests.py judge): given
only when Tally's rows differ from MetricFlow's check query AND equal our own check query of
the listed case, so an entry in KNOWN_DIFFERENCES cannot hide a regression (issue 16)."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts" / "metricflow"))

import itests
from itest_differences import KNOWN_DIFFERENCES
from itest_support import ItestCase, TallyRequest

FILE, NAME = "itest_multi_hop_join.yaml", "mixed_length_joins"
CASE = ItestCase(FILE, NAME, "UNPARTITIONED_MULTI_HOP_JOIN_MODEL", "SELECT 1", raw={})
REQUEST = TallyRequest(("txn_count",), ("account_id__extra_dim",), (), None, None, (), None)
METRICFLOW = {"columns": ["account_id__extra_dim", "txn_count"], "rows": [("lux", 64)]}
OURS = {"columns": ["account_id__extra_dim", "txn_count"], "rows": [("lux", 32)]}


def _judge(case: ItestCase, rows: list[tuple[object, ...]]) -> tuple[str, str]:
    expected = {**METRICFLOW, "own": OURS}
    actual = {"columns": ["account_id__extra_dim", "txn_count"], "rows": rows}
    return itests.judge(case, REQUEST, expected, actual, None)


def test_the_listed_case_differs_when_tally_gives_our_own_answer() -> None:
    status, reason = _judge(CASE, [("lux", 32)])
    assert status == itests.DIFFERS
    assert reason.startswith("MetricFlow wrong: ") and "bridge_table" in reason


def test_the_listed_case_fails_when_tally_gives_neither_answer() -> None:
    status, reason = _judge(CASE, [("lux", 31)])
    assert status == "failed" and "nor the rows of our own check" in reason


def test_the_listed_case_passes_when_tally_gives_metricflow_answer() -> None:
    assert _judge(CASE, [("lux", 64)]) == ("passed", "")


def test_a_case_not_listed_fails_on_a_difference() -> None:
    other = ItestCase(FILE, "multihop_join", "UNPARTITIONED_MULTI_HOP_JOIN_MODEL", "", raw={})
    assert _judge(other, [("lux", 32)])[0] == "failed"


def test_every_entry_names_a_test_of_our_own() -> None:
    """Each difference points at the test that pins Tally's side of it, which exists."""
    for known in KNOWN_DIFFERENCES.values():
        path = known.reason.rsplit("(", 1)[1].rstrip(")")
        assert (ROOT / path).is_file(), path
