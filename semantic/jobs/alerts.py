"""Alerts to the owning team of failing audit checks: one email and one webhook call per team."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import send_mail

from registry.models import Definition, Kind, Team
from semantic.models import AuditResult

logger = logging.getLogger("tally.jobs")

ALERT_SUBJECT = "[tally] {n} failing audit check(s) for {team}"
WEBHOOK_TIMEOUT_S = 5


def metric_owners(names: Sequence[str]) -> dict[str, str]:
    """Metric name → owning team slug (empty when unowned)."""
    rows = Definition.objects.filter(kind=Kind.METRIC, name__in=list(names)).values_list(
        "name", "owner__slug"
    )
    return {name: slug or "" for name, slug in rows}


def audit_alerts_send(*, results: Sequence[AuditResult]) -> dict[str, int]:
    """Emails each owning team its failing checks and POSTs them to the team's webhook URL;
    a delivery failure is logged, never raised (the results are already stored)."""
    failing: dict[str, list[AuditResult]] = defaultdict(list)
    for result in results:
        if result.status != AuditResult.Status.PASS and result.owner:
            failing[result.owner].append(result)
    sent: dict[str, int] = {}
    for team in Team.objects.filter(slug__in=list(failing)):
        items = failing[team.slug]
        lines = [
            f"{r.severity.upper()} {r.check_name} {r.target}: {r.message}"
            + (f"\n    evidence: {r.evidence_sql}" if r.evidence_sql else "")
            for r in items
        ]
        if team.email:
            try:
                send_mail(
                    ALERT_SUBJECT.format(n=len(items), team=team.name),
                    "\n".join(lines),
                    getattr(settings, "DEFAULT_FROM_EMAIL", "tally@localhost"),
                    [team.email],
                )
            except Exception:  # SMTP down: the results stay visible in the UI and API
                logger.exception("audit alert email to %s failed", team.email)
        if team.webhook_url:
            body = {
                "team": team.slug,
                "results": [
                    {"check": r.check_name, "target": r.target, "severity": r.severity,
                     "status": r.status, "message": r.message, "evidence_sql": r.evidence_sql}
                    for r in items
                ],
            }  # fmt: skip
            request = urllib.request.Request(
                team.webhook_url,
                data=json.dumps(body, default=str).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S):
                    pass
            except Exception:
                logger.exception("audit alert webhook %s failed", team.webhook_url)
        sent[team.slug] = len(items)
    return sent
