"""value_trace: a stored value back to its definitions, run SQL, contracts, source columns and
the warehouse rows behind it (drill-down), on the demo warehouse (DuckDB)."""

from __future__ import annotations

import datetime as dt
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from django.core.management import call_command
from django.test import Client

from lineage.trace import MSG_UNKNOWN_VALUE, NOTE_REPOINTED, ValueNotFound, value_trace
from registry.services.access import role_grant
from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.models import ComputeRun, MetricValue
from tally.errors import QueryError

START, END = dt.date(2026, 9, 1), dt.date(2026, 9, 10)
SIMPLE = {  # metric → the aggregation kind the fixture measure uses
    "revenue": "sum",
    "invoices_issued": "count",
    "events_tracked": "count_distinct",
    "late_events": "sum_boolean",
}
ROWS = 100_000


def _run(metrics: list[str], **kwargs: Any) -> ComputeRun:
    run = compute_run_create(
        metrics=metrics,
        start=kwargs.pop("start", START),
        end=kwargs.pop("end", END),
        enqueue=False,
        acting_user=None,
        **kwargs,
    )
    run = compute_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    return run


def _reaggregate(agg: str, drill: dict[str, Any]) -> Decimal:
    """What the drill-down's ``reaggregate`` says, done in Python over the returned rows."""
    assert not drill["truncated"]
    index = drill["columns"].index("measure_value")
    values = [row[index] for row in drill["rows"]]
    present = [v for v in values if v is not None]
    if agg == "sum":
        return Decimal(sum(Decimal(str(v)) for v in present))
    if agg == "count":
        return Decimal(len(present))
    if agg == "count_distinct":
        return Decimal(len(set(present)))
    if agg == "sum_boolean":
        return Decimal(sum(int(bool(v)) for v in present))
    raise AssertionError(agg)


def _values(metric: str, **filters: Any) -> list[MetricValue]:
    found = list(MetricValue.objects.filter(metric_name=metric, **filters).exclude(value=None))
    assert found, f"no stored values of {metric}"
    return found


@pytest.mark.parametrize("metric", sorted(SIMPLE))
def test_drilldown_rows_reaggregate_to_each_simple_value(computed: Path, metric: str) -> None:
    """For sum, count, count_distinct and sum_boolean, aggregating the drill-down rows'
    measure column gives back every stored daily value (filters included: revenue's
    status = 'paid')."""
    _run([metric])
    for value in _values(metric):
        trace = value_trace(value_id=value.pk, rows=ROWS).as_dict()
        (drill,) = trace["drilldown"]
        assert drill["agg"] == SIMPLE[metric] and drill["exact"] is True
        assert drill["first_day"] == drill["last_day"] == value.period_start.isoformat()
        assert _reaggregate(SIMPLE[metric], drill) == Decimal(value.value), value.period_start


def test_ratio_drilldown_has_numerator_and_denominator(computed: Path) -> None:
    """A ratio's drill-down is one read per input, each with that input's filter; their
    counts divide to the stored value."""
    _run(["paid_invoice_rate"])
    for value in _values("paid_invoice_rate"):
        trace = value_trace(value_id=value.pk, rows=ROWS).as_dict()
        numerator, denominator = trace["drilldown"]
        assert (numerator["role"], denominator["role"]) == ("numerator", "denominator")
        assert any("'paid'" in f for f in numerator["filters"])
        assert any("'void'" in f for f in denominator["filters"])
        ratio = _reaggregate("count", numerator) / _reaggregate("count", denominator)
        assert float(ratio) == pytest.approx(float(value.value), rel=1e-9)


def test_derived_drilldown_has_one_read_per_input_metric(computed: Path) -> None:
    """net_new_accounts = new_accounts - churned_accounts: each input's rows count to its
    part, and the expression over them gives the stored value (zero rows is 0: fill_nulls)."""
    _run(["net_new_accounts"], start=dt.date(2026, 6, 1), end=dt.date(2026, 9, 30), grain="month")
    values = _values("net_new_accounts", grain="month")
    assert len(values) == 4
    for value in values:
        trace = value_trace(value_id=value.pk, rows=ROWS).as_dict()
        new, churned = trace["drilldown"]
        assert (new["role"], churned["role"]) == ("input new_accounts", "input churned_accounts")
        assert new["first_day"] == value.period_start.isoformat()
        assert new["last_day"].endswith(("-30", "-31"))
        counted = _reaggregate("count", new) - _reaggregate("count", churned)
        assert counted == Decimal(value.value)
        assert any("fill_nulls_with" in note for note in new["notes"])


def test_sliced_value_drills_down_through_the_join_to_its_slice(computed: Path) -> None:
    """A value sliced by account__plan (a dimension of accounts, joined from invoices) reads
    only that plan's invoices, and sums to the stored value; the slice's column is among the
    source columns and the accounts contract among the contracts."""
    _run(["revenue"], slices=["account__plan"])
    values = _values("revenue")
    assert {v.slice["account__plan"] for v in values} >= {"free", "pro"}
    for value in values:
        trace = value_trace(value_id=value.pk, rows=ROWS).as_dict()
        (drill,) = trace["drilldown"]
        plan = drill["columns"].index("account__plan")
        assert {row[plan] for row in drill["rows"]} <= {value.slice["account__plan"]}
        assert _reaggregate("sum", drill) == Decimal(value.value)
    columns = {c["column"]: c for c in trace["source_columns"]}
    assert columns["main.accounts.plan"]["type"] == "INDIRECT"
    assert columns["main.invoices.amount"]["type"] == "DIRECT"
    assert {c["name"] for c in trace["contracts"]} == {"accounts", "invoices"}


