"""OpenLineage run events of compute runs: START and COMPLETE/FAIL to a file sink or an HTTP
endpoint, checked against openlineage-python's own event and facet classes."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    processing_engine_run,
    schema_dataset,
    sql_job,
)
from openlineage.client.serde import Serde
from pytest_django.fixtures import Settings

from lineage.openlineage import OUTPUT_DATASET, run_uuid
from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.models import ComputeRun

START, END = dt.date(2026, 9, 1), dt.date(2026, 9, 3)

FACETS: dict[str, type[Any]] = {
    "schema": schema_dataset.SchemaDatasetFacet,
    "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
    "nominalTime": nominal_time_run.NominalTimeRunFacet,
    "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
    "errorMessage": error_message_run.ErrorMessageRunFacet,
    "jobType": job_type_job.JobTypeJobFacet,
    "sql": sql_job.SQLJobFacet,
}


def _facet(name: str, data: dict[str, Any]) -> Any:
    """A facet dict rebuilt with its openlineage-python class: unknown or missing fields raise,
    and the class's own schema URL must be the one sent."""
    data = dict(data)
    producer, schema_url = data.pop("_producer"), data.pop("_schemaURL")
    if name == "schema":
        data["fields"] = [schema_dataset.SchemaDatasetFacetFields(**f) for f in data["fields"]]
    if name == "columnLineage":
        data["fields"] = {
            key: column_lineage_dataset.Fields(
                **{
                    **field,
                    "inputFields": [
                        column_lineage_dataset.InputField(
                            **{
                                **item,
                                "transformations": [
                                    column_lineage_dataset.Transformation(**t)
                                    for t in item["transformations"]
                                ],
                            }
                        )
                        for item in field["inputFields"]
                    ],
                }
            )
            for key, field in data["fields"].items()
        }
        data["dataset"] = [column_lineage_dataset.InputField(**i) for i in data.get("dataset", [])]
    facet = FACETS[name](**data, producer=producer)
    assert facet._schemaURL == schema_url
    return facet


def validated(event: dict[str, Any]) -> RunEvent:
    """The event rebuilt from its JSON with openlineage-python's classes (their validators
    check the run UUID, the event time, URLs); re-serialising gives back the same JSON."""
    body = dict(event)
    run, job = body.pop("run"), body.pop("job")
    rebuilt = RunEvent(
        eventType=RunState(body.pop("eventType")),
        eventTime=body.pop("eventTime"),
        producer=body.pop("producer"),
        run=Run(runId=run["runId"], facets={k: _facet(k, v) for k, v in run["facets"].items()}),
        job=Job(
            namespace=job["namespace"],
            name=job["name"],
            facets={k: _facet(k, v) for k, v in job["facets"].items()},
        ),
        inputs=[
            InputDataset(
                namespace=d["namespace"],
                name=d["name"],
                facets={k: _facet(k, v) for k, v in d["facets"].items()},
            )
            for d in body.pop("inputs")
        ],
        outputs=[
            OutputDataset(
                namespace=d["namespace"],
                name=d["name"],
                facets={k: _facet(k, v) for k, v in d["facets"].items()},
            )
            for d in body.pop("outputs")
        ],
    )
    assert rebuilt.schemaURL == body.pop("schemaURL")
    assert not body, f"fields the spec's RunEvent does not have: {sorted(body)}"
    assert Serde.to_dict(rebuilt) == event
    return rebuilt


def _run(metrics: list[str], **kwargs: Any) -> ComputeRun:
    run = compute_run_create(
        metrics=metrics, start=START, end=END, enqueue=False, acting_user=None, **kwargs
    )
    return compute_run_execute(run_id=run.pk)


