"""May a principal read stored values, and a proposal check's numbers? Compute runs are
trusted: a stored value is a total over every row, every tenant's included. A restricted
principal (row policies apply to it) may read the stored values of a metric only when no row
policy can narrow that metric's reads (``semantic.compiler.policy_reach.metric_has_row_policies``);
otherwise it queries the metric, and the compiler applies its row policies. Unrestricted
principals (and trusted callers, ``None``) read every stored value.

A proposal's numbers check runs as its author (``check_principal``) and records the
principal's visibility key (``computed_as``). A reader sees a metric's numbers when it could
run the same query: it is unrestricted, or its visibility key equals the check's, or no row
policy narrows the metric (the numbers are then the same for every principal). The timeline's
check events follow the same rule.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from django.conf import settings

from registry.models import Release
from registry.permissions import principal_for
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
    "numbers diff: {shown} metric(s) shown, {hidden} hidden (computed under another "
    "principal's row policies)"
)
HIDDEN_CHECK_REASON = (
    "hidden: computed under another principal's row policies (the numbers cover rows your "
    "row policies do not let you read)"
)
MSG_CHECK_EVENT_HIDDEN = (
    "numbers check {status}: summary hidden ({hidden} metric(s) computed under another "
    "principal's row policies)"
)
UNRESTRICTED_KEY = "unrestricted"


def principal_restricted(principal: Principal | None) -> bool:
    """True when row policies apply to ``principal`` (None: a trusted caller)."""
    return principal is not None and not principal.unrestricted


def stored_values_allowed(
    *, principal: Principal | None, metric: str, release: Release | None = None
) -> bool:
    """True when ``principal`` may read the stored values of ``metric`` (as of ``release``,
    default the latest)."""
    if not principal_restricted(principal):
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
    if not principal_restricted(principal):
        return []
    # order_by(): the model's default ordering would otherwise join the DISTINCT.
    names = MetricValue.objects.order_by().values_list("metric_name", flat=True).distinct()
    return sorted(
        name for name in set(names) if not stored_values_allowed(principal=principal, metric=name)
    )


def check_principal(author: Any) -> Principal:
    """The principal a proposal's warehouse checks run as: the author's row policies, and PII
    always masked (the numbers are shown to every reviewer and auditor, whatever the author
    may view)."""
    return replace(principal_for(author), view_pii=False)


def visibility_key(principal: Principal | None) -> str:
    """Equal for two principals whose row policies give the same rows: "unrestricted" for
    unrestricted (and trusted) ones, else a keyed digest of the attributes policies read (a
    digest, so a stored check does not spell out a tenant binding)."""
    if not principal_restricted(principal):
        return UNRESTRICTED_KEY
    assert principal is not None
    text = json.dumps(
        replace(principal, view_pii=False).cache_key(), sort_keys=True, default=str
    ).encode()
    return hmac.new(str(settings.SECRET_KEY).encode(), text, hashlib.sha256).hexdigest()[:32]


def computed_as(principal: Principal | None) -> dict[str, Any]:
    """What a check stores about the principal it ran as (its visibility key, no attribute)."""
    return {"key": visibility_key(principal), "restricted": principal_restricted(principal)}


def numbers_visible(
    *,
    reader: Principal | None,
    computed: Mapping[str, Any] | None,
    metric: str,
    policied: bool | None,
) -> bool:
    """May ``reader`` see a metric's numbers computed as ``computed`` (``computed_as``; None
    for checks recorded before it existed: computed with full trust)? ``policied``: whether a
    row policy could narrow the metric's reads in the check's own (old or proposed)
    definitions, as the check recorded it (None: not recorded, counts as policied)."""
    if not principal_restricted(reader):
        return True
    if computed and computed.get("key") == visibility_key(reader):
        return True
    # No row policy narrows the metric, in the check's definitions nor in the current
    # release: every principal's query gives the same numbers.
    return policied is False and stored_values_allowed(principal=reader, metric=metric)


def checks_visible(checks: Iterable[Any], *, principal: Principal | None) -> list[Any]:
    """A proposal's checks as ``principal`` may read them: the numbers check without the
    metrics whose numbers it could not compute itself (``numbers_visible``; ``details.hidden``
    counts them and says why). The checks are copied, never changed."""
    checks = list(checks)
    if not principal_restricted(principal):
        return checks
    out = []
    for check in checks:
        details = check.details or {}
        metrics = details.get("metrics") if check.kind == "numbers" else None
        if metrics:
            computed = details.get("computed_as")
            shown = [
                m
                for m in metrics
                if numbers_visible(
                    reader=principal,
                    computed=computed,
                    metric=str(m.get("metric")),
                    policied=m.get("row_policied"),
                )
            ]
            if len(shown) < len(metrics):
                hidden = len(metrics) - len(shown)
                check = copy.copy(check)
                # The summary quotes the changes: replaced, not trimmed.
                check.summary = MSG_NUMBERS_HIDDEN.format(shown=len(shown), hidden=hidden)
                check.details = {
                    **details,
                    "metrics": shown,
                    "hidden": {"count": hidden, "reason": HIDDEN_CHECK_REASON},
                }
        out.append(check)
    return out


def timeline_visible(events: Iterable[Any], *, principal: Principal | None) -> list[Any]:
    """A proposal's timeline as ``principal`` may read it: a numbers check's event keeps its
    summary only when every metric it covers is visible (``numbers_visible``); an event
    recorded without the list of metrics is hidden from restricted readers (fail closed).
    The events are copied, never changed."""
    events = list(events)
    if not principal_restricted(principal):
        return events
    out = []
    for event in events:
        payload = event.payload if isinstance(event.payload, dict) else {}
        if event.action == "proposal.check" and payload.get("kind") == "numbers":
            metrics = payload.get("metrics")
            computed = payload.get("computed_as")
            open_metrics = set(payload.get("unpolicied_metrics") or [])
            hidden = (
                [m for m in metrics if not numbers_visible(
                    reader=principal, computed=computed, metric=str(m),
                    policied=m not in open_metrics)]
                if isinstance(metrics, list)
                else None
            )  # fmt: skip
            if hidden is None or hidden:
                count = len(hidden) if hidden is not None else "all"
                event = copy.copy(event)
                event.payload = {
                    key: value
                    for key, value in payload.items()
                    if key in ("kind", "revision", "status", "computed_as")
                }
                event.payload["summary"] = MSG_CHECK_EVENT_HIDDEN.format(
                    status=payload.get("status", ""), hidden=count
                )
                event.payload["hidden"] = {"count": count, "reason": HIDDEN_CHECK_REASON}
        out.append(event)
    return out


MSG_AUDIT_HIDDEN = (
    "observed value hidden: measured over every tenant's rows of a table your row policies narrow"
)
# Contract findings that measure rows (counts, shares, the newest timestamp); schema drift
# compares column lists and carries no data.
_SCHEMA_ONLY_CHECKS = frozenset({"schema_drift"})


def _policy_tables() -> tuple[set[str], set[str]]:
    """(tables a row policy narrows, tables some model reads), lower-cased, in the current
    release: a table is narrowed when a model over it carries an entity a policy targets."""
    try:
        manifest = manifest_for_release(release_resolve(None))
    except NotFound:
        return set(), set()
    entities = {
        str(policy.get("entity"))
        for model in manifest.semantic_models.values()
        for policy in model.row_policies
        if isinstance(policy, Mapping)
    }
    narrowed, known = set(), set()
    for model in manifest.semantic_models.values():
        table = str(model.relation[2]).lower()
        known.add(table)
        if set(model.entities) & entities:
            narrowed.add(table)
    return narrowed, known


def audit_results_visible(results: Iterable[Any], *, principal: Principal | None) -> list[Any]:
    """Audit results as ``principal`` may read them: for a restricted principal, a contract
    finding that measured a table its row policies narrow (or a table no model reads: fail
    closed) keeps its status and threshold, but its observed value and message (computed over
    every tenant) are replaced; ``hidden_reason`` says why. Copies, never changes, the rows."""
    results = list(results)
    if not principal_restricted(principal):
        return results
    narrowed, known = _policy_tables()
    out = []
    for result in results:
        contract, sep, rest = str(result.target).partition(":")
        if sep and "/" not in contract and result.check_name not in _SCHEMA_ONLY_CHECKS:
            table = rest.split(".", 1)[0].lower()
            if table in narrowed or table not in known:
                result = copy.copy(result)
                result.observed, result.message = None, MSG_AUDIT_HIDDEN
                result.hidden_reason = MSG_AUDIT_HIDDEN
        out.append(result)
    return out
