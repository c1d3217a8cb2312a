"""Web UI pages of the semantic layer through the Django test client: the metric chart (stored
values, revisions, anomalies, expected range), SQL per dialect, explore (chart, rows, CSV,
SQL), runs, audits and the trace page of a value; errors are pages, never 500s."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.conf import settings as django_settings
from django.test import Client
from pytest_django.fixtures import Settings

from registry.models import AuditEvent
from registry.services.access import access_profile_set, role_grant
from registry.services.definitions import definitions_sync
from semantic.jobs.audits import audit_run
from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.models import MetricValue
from semantic.permissions import HINT_STORED_VALUES
from semantic.ui_selectors import MSG_NO_COMPILE, expected_band
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db
END = dt.date(2026, 10, 31)


@pytest.fixture
def synced(db: None, tmp_path: Path, warehouse_path: Path, settings: Settings) -> Path:
    """fixtures/ synced over a private copy of the small demo warehouse."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    return path


@pytest.fixture
def computed(synced: Path) -> Path:
    """events_tracked daily since July, first as of three days early (so late events restate
    the last days), then in full; one day tampered to 10x and flagged by the anomaly audit."""
    for as_of in (END - dt.timedelta(days=3), None):
        run = compute_run_create(
            metrics=["events_tracked"], start=dt.date(2026, 7, 1), end=END, as_of=as_of,
            enqueue=False, acting_user=None,
        )  # fmt: skip
        assert compute_run_execute(run_id=run.pk).status == "succeeded"
    day = MetricValue.objects.get(metric_name="events_tracked", period_start=dt.date(2026, 10, 28))
    MetricValue.objects.filter(pk=day.pk).update(value=str(int(day.value) * 10))
    audit_run(
        metrics=["events_tracked"],
        checks=("anomaly",),
        now=dt.datetime(2026, 10, 31, 23, tzinfo=dt.UTC),
    )
    return synced


@pytest.fixture
def signed_in(client: Client, django_user_model: Any) -> Client:
    """An auditor: compiles and queries, and, unrestricted, reads the stored values of the
    fixtures' metrics (every fixture model carries account, which has a row policy)."""
    user = django_user_model.objects.create_user("auditor")
    role_grant(user=user, role="auditor")
    client.force_login(user)
    return client


