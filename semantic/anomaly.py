"""The expected range of a metric value, as the anomaly audit and the metric chart both draw it.

A seasonal band: the median of the same season (same weekday for days) over the previous
ANOMALY_WEEKS periods, ± K × 1.4826 × MAD, which is robust to the outliers it looks for.

Example:
    >>> anomaly_band([10.0, 12.0, 11.0, 9.0])
    AnomalyBand(low=4.5696, high=16.4304, median=10.5)
    >>> anomaly_band([10.0, 12.0]) is None
    True
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

ANOMALY_K = 4.0
ANOMALY_WEEKS = 8
ANOMALY_MIN_HISTORY = 4


@dataclass(frozen=True)
class AnomalyBand:
    low: float
    high: float
    median: float


def anomaly_band(history: Sequence[float]) -> AnomalyBand | None:
    """The expected range given the same season's earlier values; None below
    ANOMALY_MIN_HISTORY values (too little history to say)."""
    if len(history) < ANOMALY_MIN_HISTORY:
        return None
    median = statistics.median(history)
    mad = statistics.median(abs(x - median) for x in history)
    # A flat history has MAD 0: allow 10% (or 1) around it instead of nothing.
    scale = max(1.4826 * mad, abs(median) * 0.1 / ANOMALY_K, 1.0 / ANOMALY_K)
    return AnomalyBand(median - ANOMALY_K * scale, median + ANOMALY_K * scale, median)
