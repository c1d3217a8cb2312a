"""Vega-Lite specs of the UI's charts, built in Python so pages embed them as JSON and tests
can read them (static/tally/tally.js renders them with vega-embed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ACCENT = "#2f5bd3"
WARN = "#d97706"
BAD = "#c2410c"
BAND = "#c7d2fe"
WIDTH = "container"


def _base(height: int) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "width": WIDTH,
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": {
            "view": {"stroke": None},
            "axis": {"labelColor": "#5b6577", "titleColor": "#5b6577", "gridColor": "#eef1f6"},
            "legend": {"labelColor": "#1d2330", "orient": "bottom"},
            "font": "system-ui, -apple-system, Segoe UI, sans-serif",
        },
    }


def series_chart(points: Sequence[dict[str, Any]], *, metric: str, grain: str) -> dict[str, Any]:
    """The stored series: expected range shaded, the line, revised points (amber rings),
    anomalies (red), a point per value that opens its trace on click; x pans and zooms."""
    time_unit = {"day": "yearmonthdate", "week": "yearmonthdate", "month": "yearmonth",
                 "quarter": "yearquarter", "year": "year"}.get(grain, "yearmonthdate")  # fmt: skip
    x = {"field": "period", "type": "temporal", "title": None,
         "timeUnit": time_unit}  # fmt: skip
    y = {"field": "value", "type": "quantitative", "title": metric, "scale": {"zero": False}}
    tooltip = [
        {"field": "period", "type": "temporal", "title": grain, "timeUnit": time_unit},
        {"field": "value", "type": "quantitative", "title": metric, "format": ",.4~f"},
        {"field": "low", "type": "quantitative", "title": "expected from", "format": ",.4~f"},
        {"field": "high", "type": "quantitative", "title": "expected to", "format": ",.4~f"},
        {"field": "revised", "type": "quantitative", "title": "revisions"},
    ]
    # After a numbers-changing release: the previous definition's values, dashed, to compare.
    previous_layer = (
        [
            {
                "mark": {"type": "line", "color": "#94a3b8", "strokeDash": [4, 3],
                         "strokeWidth": 1.4},
                "encoding": {"y": {"field": "previous", "type": "quantitative"}},
            }
        ]
        if any("previous" in p for p in points)
        else []
    )  # fmt: skip
    if previous_layer:
        tooltip.append(
            {"field": "previous", "type": "quantitative", "title": "previous definition",
             "format": ",.4~f"}
        )  # fmt: skip
    spec = _base(300)
    spec.update(
        {
            "data": {"values": list(points)},
            "encoding": {"x": x},
            "layer": [
                *previous_layer,
                {
                    "mark": {"type": "area", "color": BAND, "opacity": 0.55},
                    "encoding": {
                        "y": {"field": "low", "type": "quantitative"},
                        "y2": {"field": "high"},
                    },
                },
                {
                    "mark": {"type": "line", "color": ACCENT, "strokeWidth": 1.6},
                    "encoding": {"y": y},
                },
                {
                    # Every value is a (faint) point: the click target that opens its trace.
                    "params": [
                        {
                            "name": "zoom",
                            "select": {"type": "interval", "encodings": ["x"]},
                            "bind": "scales",
                        },
                        {
                            "name": "hover",
                            "select": {
                                "type": "point",
                                "on": "pointerover",
                                "nearest": True,
                                "clear": "pointerout",
                            },
                        },
                    ],
                    "mark": {"type": "point", "filled": True, "cursor": "pointer", "size": 40},
                    "encoding": {
                        "y": y,
                        "color": {"value": ACCENT},
                        "opacity": {
                            "condition": {"param": "hover", "empty": False, "value": 1},
                            "value": 0.12,
                        },
                        "tooltip": tooltip,
                    },
                },
                {
                    "transform": [{"filter": "datum.revised > 0"}],
                    "mark": {"type": "point", "color": WARN, "size": 90, "strokeWidth": 2},
                    "encoding": {"y": y, "tooltip": tooltip},
                },
                {
                    "transform": [{"filter": "datum.anomaly"}],
                    "mark": {
                        "type": "point",
                        "filled": True,
                        "color": BAD,
                        "size": 110,
                        "shape": "diamond",
                    },
                    "encoding": {"y": y, "tooltip": tooltip},
                },
            ],
        }
    )
    return spec


def sliced_chart(rows: Sequence[dict[str, Any]], *, metric: str, dimension: str) -> dict[str, Any]:
    """One line per value of a dimension (live query); x pans and zooms."""
    spec = _base(300)
    spec.update(
        {
            "data": {"values": list(rows)},
            "params": [
                {
                    "name": "zoom",
                    "select": {"type": "interval", "encodings": ["x"]},
                    "bind": "scales",
                }
            ],
            "mark": {"type": "line", "point": {"size": 18}, "strokeWidth": 1.5},
            "encoding": {
                "x": {"field": "period", "type": "temporal", "title": None},
                "y": {"field": "value", "type": "quantitative", "title": metric},
                "color": {"field": "slice", "type": "nominal", "title": dimension},
                "tooltip": [
                    {"field": "period", "type": "temporal"},
                    {"field": "slice", "type": "nominal", "title": dimension},
                    {"field": "value", "type": "quantitative", "format": ",.4~f"},
                ],
            },
        }
    )
    return spec


def explore_chart(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, metrics: Sequence[str]
) -> dict[str, Any] | None:
    """A line chart when a time group-by is there (else bars by the first group-by); one
    series per value of the other group-bys (their values joined); one panel per metric,
    each on its own axis, because metrics of different units share no scale. None when
    there is nothing to plot."""
    names = list(columns)
    metric_cols = [m for m in metrics if m in names]
    keys = [c for c in names if c not in metric_cols]
    if not metric_cols or not rows:
        return None
    # A date part (metric_time__extract_dow) is a category, not a point in time: bars.
    time_key = next(
        (k for k in keys if k.startswith("metric_time") and "__extract_" not in k), None
    )
    x_key = time_key or (keys[0] if keys else None)
    series_keys = [k for k in keys if k != x_key]
    series_title = ", ".join(series_keys)
    data = []
    for row in rows:
        rec = dict(zip(names, row, strict=False))
        for m in metric_cols:
            value = rec.get(m)
            if not isinstance(value, int | float):
                continue
            item = {"metric": m, "value": value, "x": str(rec.get(x_key)) if x_key else "all"}
            if series_keys:
                item["series"] = " · ".join(str(rec.get(k)) for k in series_keys)
            data.append(item)
    if not data:
        return None
    color = (
        {"field": "series", "type": "nominal", "title": series_title}
        if series_keys
        else {"value": ACCENT}
    )
    tooltip = [{"field": "x", "title": x_key or ""}, {"field": "metric"},
               {"field": "value", "type": "quantitative", "format": ",.4~f"}]  # fmt: skip
    if series_keys:
        tooltip.append({"field": "series", "title": series_title})
    if time_key:
        mark: dict[str, Any] = {"type": "line", "point": {"size": 20}, "strokeWidth": 1.6}
        encoding: dict[str, Any] = {
            "x": {"field": "x", "type": "temporal", "title": None},
            "y": {"field": "value", "type": "quantitative", "title": None},
            "color": color,
            "tooltip": tooltip,
        }
        if series_keys:
            # One line per series: without `detail` Vega-Lite would join all series' points.
            encoding["detail"] = {"field": "series", "type": "nominal"}
        zoom = [{"name": "zoom", "select": {"type": "interval", "encodings": ["x"]},
                 "bind": "scales"}]  # fmt: skip
        values = data
    else:
        mark = {"type": "bar", "cornerRadiusEnd": 2}
        encoding = {
            "y": {"field": "x", "type": "nominal", "title": x_key, "sort": "-x"},
            "x": {"field": "value", "type": "quantitative", "title": None},
            "color": color,
            "tooltip": tooltip,
        }
        if series_keys:
            encoding["yOffset"] = {"field": "series"}
        zoom = []
        values = data[:2000]
    if len(metric_cols) == 1:
        spec = _base(320)
        spec.update({"data": {"values": values}, "mark": mark, "encoding": encoding})
        if zoom:
            spec["params"] = zoom
        if not time_key:
            spec["height"] = {"step": 18}
        return spec
    # Several metrics: one panel each with its own scale (2,000 accounts must not vanish
    # next to 71 M of revenue). Compositions cannot fit a container's width: a fixed one.
    base = _base(0)
    panel: dict[str, Any] = {"width": 720, "mark": mark, "encoding": encoding}
    panel["height"] = 150 if time_key else {"step": 18}
    scales = {"y": "independent"} if time_key else {"x": "independent", "y": "independent"}
    return {
        "$schema": base["$schema"],
        "config": base["config"],
        "data": {"values": values},
        "facet": {"row": {"field": "metric", "type": "nominal", "title": None}},
        "resolve": {"scale": scales},
        "spec": panel,
    }


def numbers_diff_chart(rows: Sequence[dict[str, Any]], *, metric: str) -> dict[str, Any]:
    """Old vs new definition by month (the numbers check): two lines."""
    data = []
    for row in rows:
        for which in ("old", "new"):
            if row.get(which) is not None:
                data.append({"period": row["key"], "which": which, "value": row[which],
                             "change_pct": row.get("change_pct")})  # fmt: skip
    spec = _base(220)
    spec.update(
        {
            "data": {"values": data},
            "mark": {"type": "line", "point": {"size": 40}, "strokeWidth": 2},
            "encoding": {
                "x": {
                    "field": "period",
                    "type": "temporal",
                    "timeUnit": "yearmonth",
                    "title": None,
                },
                "y": {"field": "value", "type": "quantitative", "title": metric},
                "color": {
                    "field": "which",
                    "type": "nominal",
                    "title": "definition",
                    "scale": {"domain": ["old", "new"], "range": ["#94a3b8", ACCENT]},
                },
                "strokeDash": {
                    "field": "which",
                    "type": "nominal",
                    "legend": None,
                    "scale": {"domain": ["old", "new"], "range": [[4, 3], [1, 0]]},
                },
                "tooltip": [
                    {"field": "period", "type": "temporal", "timeUnit": "yearmonth"},
                    {"field": "which"},
                    {"field": "value", "format": ",.4~f"},
                    {"field": "change_pct", "title": "change %", "format": "+.2f"},
                ],
            },
        }
    )
    return spec
