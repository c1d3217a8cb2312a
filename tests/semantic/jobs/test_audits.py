"""Audits find each planted fault and stay quiet on clean data (real DuckDB warehouse)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from semantic.jobs.audits import audit_run
from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.models import AuditResult, MetricValue


def newest_received(path: Path) -> dt.datetime:
    con = duckdb.connect(str(path), read_only=True)
    (newest,) = con.execute("SELECT max(received_at) FROM events").fetchone()
    con.close()
    return newest.replace(tzinfo=dt.UTC)


def failures(results: list[AuditResult]) -> dict[tuple[str, str], AuditResult]:
    return {(r.check_name, r.target): r for r in results if r.status != "pass"}


def events_audit(path: Path, **kwargs: object) -> list[AuditResult]:
    now = kwargs.pop("now", newest_received(path) + dt.timedelta(minutes=10))
    return audit_run(contracts=["events"], checks=("contracts",), now=now, **kwargs)


def test_clean_events_table_passes_every_contract_check(synced: Path) -> None:
    """On the generated data every events rule passes (duplicates stay under 2%)."""
    results = events_audit(synced)
    assert {r.check_name for r in results} >= {"schema_drift", "null_values", "duplicate_share",
                                                "accepted_values", "row_count", "freshness"}  # fmt: skip
    assert failures(results) == {}
    assert all(r.evidence_sql for r in results)


def test_dropped_column_is_schema_drift(synced: Path) -> None:
    """A column the contract promises and the table lost is an error naming it."""
    con = duckdb.connect(str(synced))
    con.execute("ALTER TABLE events DROP COLUMN anonymous_id")
    con.close()
    found = failures(events_audit(synced))
    drift = found[("schema_drift", "events:events")]
    assert drift.severity == "error" and "anonymous_id" in drift.message


def test_null_burst_fails_the_not_null_rule(synced: Path) -> None:
    """NULL account ids on one day fail account_id's nullValues rule, with evidence SQL."""
    con = duckdb.connect(str(synced))
    con.execute("ALTER TABLE events ALTER account_id DROP NOT NULL")
    con.execute(
        "UPDATE events SET account_id = NULL WHERE CAST(occurred_at AS DATE) = '2026-09-01'"
    )
    con.close()
    found = failures(events_audit(synced))
    nulls = found[("null_values", "events:events.account_id")]
    assert nulls.observed > 0 and "IS NULL" in nulls.evidence_sql


def test_duplicate_burst_raises_the_duplicate_share(synced: Path) -> None:
    """Re-delivering 5% of events pushes the duplicate share over the contract's 2%."""
    con = duckdb.connect(str(synced))
    con.execute("INSERT INTO events SELECT * FROM events USING SAMPLE 5 PERCENT (bernoulli, 7)")
    con.close()
    found = failures(events_audit(synced))
    share = found[("duplicate_share", "events:events.event_id")]
    assert share.severity == "warning" and share.observed > 2


def test_stale_table_fails_freshness(synced: Path) -> None:
    """A day without loads breaks the one-hour freshness SLA of events.received_at."""
    late = newest_received(synced) + dt.timedelta(days=1)
    found = failures(events_audit(synced, now=late))
    assert ("freshness", "events:events.received_at") in found


def test_anomalous_day_is_flagged_with_its_expected_range(synced: Path) -> None:
    """A stored value 10x its weekday baseline is flagged; the rest of the series is not."""
    run = compute_run_create(
        metrics=["events_tracked"], start=dt.date(2026, 7, 1), end=dt.date(2026, 10, 31),
        enqueue=False, acting_user=None,
    )  # fmt: skip
    compute_run_execute(run_id=run.pk)
    now = dt.datetime(2026, 10, 31, 23, tzinfo=dt.UTC)
    quiet = audit_run(metrics=["events_tracked"], checks=("anomaly",), now=now)
    assert quiet == []
    day = MetricValue.objects.get(metric_name="events_tracked", period_start=dt.date(2026, 10, 28))
    MetricValue.objects.filter(pk=day.pk).update(value=str(int(day.value) * 10))
    (flag,) = audit_run(metrics=["events_tracked"], checks=("anomaly",), now=now)
    assert flag.target == "events_tracked/day/2026-10-28" and flag.status == "fail"
    assert flag.expected["low"] <= int(day.value) <= flag.expected["high"]


def test_reconciliation_flags_a_value_the_warehouse_no_longer_gives(synced: Path) -> None:
    """Recomputing a sample finds the one stored value that differs from the warehouse."""
    run = compute_run_create(
        metrics=["revenue"], start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 10),
        enqueue=False, acting_user=None,
    )  # fmt: skip
    compute_run_execute(run_id=run.pk)
    assert {r.status for r in audit_run(metrics=["revenue"], checks=("reconcile",))} == {"pass"}
    tampered = MetricValue.objects.filter(metric_name="revenue").first()
    MetricValue.objects.filter(pk=tampered.pk).update(value="1")
    found = failures(audit_run(metrics=["revenue"], checks=("reconcile",), sample=50))
    (flag,) = found.values()
    assert flag.expected == "1" and flag.check_name == "reconcile"


@pytest.mark.parametrize("contract", ["accounts", "invoices", "subscriptions", "users"])
def test_other_contracts_rules_pass_on_clean_data(synced: Path, contract: str) -> None:
    """Every rule of the other demo contracts holds on the generated data (freshness aside:
    the demo history ends on a fixed day)."""
    results = audit_run(contracts=[contract], checks=("contracts",))
    assert {k: v.message for k, v in failures(results).items() if k[0] != "freshness"} == {}


def test_audit_cli_exits_non_zero_on_an_error_and_api_lists_it(
    synced: Path, client: object, django_user_model: object
) -> None:
    """`tally audit` prints failing checks and exits 1 on an error; /api/v1/audits lists them."""
    from io import StringIO

    from django.core.management import call_command

    con = duckdb.connect(str(synced))
    con.execute("ALTER TABLE events DROP COLUMN anonymous_id")
    con.close()
    out = StringIO()
    with pytest.raises(SystemExit) as info:
        call_command("audit", "--contract", "events", "--checks", "contracts", stdout=out)
    assert info.value.code == 1 and "schema_drift" in out.getvalue()
    client.force_login(django_user_model.objects.create_user("auditor"))  # type: ignore[attr-defined]
    body = client.get("/api/v1/audits?status=fail&check_name=schema_drift").json()  # type: ignore[attr-defined]
    assert body["count"] == 1 and "anonymous_id" in body["results"][0]["message"]


def test_failing_checks_alert_the_owning_team_by_email_and_webhook(
    synced: Path, mailoutbox: list[object]
) -> None:
    """A planted fault on events mails product-analytics and posts to its webhook."""
    import http.server
    import json as jsonlib
    import threading

    from registry.models import Team

    received: list[dict[str, object]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(jsonlib.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.handle_request, daemon=True).start()
    Team.objects.filter(slug="product-analytics").update(
        webhook_url=f"http://127.0.0.1:{server.server_port}/hook"
    )
    con = duckdb.connect(str(synced))
    con.execute("ALTER TABLE events DROP COLUMN anonymous_id")
    con.close()
    events_audit(synced, alert=True)
    server.server_close()
    (mail,) = mailoutbox
    assert mail.to == ["product-analytics@tally.example"]  # type: ignore[attr-defined]
    assert "anonymous_id" in mail.body  # type: ignore[attr-defined]
    (hook,) = received
    assert hook["team"] == "product-analytics"
    assert any(r["check"] == "schema_drift" for r in hook["results"])  # type: ignore[union-attr]