def _sink(settings: Settings, **config: str) -> None:
    settings.TALLY_OPENLINEAGE = {
        "url": "", "endpoint": "api/v1/lineage", "file": "", "namespace": "tally", **config
    }  # fmt: skip


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_file_sink_gets_start_and_complete_with_column_lineage(
    computed: Path, settings: Settings, tmp_path: Path
) -> None:
    """A run writes START then COMPLETE, one JSON event per line, both valid OpenLineage with
    the same run id; inputs are the tables read (schema typed from the contracts), the output
    is the stored values, whose columnLineage maps value, period_start and slice to columns."""
    sink = tmp_path / "events.jsonl"
    _sink(settings, file=str(sink))
    run = _run(["revenue"], slices=["account__plan"])
    assert run.status == "succeeded", run.error
    start, complete = _lines(sink)
    for event in (start, complete):
        validated(event)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"] == run_uuid(run)
    assert complete["job"] == start["job"]
    assert complete["job"]["name"] == "compute.day.revenue"
    assert "FROM main.invoices AS invoices" in complete["job"]["facets"]["sql"]["query"]
    inputs = {d["name"]: d for d in complete["inputs"]}
    assert set(inputs) == {"main.invoices", "main.accounts"}
    namespace = f"duckdb://{computed}"
    assert {d["namespace"] for d in complete["inputs"]} == {namespace}
    types = {
        f["name"]: f.get("type") for f in inputs["main.invoices"]["facets"]["schema"]["fields"]
    }
    assert types["amount"] == "number" and "status" in types
    (output,) = complete["outputs"]
    assert (output["namespace"], output["name"]) == ("tally", OUTPUT_DATASET)
    fields = output["facets"]["columnLineage"]["fields"]

    def inputs_of(name: str) -> set[tuple[str, str, str, str]]:
        return {
            (
                i["name"],
                i["field"],
                i["transformations"][0]["type"],
                i["transformations"][0]["subtype"],
            )
            for i in fields[name]["inputFields"]
        }

    assert ("main.invoices", "amount", "DIRECT", "IDENTITY") in inputs_of("value")
    assert ("main.invoices", "status", "INDIRECT", "FILTER") in inputs_of("value")
    assert inputs_of("period_start") == {("main.invoices", "issued_at", "DIRECT", "TRANSFORMATION")}
    assert inputs_of("slice") == {("main.accounts", "plan", "DIRECT", "IDENTITY")}
    nominal = complete["run"]["facets"]["nominalTime"]
    assert nominal["nominalStartTime"] == "2026-09-01T00:00:00Z"
    assert nominal["nominalEndTime"] == "2026-09-04T00:00:00Z"


def test_failing_run_writes_fail_with_the_error(
    computed: Path, settings: Settings, tmp_path: Path
) -> None:
    """A run that fails (an unknown slice dimension) ends with a FAIL event carrying the
    error code and message in the errorMessage run facet."""
    sink = tmp_path / "events.jsonl"
    _sink(settings, file=str(sink))
    run = _run(["revenue"], slices=["account__plann"])
    assert run.status == "failed"
    start, fail = _lines(sink)
    validated(fail)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    error = fail["run"]["facets"]["errorMessage"]
    assert error["message"].startswith("[unknown_dimension] ")
    assert error["programmingLanguage"] == "python"


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def lineage_server() -> Iterator[tuple[str, list[tuple[str, str, dict[str, Any]]]]]:
    """A real HTTP server on a free local port, in a thread, recording what is POSTed."""
    received: list[tuple[str, str, dict[str, Any]]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_http_endpoint_receives_the_run_events(
    computed: Path, settings: Settings, lineage_server: tuple[str, list[Any]]
) -> None:
    """With TALLY_OPENLINEAGE_URL set, START and COMPLETE are POSTed as JSON to the
    endpoint (Marquez's api/v1/lineage by default)."""
    url, received = lineage_server
    _sink(settings, url=url)
    run = _run(["events_tracked"])
    assert run.status == "succeeded", run.error
    assert [(path, kind.split(";")[0]) for path, kind, _ in received] == [
        ("/api/v1/lineage", "application/json")
    ] * 2
    events = [body for _, _, body in received]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        validated(event)


def test_unreachable_or_broken_sinks_never_fail_a_run(
    computed: Path, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A lineage server that refuses connections, or a file that cannot be written, is
    logged; the run still succeeds and stores its values."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _sink(settings, url=f"http://127.0.0.1:{port}")
    assert _run(["revenue"]).status == "succeeded"
    _sink(settings, file=str(tmp_path / "missing-dir" / "events.jsonl"))
    assert _run(["events_tracked"]).status == "succeeded"
    sent = [r for r in caplog.records if "OpenLineage" in r.getMessage()]
    assert {r.getMessage().split()[1] for r in sent} == {"START", "COMPLETE"}


def test_cli_and_api_show_and_resend_a_runs_events(
    computed: Path,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    client: Client,
    django_user_model: Any,
) -> None:
    """`tally lineage openlineage compute_run:ID` prints the run's events (one JSON per line)
    and --emit sends them again; the API returns them under ?node=compute_run:ID; an unknown
    run is a 404. Other nodes keep their column-lineage facet."""
    run = _run(["revenue"])  # no sink configured: nothing sent
    call_command("lineage", "openlineage", f"compute_run:{run.pk}")
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["eventType"] for e in printed] == ["START", "COMPLETE"]
    validated(printed[1])
    sink = tmp_path / "again.jsonl"
    _sink(settings, file=str(sink))
    call_command("lineage", "openlineage", str(run.pk), "--emit")
    assert "sent 2 event(s)" in capsys.readouterr().err
    assert [e["eventType"] for e in _lines(sink)] == ["START", "COMPLETE"]

    client.force_login(django_user_model.objects.create_user("auditor"))
    body = client.get("/api/v1/lineage/openlineage", {"node": f"compute_run:{run.pk}"}).json()
    assert body["run"] == run.pk and len(body["events"]) == 2
    missing = client.get("/api/v1/lineage/openlineage", {"node": "compute_run:999"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_run"
    facet = client.get("/api/v1/lineage/openlineage", {"node": "metric:revenue"}).json()
    assert "columnLineage" in facet["facets"]
