"""Small template helpers of the web UI."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.http import urlencode

register = template.Library()

FACET_PARAMS = ("q", "owner", "domain", "tier", "status")


@register.filter
def attr(obj: Any, name: str) -> Any:
    return getattr(obj, name, "")


@register.filter
def get(mapping: Any, key: Any) -> Any:
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.simple_tag
def facet_query(filters: Any, name: str, value: Any) -> str:
    """The catalog query string with one parameter set (or cleared), paging reset."""
    params = {p: getattr(filters, p, "") for p in FACET_PARAMS}
    params[name] = value
    return urlencode({k: v for k, v in params.items() if v not in ("", None)})


@register.filter
def show(value: Any) -> str:
    """A diff side or a JSON leaf as compact text (None → ∅)."""
    if value is None:
        return "∅"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@register.filter
def pct(value: Any) -> str:
    if value is None:
        return "–"
    try:
        return f"{float(value):+.2f}%"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def number(value: Any) -> str:
    """A metric value for people: thousands separators, at most 4 decimals."""
    if value is None or value == "":
        return "–"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.4f}".rstrip("0").rstrip(".")


@register.filter
def seconds(value: Any) -> str:
    try:
        return f"{float(value):.2f} s"
    except (TypeError, ValueError):
        return "–"


@register.filter
def elapsed(run: Any) -> str:
    """Wall time of a run (started → finished, or → now while it runs)."""
    from django.utils import timezone

    started = getattr(run, "started_at", None)
    if started is None:
        return "–"
    end = getattr(run, "finished_at", None) or timezone.now()
    return f"{(end - started).total_seconds():.1f} s"


@register.filter
def cell_is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@register.filter
def cell(value: Any) -> str:
    """A result cell: ∅ for NULL, numbers with separators, everything else as text."""
    if value is None:
        return "∅"
    if cell_is_number(value):
        return number(value)
    return str(value)


@register.filter
def passing(results: Any) -> list[Any]:
    """The audit results that passed (the page lists failures and folds these)."""
    return [r for r in results if getattr(r, "status", "") == "pass"]


@register.filter
def check_names(results: Any) -> list[str]:
    """The distinct check names of audit results, in first-seen order."""
    return list(dict.fromkeys(getattr(r, "check_name", "") for r in results))