def test_cumulative_window_drilldown_covers_the_window(computed: Path) -> None:
    """weekly_active_users on a day counts distinct users over that day and the 6 before it:
    the drill-down covers exactly those days and counts back to the value."""
    _run(["weekly_active_users"], start=dt.date(2026, 9, 8), end=dt.date(2026, 9, 9))
    for value in _values("weekly_active_users"):
        trace = value_trace(value_id=value.pk, rows=ROWS).as_dict()
        (drill,) = trace["drilldown"]
        assert drill["first_day"] == (value.period_start - dt.timedelta(days=6)).isoformat()
        assert drill["last_day"] == value.period_start.isoformat()
        assert any("trailing 7 day" in note for note in drill["notes"])
        assert _reaggregate("count_distinct", drill) == Decimal(value.value)


def test_other_kinds_return_rows_with_a_note(computed: Path) -> None:
    """A median and an end-of-period (semi-additive) value are not sums of their rows: the
    rows come back with a note saying so (and the median of the rows is the median)."""
    _run(["median_invoice_amount", "current_mrr"])
    value = _values("median_invoice_amount")[0]
    (drill,) = value_trace(value_id=value.pk, rows=ROWS).as_dict()["drilldown"]
    assert drill["exact"] is False
    assert drill["notes"] == ["the value is the median of measure_value over these rows, not "
                              "their sum or count"]  # fmt: skip
    amounts = [row[drill["columns"].index("measure_value")] for row in drill["rows"]]
    assert Decimal(str(statistics.median(amounts))) == Decimal(value.value)
    value = _values("current_mrr")[0]
    (drill,) = value_trace(value_id=value.pk, rows=ROWS).as_dict()["drilldown"]
    assert drill["exact"] is False
    assert "semi-additive measure" in drill["notes"][0]
    assert drill["rows"]


def test_trace_names_versions_sql_run_contracts_and_lineage(computed: Path) -> None:
    """The trace carries the metric version and release, every definition it reads with its
    spec, the run's SQL (checked against its sql_hash), the run, and a lineage tree from the
    value through its run and compiled query down to warehouse columns."""
    run = _run(["paid_invoice_rate", "revenue"])
    value = _values("paid_invoice_rate")[0]
    trace = value_trace(value_id=value.pk).as_dict()
    assert trace["value"]["metric_version"] == "1.0" and trace["value"]["release"] == "r1"
    assert trace["value"]["period_end"] == trace["value"]["period_start"]
    kinds = {(d["kind"], d["name"]): d for d in trace["definitions"]}
    assert kinds[("metric", "paid_invoice_rate")]["spec"]["type"] == "ratio"
    assert ("metric", "invoices_issued") in kinds and ("semantic_model", "invoices") in kinds
    assert trace["contracts"] == [
        {"name": "invoices", "version": "1.0.0", "registry_version": "1.0", "tables": ["invoices"]}
    ]
    compiled = trace["compiled"]
    assert compiled["matches_run_sql_hash"] is True
    assert compiled["sql"].startswith("-- tally release r1: paid_invoice_rate@1.0, revenue@1.0")
    assert trace["run"]["id"] == run.pk and trace["run"]["status"] == "succeeded"
    assert trace["run"]["finished_at"] is not None
    tree = trace["lineage"]
    assert tree["node"] == f"value:{value.pk}"
    (run_hop,) = tree["upstream"]
    assert run_hop["node"] == f"compute_run:{run.pk}"
    assert run_hop["upstream"][0]["kind"] == "compiled_query"
    assert run_hop["upstream"][0]["upstream"][0]["node"] == "metric:paid_invoice_rate@1.0"
    invoice_id = next(
        c for c in trace["source_columns"] if c["column"] == "main.invoices.invoice_id"
    )
    assert invoice_id["type"] == "DIRECT"
    assert any(hop["expr"] for hop in invoice_id["hops"])


def test_drilldown_sql_in_another_dialect(computed: Path) -> None:
    """?dialect= renders the same read for another warehouse; the SQL parses back there."""
    _run(["revenue"], slices=["account__plan"])
    value = _values("revenue")[0]
    (drill,) = value_trace(value_id=value.pk, dialect="snowflake").as_dict()["drilldown"]
    assert drill["dialect"] == "snowflake" and "rows" not in drill
    parsed = sqlglot.parse_one(drill["sql"], read="snowflake")
    assert {t.name for t in parsed.find_all(sqlglot.exp.Table)} == {"invoices", "accounts"}
    with pytest.raises(QueryError) as caught:
        value_trace(value_id=value.pk, dialect="oracle")
    assert caught.value.code == "unsupported_dialect" and caught.value.location == "dialect"