def _tenant_of_most_paid_invoices(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            "SELECT a.tenant_id FROM invoices AS i JOIN accounts AS a ON a.id = i.account_id "
            "WHERE i.status = 'paid' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return str(row[0])


@pytest.fixture
def tenant_analyst(client: Client, django_user_model: Any, synced: Path) -> tuple[Client, str]:
    """An analyst bound to one tenant by her profile: row policies apply to her."""
    tenant = _tenant_of_most_paid_invoices(synced)
    user = django_user_model.objects.create_user("ana")
    role_grant(user=user, role="analyst")
    access_profile_set(user=user, attributes={"tenant_id": tenant})
    client.force_login(user)
    return client, tenant


def _spec(response: Any, element_id: str) -> dict[str, Any]:
    text = response.content.decode()
    start = text.index(f'<script id="{element_id}" type="application/json">')
    start = text.index(">", start) + 1
    return json.loads(text[start : text.index("</script>", start)])


def test_expected_band_is_the_seasonal_median_plus_minus_mad() -> None:
    """Same weekday over the previous 8 weeks; fewer than 4 such days give no band."""
    flat = [10.0] * 70
    band = expected_band(flat, 7)
    assert band[:28] == [None] * 28
    low, high = band[28]  # type: ignore[misc]
    assert low < 10.0 < high
    assert band[35] == band[28]


def test_metric_chart_marks_revisions_anomalies_and_the_expected_range(
    signed_in: Client, computed: Path
) -> None:
    page = signed_in.get("/metrics/events_tracked")
    assert page.status_code == 200
    spec = _spec(page, "metric-chart-spec")
    points = spec["data"]["values"]
    assert len(points) == (END - dt.date(2026, 7, 1)).days + 1
    assert any(p["revised"] for p in points)  # late events restated the last days
    (flagged,) = [p for p in points if p["anomaly"]]
    assert flagged["period"] == "2026-10-28"
    assert flagged["value"] > flagged["high"]
    assert all(p["low"] is None or p["low"] <= p["high"] for p in points)
    # Each point carries its stored value's id: the click target of "trace this number".
    assert MetricValue.objects.filter(pk=points[-1]["id"]).exists()
    assert b'data-trace-url="/values/0/trace"' in page.content


def test_metric_chart_fragment_by_grain_and_sliced_by_a_dimension(
    signed_in: Client, computed: Path
) -> None:
    # Only daily values are stored: another grain falls back to the stored one.
    weekly = signed_in.get(
        "/metrics/events_tracked/chart?grain=week", headers={"HX-Request": "true"}
    )
    assert weekly.status_code == 200 and weekly.context["series"].grain == "day"
    assert b"<html" not in weekly.content
    sliced = signed_in.get("/metrics/events_tracked/chart?grain=day&dimension=event__event_type")
    spec = _spec(sliced, "metric-chart-spec")
    assert {"page_view", "login"} <= {r["slice"] for r in spec["data"]["values"]}
    bad = signed_in.get("/metrics/events_tracked/chart?grain=day&dimension=event__nope")
    assert bad.status_code == 200 and b"notice bad" in bad.content


def test_slice_by_offers_categorical_dimensions_with_labels_only(
    signed_in: Client, computed: Path
) -> None:
    """No timestamps, ids, names or e-mails in the slice menu: categorical, non-PII items."""
    page = signed_in.get("/metrics/events_tracked")
    offered = dict(page.context["dimensions"])
    assert offered["event__event_type"] == "event type (event)"
    assert "account__plan" in offered
    for item in offered:
        last = item.rsplit("__", 1)[-1]
        assert last not in {"email", "created_at", "occurred_at", "account", "user"}, item
        assert not last.endswith("_at"), item
    assert b'<option value="event__event_type">event type (event)</option>' in page.content


def test_health_badges_on_catalog_rows_and_the_metric_header(
    signed_in: Client, computed: Path
) -> None:
    """Freshness, last audit and anomalies as one badge per metric, linking to its audits."""
    import uuid

    from semantic.models import AuditResult

    batch = uuid.uuid4()
    AuditResult.objects.create(
        batch=batch, check_name="anomaly", target="events_tracked/day/2026-10-28",
        severity="warning", status="fail", message="events_tracked on 2026-10-28: 9 outside",
    )  # fmt: skip
    AuditResult.objects.create(
        batch=batch, check_name="freshness", target="events:events.received_at",
        severity="error", status="pass", message="fresh",
    )  # fmt: skip
    catalog = signed_in.get("/metrics?q=events")
    health = catalog.context["health"]
    assert health["events_tracked"].state == "warning"
    assert health["events_tracked"].failing == ("anomaly events_tracked/day/2026-10-28",)
    page = catalog.content.decode()
    assert 'data-health="warning" href="/metrics/events_tracked#audit-h"' in page
    # A metric reading the events contract only: its freshness passed.
    fresh = [m for m, h in health.items() if h.state == "healthy"]
    assert fresh, health
    header = signed_in.get("/metrics/events_tracked").content.decode()
    assert 'data-health="warning"' in header and "1 of 2 checks fail" in header
    AuditResult.objects.create(
        batch=uuid.uuid4(), check_name="freshness", target="events:events.received_at",
        severity="error", status="fail", message="stale",
    )  # fmt: skip
    assert signed_in.get("/metrics?q=events").context["health"]["events_tracked"].state == (
        "failing"
    )


def test_metric_sql_for_a_dialect_and_a_bad_dialect(signed_in: Client, synced: Path) -> None:
    response = signed_in.get("/metrics/revenue/sql?dialect=snowflake&grain=month")
    assert response.status_code == 200
    assert b"DATE_TRUNC(&#x27;MONTH&#x27;" in response.content
    assert b"revenue@1.0" in response.content
    # An unknown dialect falls back to the warehouse's own (the form refuses it).
    fallback = signed_in.get("/metrics/revenue/sql?dialect=oracle9")
    assert fallback.status_code == 200 and b"metric-sql-text" in fallback.content


def test_metric_without_values_shows_an_empty_state(signed_in: Client, synced: Path) -> None:
    page = signed_in.get("/metrics/mrr")
    assert page.status_code == 200
    assert b"No stored values for this metric yet" in page.content


def test_explore_runs_a_query_with_chart_rows_and_sql(signed_in: Client, synced: Path) -> None:
    empty = signed_in.get("/explore")
    assert empty.status_code == 200 and b"Build a query on the left" in empty.content
    response = signed_in.get(
        "/explore?metrics=revenue&group_by=metric_time__month&group_by=invoice__status"
        "&start_time=2026-01-01&end_time=2026-06-30&dialect=bigquery"
    )
    assert response.status_code == 200
    assert response.context["columns"] == ["metric_time__month", "invoice__status", "revenue"]
    months = [row[0] for row in response.context["rows"]]
    assert months == sorted(months) and months[0] == "2026-01-01"
    assert response.context["result"].dialect == "bigquery"
    assert "TIMESTAMP_TRUNC(invoices.issued_at, MONTH)" in response.context["result"].sql
    spec = _spec(response, "explore-chart-spec")
    assert spec["mark"]["type"] == "line"


def test_explore_groups_by_date_parts_and_fiscal_quarters(signed_in: Client, synced: Path) -> None:
    """Issue 17: the explore page offers date parts and the spine's custom grains, runs them,
    and charts a date part as bars (a category), a fiscal quarter as a time line."""
    options = signed_in.get("/explore/options?metrics=revenue").context["options"]["group_by"]
    assert {"metric_time__extract_dow", "metric_time__fiscal_quarter"} <= set(options)
    by_dow = signed_in.get("/explore?metrics=revenue&group_by=metric_time__extract_dow")
    assert by_dow.status_code == 200, by_dow.context.get("error")
    assert [row[0] for row in by_dow.context["rows"]] == [1, 2, 3, 4, 5, 6, 7]
    assert _spec(by_dow, "explore-chart-spec")["mark"]["type"] != "line"
    fiscal = signed_in.get("/explore?metrics=revenue&group_by=metric_time__fiscal_quarter")
    assert {row[0][5:7] for row in fiscal.context["rows"]} <= {"02", "05", "08", "11"}
    assert _spec(fiscal, "explore-chart-spec")["mark"]["type"] == "line"


def test_explore_csv_has_every_row(signed_in: Client, synced: Path) -> None:
    url = "/explore.csv?metrics=revenue&group_by=metric_time__month"
    response = signed_in.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().strip().splitlines()
    assert lines[0] == "metric_time__month,revenue"
    page = signed_in.get(url.replace(".csv", ""))
    assert len(lines) - 1 == len(page.context["rows"])
    nothing = signed_in.get("/explore.csv")
    assert nothing.status_code == 400


def test_explore_errors_are_messages_not_500s(signed_in: Client, synced: Path) -> None:
    where = signed_in.get("/explore?metrics=revenue&where=drop+table+x")
    assert where.status_code == 200 and where.context["error"].code
    unknown = signed_in.get("/explore?metrics=revenu")
    assert unknown.status_code == 200 and unknown.context["form"].errors
    dates = signed_in.get("/explore?metrics=revenue&start_time=2026-05-01&end_time=2026-01-01")
    assert dates.status_code == 200 and "end_time" in dates.context["form"].errors


def test_explore_group_by_options_follow_the_chosen_metrics(
    signed_in: Client, synced: Path
) -> None:
    response = signed_in.get("/explore/options?metrics=revenue&metrics=mrr")
    options = response.context["options"]["group_by"]
    assert "metric_time__month" in options and "invoice__status" not in options


def test_runs_audits_and_their_empty_states(signed_in: Client, computed: Path) -> None:
    runs = signed_in.get("/runs")
    assert runs.status_code == 200 and len(runs.context["runs"]) == 2
    run_id = runs.context["runs"][0].pk
    detail = signed_in.get(f"/runs/{run_id}")
    assert detail.status_code == 200 and b"succeeded" in detail.content
    assert signed_in.get("/runs/999999").status_code == 404
    assert b"No compute runs match" in signed_in.get("/runs?status=failed").content
    audits = signed_in.get("/audits?check_name=anomaly")
    assert audits.status_code == 200 and b"events_tracked/day/2026-10-28" in audits.content
    assert b"No audit results match" in signed_in.get("/audits?check_name=nothing").content


def test_trace_page_shows_value_version_release_run_and_sql(
    signed_in: Client, computed: Path
) -> None:
    value = MetricValue.objects.filter(metric_name="events_tracked", revision_count__gt=0).first()
    assert value is not None
    page = signed_in.get(f"/values/{value.pk}/trace")
    assert page.status_code == 200
    text = page.content.decode()
    assert "events_tracked</a> v1.0" in text and value.release.name in text
    assert f"/runs/{value.run_id}" in text
    assert "metric_time__day" in text  # the SQL that computes it
    assert "late_data" in text  # its revision
    # The full trace: source columns, definitions and contracts, the drill-down reads with
    # their first rows (the signed-in auditor may query), and the upstream tree.
    trace = page.context["trace"].full
    assert trace["value"]["id"] == value.pk
    assert "main.events.event_id" in text and "semantic_model events v1.0" in text
    (drill,) = trace["drilldown"]
    assert drill["exact"] and drill["rows"] and 'class="small drill-rows"' in text
    # The rows shown are the value's: their distinct event ids count to it (all fetched).
    if not drill["truncated"]:
        assert len({row[0] for row in drill["rows"]}) == int(float(value.value))
    assert 'id="trace-lineage"' in text and "compute_run" in text
    missing = signed_in.get("/values/999999/trace")
    assert missing.status_code == 404 and b"click a point of its chart" in missing.content


def test_slicing_by_a_dimension_with_many_values_draws_the_largest_ten(
    signed_in: Client, computed: Path
) -> None:
    response = signed_in.get("/metrics/events_tracked/chart?grain=day&dimension=account__name")
    assert response.status_code == 200
    sliced = response.context["sliced"]
    assert sliced.slices > 10
    assert len({r["slice"] for r in sliced.rows}) == 10
    assert b"the 10 largest of" in response.content


# --------------------------------------------------------------------------- access


def test_explore_as_a_tenant_bound_analyst_returns_only_her_tenants_rows(
    tenant_analyst: tuple[Client, str], synced: Path
) -> None:
    """Bug: the UI ran queries as a trusted caller, so a tenant-bound user read every
    tenant's rows through Explore. Now the page queries for her principal (row policies),
    and the run is in the audit log as the API's are."""
    client, tenant = tenant_analyst
    response = client.get(
        "/explore?metrics=revenue&group_by=account__tenant_id&group_by=account__plan"
    )
    assert response.status_code == 200, response.content
    columns = response.context["columns"]
    t, p, v = (columns.index(c) for c in ("account__tenant_id", "account__plan", "revenue"))
    rows = response.context["rows"]
    assert rows and {row[t] for row in rows} == {tenant}
    con = duckdb.connect(str(synced), read_only=True)
    expected = con.execute(
        "SELECT a.plan, SUM(i.amount) FROM invoices AS i JOIN accounts AS a "
        "ON a.id = i.account_id WHERE i.status = 'paid' AND a.tenant_id = ? GROUP BY 1",
        [tenant],
    ).fetchall()
    every_tenant = con.execute("SELECT count(DISTINCT tenant_id) FROM accounts").fetchone()
    con.close()
    assert every_tenant is not None and every_tenant[0] > 1
    assert sorted((row[p], float(row[v])) for row in rows) == sorted(
        (plan, float(total)) for plan, total in expected
    )
    csv_rows = client.get(
        "/explore.csv?metrics=revenue&group_by=account__tenant_id"
    ).content.decode().strip().splitlines()[1:]  # fmt: skip
    assert csv_rows and {line.split(",")[0] for line in csv_rows} == {tenant}
    event = AuditEvent.objects.filter(action="query.run").latest("id")
    assert event.actor is not None and event.actor.username == "ana"
    assert event.payload["principal"]["attributes"] == {"tenant_id": tenant}
    assert event.payload["principal"]["unrestricted"] is False


def test_sql_panel_shows_the_secured_sql_and_never_the_salt(
    tenant_analyst: tuple[Client, str], synced: Path
) -> None:
    """The SQL a restricted user reads is the SQL run for her: the row policy with her tenant
    in it, and masks reading the salt by name, never its value."""
    client, tenant = tenant_analyst
    panel = client.get("/metrics/revenue/sql?grain=month").content.decode()
    assert "tenant_id" in panel and f"&#x27;{tenant}&#x27;" in panel
    explore = client.get("/explore?metrics=signups&group_by=user__email&limit=5")
    sql = explore.context["result"].sql
    assert "tally_pii_salt" in sql and "MD5(" in sql.upper()
    assert django_settings.TALLY_PII_SALT not in explore.content.decode()
    assert not any("@" in str(v) for row in explore.context["rows"] for v in row)


def test_a_viewer_gets_403_with_the_reason_on_explore_and_sql(
    client: Client, django_user_model: Any, synced: Path
) -> None:
    """Viewers read and see values but may not query or compile: the pages say so."""
    client.force_login(django_user_model.objects.create_user("vera"))
    for url in (
        "/explore",
        "/explore?metrics=revenue",
        "/explore.csv?metrics=revenue",
        "/explore/options?metrics=revenue",
        "/metrics/revenue/sql",
        "/metrics/events_tracked/chart?dimension=event__event_type",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        text = response.content.decode()
        assert "may not" in text and "your roles (viewer) do not allow it" in text, url
    assert not AuditEvent.objects.filter(action__startswith="query.").exists()
    # Five pages need query or compile outright; the chart needs query only to slice.
    assert AuditEvent.objects.filter(action="access.denied", object_kind="page").count() == 5
    page = client.get("/metrics/revenue").content.decode()
    assert MSG_NO_COMPILE in page and "metric-sql-text" not in page


def test_stored_values_of_a_row_policied_metric_are_refused_to_a_restricted_user(
    tenant_analyst: tuple[Client, str], computed: Path
) -> None:
    """Stored values are totals over every tenant: a tenant-bound analyst gets a 403 with the
    reason on the chart and the trace, the metric page shows the reason instead of the
    chart and the value audits; slicing (a live query) still works, for her tenant."""
    client, tenant = tenant_analyst
    value = MetricValue.objects.filter(metric_name="events_tracked").first()
    assert value is not None
    for url in (f"/values/{value.pk}/trace", "/metrics/events_tracked/chart?grain=day"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert HINT_STORED_VALUES in response.content.decode(), url
    page = client.get("/metrics/events_tracked")
    assert page.status_code == 200
    text = page.content.decode()
    assert HINT_STORED_VALUES in text and 'id="metric-chart"' not in text
    assert "events_tracked/day/2026-10-28" not in text  # the anomaly audit's observed value
    sliced = client.get("/metrics/events_tracked/chart?grain=day&dimension=account__tenant_id")
    assert sliced.status_code == 200
    assert {r["slice"] for r in sliced.context["sliced"].rows} == {tenant}
    # Value checks carry the observed value: the audits page and API leave them out for her.
    audits = client.get("/audits?check_name=anomaly")
    assert audits.status_code == 200 and b"events_tracked/day/" not in audits.content
    api = client.get("/api/v1/audits?check_name=anomaly")
    assert api.status_code == 200 and api.json()["results"] == []


def test_an_auditor_still_reads_stored_values_and_traces(signed_in: Client, computed: Path) -> None:
    """Unrestricted principals are unchanged: the auditor sees the chart and the trace."""
    value = MetricValue.objects.filter(metric_name="events_tracked").first()
    assert value is not None
    assert signed_in.get(f"/values/{value.pk}/trace").status_code == 200
    page = signed_in.get("/metrics/events_tracked").content.decode()
    assert 'id="metric-chart"' in page and HINT_STORED_VALUES not in page
    api = signed_in.get("/api/v1/audits?check_name=anomaly").json()["results"]
    assert "events_tracked/day/2026-10-28" in {a["target"] for a in api}
