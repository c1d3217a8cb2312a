"""The itest runner's "MetricFlow differs" verdict (scripts/metricflow/itests.py judge): given
only when Tally's rows differ from MetricFlow's check query AND equal our own check query of
the listed case, so an entry in KNOWN_DIFFERENCES cannot hide a regression (issue 16); and
its "Tally refuses" verdict: only for a listed fan-out case refused with the listed code
while our check finds the repeated key."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts" / "metricflow"))

import itests
from itest_differences import KNOWN_DIFFERENCES, KNOWN_REFUSALS
from itest_support import ItestCase, TallyRequest

FILE, NAME = "itest_metrics.yaml", "cumulative_time_offset_metric_with_time_constraint"
CASE = ItestCase(FILE, NAME, "SIMPLE_MODEL", "SELECT 1", raw={})
REQUEST = TallyRequest(("txn_count",), ("account_id__extra_dim",), (), None, None, (), None)
METRICFLOW = {"columns": ["account_id__extra_dim", "txn_count"], "rows": [("lux", 64)]}
OURS = {"columns": ["account_id__extra_dim", "txn_count"], "rows": [("lux", 32)]}
BRIDGE = ItestCase(
    "itest_multi_hop_join.yaml", "mixed_length_joins", "UNPARTITIONED_MULTI_HOP_JOIN_MODEL", "",
    raw={},
)  # fmt: skip
REPEATED = {"columns": ["account_id", "rows_per_key"], "rows": [("a0", 2)]}


def _judge(case: ItestCase, rows: list[tuple[object, ...]]) -> tuple[str, str]:
    expected = {**METRICFLOW, "own": OURS}
    actual = {"columns": ["account_id__extra_dim", "txn_count"], "rows": rows}
    return itests.judge(case, REQUEST, expected, actual, None)


def test_the_listed_case_differs_when_tally_gives_our_own_answer() -> None:
    status, reason = _judge(CASE, [("lux", 32)])
    assert status == itests.DIFFERS
    assert reason.startswith("MetricFlow wrong: ") and "2019-12-20" in reason


def test_the_listed_case_fails_when_tally_gives_neither_answer() -> None:
    status, reason = _judge(CASE, [("lux", 31)])
    assert status == "failed" and "nor the rows of our own check" in reason


def test_the_listed_case_passes_when_tally_gives_metricflow_answer() -> None:
    assert _judge(CASE, [("lux", 64)]) == ("passed", "")


def test_a_case_not_listed_fails_on_a_difference() -> None:
    other = ItestCase(FILE, "another_case", "SIMPLE_MODEL", "", raw={})
    assert _judge(other, [("lux", 32)])[0] == "failed"


def test_every_entry_names_a_test_of_our_own() -> None:
    """Each difference points at the test that pins Tally's side of it, which exists."""
    for known in KNOWN_DIFFERENCES.values():
        path = known.reason.rsplit("(", 1)[1].rstrip(")")
        assert (ROOT / path).is_file(), path


def _refusal(actual: dict[str, object], own: dict[str, object] = REPEATED) -> tuple[str, str]:
    return itests.judge(BRIDGE, REQUEST, {**METRICFLOW, "own": own}, actual, None)


def test_a_listed_fan_out_case_refused_as_listed_is_tally_refuses() -> None:
    status, reason = _refusal({"code": "fan_out", "error": "… bridge_table …"})
    assert status == itests.REFUSES and "repeats 'a0'" in reason


def test_a_listed_fan_out_case_fails_when_answered_or_refused_otherwise() -> None:
    """An answer can only be the multiplied one; another refusal, or a refusal while the data
    holds the key, is not the listed cause."""
    assert _refusal({"columns": METRICFLOW["columns"], "rows": [("lux", 64)]})[0] == "failed"
    assert _refusal({"code": "unknown_dimension", "error": "x"})[0] == "failed"
    empty = {"columns": REPEATED["columns"], "rows": []}
    assert _refusal({"code": "fan_out", "error": "x"}, empty)[0] == "failed"


def test_every_refusal_names_a_test_of_our_own() -> None:
    for known in KNOWN_REFUSALS.values():
        path = known.reason.rsplit("(", 1)[1].rstrip(")")
        assert (ROOT / path).is_file(), path
