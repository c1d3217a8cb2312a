"""May a principal read stored values? Compute runs are trusted: a stored value is a total over
every row, every tenant's included. A restricted principal (row policies apply to it) may read
the stored values of a metric only when no row policy can narrow that metric's reads
(``semantic.compiler.policies.metric_has_row_policies``); otherwise it queries the metric,
and the compiler applies its row policies. Unrestricted principals (and trusted callers,
``None``) read every stored value.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from registry.models import Release
from semantic.compiler.policy_reach import metric_has_row_policies
from semantic.compiler.principal import Principal
from semantic.models import MetricValue
from semantic.services import manifest_for_release, release_resolve
from tally.errors import NotFound, PermissionDenied

MSG_STORED_VALUES = (
    "{principal} may not read the stored values of {metric}: stored values are totals over "
    "every tenant, and row policies apply to {principal}'s reads of {metric}"
)
HINT_STORED_VALUES = (
    "stored values are totals over every tenant; query the metric instead, row policies apply "
    "(Explore, or POST /api/v1/query)"
)

MSG_NUMBERS_HIDDEN = (
    "numbers diff: {shown} metric(s) shown, {hidden} hidden (their stored values are totals "
    "over every tenant)"
)


def _restricted(principal: Principal | None) -> bool:
    return principal is not None and not principal.unrestricted


def stored_values_allowed(
    *, principal: Principal | None, metric: str, release: Release | None = None
) -> bool:
    """True when ``principal`` may read the stored values of ``metric`` (as of ``release``,
    default the latest)."""
    if not _restricted(principal):
        return True
    try:
        release = release or release_resolve(None)
    except NotFound:
        return True  # no release yet: no definitions, no policies and no values
    return not metric_has_row_policies(manifest_for_release(release), metric)


def stored_values_require(
    *, principal: Principal | None, metrics: Iterable[str], release: Release | None = None
) -> None:
    """Raises a 403 naming the first metric whose stored values ``principal`` may not read."""
    for metric in metrics:
        if not stored_values_allowed(principal=principal, metric=metric, release=release):
            assert principal is not None  # only a restricted principal is refused
            raise PermissionDenied(
                MSG_STORED_VALUES.format(principal=principal.name, metric=metric),
                code="stored_values_restricted",
                hint=HINT_STORED_VALUES,
                details={"metric": metric},
            )


def stored_values_hidden(*, principal: Principal | None) -> list[str]:
    """The metrics (among those with stored values) whose values ``principal`` may not read;
    empty for unrestricted principals, at the cost of no query."""
    if not _restricted(principal):
        return []
    # order_by(): the model's default ordering would otherwise join the DISTINCT.
    names = MetricValue.objects.order_by().values_list("metric_name", flat=True).distinct()
    return sorted(
        name for name in set(names) if not stored_values_allowed(principal=principal, metric=name)
    )


def checks_visible(checks: Iterable[Any], *, principal: Principal | None) -> list[Any]:
    """A proposal's checks as ``principal`` may read them. The numbers diff shows stored
    totals over every tenant, so a restricted principal gets it without the metrics whose
    stored values it may not read (``details.hidden`` counts them and says why). The checks
    are copied, never changed."""
    checks = list(checks)
    if not _restricted(principal):
        return checks
    out = []
    for check in checks:
        metrics = (check.details or {}).get("metrics") if check.kind == "numbers" else None
        if metrics:
            shown = [
                m
                for m in metrics
                if stored_values_allowed(principal=principal, metric=str(m.get("metric")))
            ]
            if len(shown) < len(metrics):
                hidden = len(metrics) - len(shown)
                check = copy.copy(check)
                # The summary quotes the changes: replaced, not trimmed.
                check.summary = MSG_NUMBERS_HIDDEN.format(shown=len(shown), hidden=hidden)
                check.details = {
                    **check.details,
                    "metrics": shown,
                    "hidden": {"count": hidden, "reason": HINT_STORED_VALUES},
                }
        out.append(check)
    return out
