"""`tally compute` and `tally runs` in-process (no broker: the run happens in the command)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from semantic.models import MetricValue


def test_compute_backfill_prints_progress_and_a_summary(synced: Path) -> None:
    """A backfill over several chunks prints one bar per chunk and the run's totals."""
    out, err = StringIO(), StringIO()
    call_command(
        "compute", "revenue", "events_tracked", "--start", "2026-07-01", "--end", "2026-09-30",
        "--chunk-periods", "31", stdout=out, stderr=err,
    )  # fmt: skip
    bars = [line for line in err.getvalue().splitlines() if line.startswith("[")]
    assert len(bars) == 3 and bars[-1].startswith("[" + "#" * 30 + "] 3/3 chunks")
    stored = MetricValue.objects.count()
    assert stored > 180  # 92 days x 2 metrics, less days without invoices
    assert f"succeeded: {stored} values written, 0 revised" in out.getvalue()
    listing = StringIO()
    call_command("runs", "--format", "json", stdout=listing)
    (run,) = json.loads(listing.getvalue())
    assert run["status"] == "succeeded" and run["queries"] == 6


def test_compute_failure_exits_non_zero_with_the_error(synced: Path) -> None:
    """A run that fails prints error[code] and exits 1."""
    err = StringIO()
    with pytest.raises(SystemExit) as info:
        call_command("compute", "revenue", "--slice", "nope__x", "--start", "2026-09-01",
                     "--end", "2026-09-02", stdout=StringIO(), stderr=err)  # fmt: skip
    assert info.value.code == 1 and "error[" in err.getvalue()