def test_replayed_value_drills_down_under_the_load_filter(computed: Path) -> None:
    """A value of an --as-of replay counts only rows loaded by then: its drill-down carries
    the same load filter, so its rows still add up to it."""
    _run(["events_tracked"], start=dt.date(2026, 9, 5), end=dt.date(2026, 9, 8),
         as_of=dt.date(2026, 9, 7))  # fmt: skip
    value = MetricValue.objects.get(metric_name="events_tracked", period_start=dt.date(2026, 9, 7))
    trace = value_trace(value_id=value.pk, rows=ROWS).as_dict()
    (drill,) = trace["drilldown"]
    assert trace["compiled"]["query"]["where"] == drill["filters"]
    assert "received_at" in drill["filters"][0] and "2026-09-07" in drill["filters"][0]
    assert _reaggregate("count_distinct", drill) == Decimal(value.value)


def test_unknown_value_is_not_found_with_a_hint(db: None) -> None:
    """An id with no stored value is a 404-class error naming the id, never a crash."""
    with pytest.raises(ValueNotFound) as caught:
        value_trace(value_id=424242)
    assert caught.value.code == "unknown_value" and caught.value.http_status == 404
    assert caught.value.message == MSG_UNKNOWN_VALUE.format(value_id=424242)
    assert caught.value.hint


def test_trace_api_returns_the_trace_and_rows(
    computed: Path, client: Client, django_user_model: Any
) -> None:
    """GET /api/v1/values/{id}/trace?rows=N runs the drill-down; an unknown id is a 404
    with code unknown_value; a bad dialect is a 400; the endpoint is in the OpenAPI schema."""
    auditor = django_user_model.objects.create_user("auditor")
    role_grant(user=auditor, role="auditor")
    client.force_login(auditor)
    _run(["revenue"])
    value = _values("revenue")[0]
    response = client.get(f"/api/v1/values/{value.pk}/trace", {"rows": 1})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["value"]["id"] == value.pk and body["value"]["metric"] == "revenue"
    (drill,) = body["drilldown"]
    assert len(drill["rows"]) == 1 and drill["dialect"] == "duckdb"
    missing = client.get("/api/v1/values/424242/trace")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_value"
    bad = client.get(f"/api/v1/values/{value.pk}/trace", {"dialect": "oracle"})
    assert bad.status_code == 400
    schema = client.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/values/{value_id}/trace" in schema["paths"]


def test_trace_command_prints_a_report_json_and_rows(
    computed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tally trace ID` prints a readable report; --format json the trace; --rows the rows;
    an unknown id exits 1 with the error on stderr."""
    _run(["revenue"])
    value = _values("revenue")[0]
    call_command("trace", str(value.pk))
    text = capsys.readouterr().out
    assert f"value {value.pk}: revenue@1.0 = {value.value}" in text
    assert "contracts of the tables read:\n  invoices 1.0.0  (invoices)" in text
    assert "drill-down [value] revenue: sum of invoice_amount on main.invoices" in text
    call_command("trace", str(value.pk), "--format", "json", "--rows", "--limit", "2")
    body = __import__("json").loads(capsys.readouterr().out)
    assert len(body["drilldown"][0]["rows"]) <= 2
    with pytest.raises(SystemExit) as exited:
        call_command("trace", "424242")
    assert exited.value.code == 1
    assert "error[unknown_value]: no stored value with id 424242" in capsys.readouterr().err


def test_value_repointed_to_a_new_version_traces_the_run_that_computed_it(
    computed: Path, tmp_path: Path
) -> None:
    """A description-only change (minor bump) recomputed with the same number repoints the
    value to version 1.1 without rewriting it: the trace says so, and its SQL and
    definitions stay those of the run (release r1) that computed the number."""
    import shutil

    from registry.services.definitions import definitions_sync
    from tests.conftest import ROOT

    first = _run(["revenue"], start=dt.date(2026, 9, 1), end=dt.date(2026, 9, 2))
    folder = tmp_path / "defs"
    shutil.copytree(ROOT / "fixtures", folder)
    metrics = folder / "metrics" / "revenue.yml"
    metrics.write_text(
        metrics.read_text().replace(
            "Amount of paid invoices, by invoice issue date.", "Paid invoice amounts by issue date."
        )
    )
    definitions_sync(root=folder, acting_user=None)
    second = _run(["revenue"], start=dt.date(2026, 9, 1), end=dt.date(2026, 9, 2))
    assert second.values_unchanged > 0 and second.values_written == 0
    value = _values("revenue")[0]
    assert value.run_id == first.pk and value.release.name == "r2"
    trace = value_trace(value_id=value.pk).as_dict()
    assert trace["value"]["metric_version"] == "1.1" and trace["run"]["release"] == "r1"
    assert trace["notes"] == [
        NOTE_REPOINTED.format(value_release="r2", version="1.1", run=first.pk,
                              run_release="r1", run_version="1.0")
    ]  # fmt: skip
    assert trace["compiled"]["sql"].startswith("-- tally release r1: revenue@1.0")
