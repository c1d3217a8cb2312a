"""BigQuery as a warehouse (issue 20): URLs, the official client's requests and failures.

No BigQuery runs here (a cloud service; the emulator on PyPI, bqemulator, pins an older
sqlglot than Tally's and would only replay sqlglot's own translation to DuckDB), so rows on
a real project are not checked in CI (README, "Warehouses"). What is tested is real: the URL
parser, credentials handling, and the real ``google-cloud-bigquery`` client against a closed
port, an endpoint answering 503, and a loopback endpoint whose answers are scripted in the
BigQuery REST API's JSON: the job Tally submits (default dataset, time limit, bytes cap, the
salt as a named query parameter, never in the SQL) and how it reads rows and errors back.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from semantic.compiler.policies import mask_expression
from semantic.warehouse.bigquery_session import query_parameters
from semantic.warehouse.cloud_open import bigquery_client, bigquery_client_args
from semantic.warehouse.config import WarehouseConfig, WarehouseURLError, parse_warehouse_url
from semantic.warehouse.connections import WarehouseUnavailable, warehouse_ping
from semantic.warehouse.execute import CancelScope, execute, stream
from tally.errors import WarehouseError
from tests.semantic.warehouse.scripted_http import Request, scripted_endpoint

pytest.importorskip("google.cloud.bigquery")

BASE = Path("/srv/tally")
SALT = "pepper-of-at-least-thirty-two-characters"


@pytest.fixture(autouse=True)
def _loopback_without_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not carry requests meant for the loopback endpoint."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def _url(port: int) -> WarehouseConfig:
    return parse_warehouse_url(
        f"bigquery://acme-data/sales?location=EU&maximum_bytes_billed=1000000000"
        f"&endpoint=http://127.0.0.1:{port}",
        base_dir=BASE,
    )


# --- the URL and the client ----------------------------------------------------------------


def test_a_bigquery_url_names_project_dataset_and_options() -> None:
    config = parse_warehouse_url(
        "bigquery://acme-data/sales?location=EU&credentials=/etc/tally/bq.json", base_dir=BASE
    )
    assert (config.engine, config.dialect) == ("bigquery", "bigquery")
    assert (config.host, config.database) == ("acme-data", "sales")
    assert config.display_url == "bigquery://acme-data/sales"
    assert bigquery_client_args(config) == {
        "project": "acme-data",
        "location": "EU",
        "client_options": None,
    }


@pytest.mark.parametrize(
    ("url", "problem", "hint"),
    [
        ("bigquery://acme-data", "no dataset in the URL", "bigquery://project/dataset"),
        ("bigquery://acme-data/a/b", "is not one dataset", "bigquery://project/dataset"),
        ("bigquery://me:key@acme-data/sales", "names no user or password", "credentials="),
        ("bigquery://acme-data/sales?region=EU", "unknown bigquery URL option region", "location"),
        ("bigquery://acme-data/sales?maximum_bytes_billed=1e9", "not a whole number", None),
        ("bigquery://acme-data/sales?endpoint=ftp://x", "is not an http(s) URL", "https://"),
    ],
)
def test_a_bad_bigquery_url_says_what_is_wrong(url: str, problem: str, hint: str | None) -> None:
    with pytest.raises(WarehouseURLError) as caught:
        parse_warehouse_url(url, base_dir=BASE)
    assert problem in caught.value.problem
    assert "key@" not in str(caught.value)
    if hint is not None:
        assert hint in (caught.value.hint or "")


def test_a_local_endpoint_gets_a_client_without_credentials() -> None:
    client = bigquery_client(_url(9050))
    try:
        assert (client.project, client.location) == ("acme-data", "EU")
        assert client._connection.API_BASE_URL == "http://127.0.0.1:9050"
    finally:
        client.close()


def test_credentials_that_are_missing_or_not_a_key_are_warehouse_unavailable(
    tmp_path: Path,
) -> None:
    absent = parse_warehouse_url(
        f"bigquery://acme-data/sales?credentials={tmp_path}/absent.json", base_dir=BASE
    )
    with pytest.raises(WarehouseError) as caught:
        execute(absent, "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_unavailable"
    assert "absent.json does not exist" in str(caught.value.warehouse_message)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"type": "service_account", "private_key": "-----sekrit"}))
    config = parse_warehouse_url(f"bigquery://acme-data/sales?credentials={wrong}", base_dir=BASE)
    with pytest.raises(WarehouseError) as caught:
        execute(config, "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_unavailable"
    assert "is not a service-account key" in str(caught.value.warehouse_message)
    assert "sekrit" not in str(caught.value.warehouse_message)


def test_plain_http_to_a_remote_endpoint_is_refused_before_any_request() -> None:
    config = parse_warehouse_url(
        "bigquery://acme-data/sales?endpoint=http://bigquery.example.com", base_dir=BASE
    )
    with pytest.raises(WarehouseError) as caught:
        execute(config, "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_unavailable"
    assert "HTTPS is required" in str(caught.value.warehouse_message)


# --- failures of the service ---------------------------------------------------------------


def test_an_unreachable_endpoint_is_warehouse_unavailable_within_the_time_limit() -> None:
    with pytest.raises(WarehouseError) as caught:
        execute(_url(1), "SELECT 1", timeout_s=2)
    assert caught.value.code == "warehouse_unavailable"
    assert "Connection refused" in str(caught.value.warehouse_message)


def test_an_endpoint_answering_503_is_warehouse_unavailable() -> None:
    def overloaded(request: Request) -> tuple[int, dict[str, Any]]:
        error = {"code": 503, "message": "backend error", "errors": [{"reason": "backendError"}]}
        return 503, {"error": error}

    with scripted_endpoint(overloaded) as endpoint, pytest.raises(WarehouseError) as caught:
        execute(_url(endpoint.port), "SELECT 1", timeout_s=2)
    assert caught.value.code == "warehouse_unavailable"
    assert endpoint.to("/jobs")  # the real client did submit the job


# --- a scripted project: the job Tally submits and how it reads the answers ----------------

FIELDS = [
    {"name": "n", "type": "INTEGER", "mode": "NULLABLE"},
    {"name": "amount", "type": "NUMERIC", "mode": "NULLABLE"},
    {"name": "at", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "payload", "type": "JSON", "mode": "NULLABLE"},
    {"name": "ok", "type": "BOOLEAN", "mode": "NULLABLE"},
    {"name": "day", "type": "DATE", "mode": "NULLABLE"},
]
ROWS = [
    {
        "f": [
            {"v": "7"},
            {"v": "1.50"},
            {"v": "1700000000000000"},
            {"v": '{"k": 1}'},
            {"v": "true"},
            {"v": "2022-01-08"},
        ]
    },
    {"f": [{"v": None}] * 6},
]


class Project:
    """Answers like the BigQuery API: a job done at once (or failed), then its rows."""

    def __init__(self, error: dict[str, Any] | None = None) -> None:
        self.error = error

    def __call__(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.method == "POST" and request.path.startswith("/bigquery/v2/projects/"):
            job = request.json()
            job["status"] = {"state": "DONE"}
            if self.error is not None:
                job["status"] |= {"errorResult": self.error, "errors": [self.error]}
            return 200, job
        if "/queries/" in request.path:
            return 200, {
                "jobComplete": True,
                "jobReference": {"projectId": "acme-data", "jobId": "j", "location": "EU"},
                "totalRows": str(len(ROWS)),
                "schema": {"fields": FIELDS},
                "rows": ROWS,
            }
        return 404, {"error": {"code": 404, "message": f"no {request.path}"}}


def test_the_job_carries_limits_dataset_and_the_salt_as_a_parameter() -> None:
    with scripted_endpoint(Project()) as endpoint:
        result = execute(
            _url(endpoint.port),
            "SELECT @tally_pii_salt",
            timeout_s=9.5,
            variables={"tally_pii_salt": SALT},
        )
    job = endpoint.to("/jobs")[0].json()
    query = job["configuration"]["query"]
    assert query["query"] == "SELECT @tally_pii_salt"
    assert query["queryParameters"] == [
        {
            "name": "tally_pii_salt",
            "parameterType": {"type": "STRING"},
            "parameterValue": {"value": SALT},
        }
    ]
    assert query["defaultDataset"] == {"projectId": "acme-data", "datasetId": "sales"}
    assert (query["maximumBytesBilled"], query["useLegacySql"]) == ("1000000000", False)
    assert job["configuration"]["jobTimeoutMs"] == "10000"
    assert job["jobReference"]["location"] == "EU"
    assert job["jobReference"]["jobId"].startswith("tally_")
    assert [(c.name, c.kind) for c in result.columns] == [
        ("n", "integer"),
        ("amount", "decimal"),
        ("at", "timestamp"),
        ("payload", "json"),
        ("ok", "boolean"),
        ("day", "date"),
    ]
    at = dt.datetime(2023, 11, 14, 22, 13, 20)  # naive UTC, as on every engine
    assert result.rows == (
        (7, Decimal("1.50"), at, '{"k":1}', True, dt.date(2022, 1, 8)),
        (None,) * 6,
    )


def test_a_rejected_query_is_warehouse_error_with_bigquerys_reason() -> None:
    error = {"reason": "invalidQuery", "message": "Unrecognized name: plan at [1:8]"}
    with scripted_endpoint(Project(error)) as endpoint, pytest.raises(WarehouseError) as caught:
        execute(_url(endpoint.port), "SELECT plan", timeout_s=5)
    assert caught.value.code == "warehouse_error"
    assert caught.value.details["driver_code"] == "invalidQuery"
    assert "Unrecognized name: plan" in str(caught.value.warehouse_message)
    assert "http://" not in str(caught.value.warehouse_message)


def test_a_job_stopped_at_its_time_limit_is_warehouse_timeout() -> None:
    error = {"reason": "stopped", "message": "Job execution was cancelled: Job timed out"}
    with scripted_endpoint(Project(error)) as endpoint, pytest.raises(WarehouseError) as caught:
        execute(_url(endpoint.port), "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_timeout"


def test_bytes_over_the_cap_are_warehouse_error() -> None:
    error = {
        "reason": "bytesBilledLimitExceeded",
        "message": "Query exceeded limit for bytes billed: 1000000000.",
    }
    with scripted_endpoint(Project(error)) as endpoint, pytest.raises(WarehouseError) as caught:
        execute(_url(endpoint.port), "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_error"
    assert caught.value.details["driver_code"] == "bytesBilledLimitExceeded"


# --- the SQL -------------------------------------------------------------------------------


def test_the_compiled_salt_is_the_query_parameter_tally_binds() -> None:
    """The compiler reads ``@tally_pii_salt``; the job binds a parameter of that name."""
    masked = mask_expression(exp.column("email", table="u"), "hash", "bigquery")
    sql = sqlglot.select(masked).from_("u").sql("bigquery")
    tree = sqlglot.parse_one(sql, read="bigquery")
    in_sql = {p.name for p in tree.find_all(exp.Parameter)}
    bound = {p.name for p in query_parameters({"tally_pii_salt": SALT}, None)}
    assert in_sql == bound == {"tally_pii_salt"}


def test_positional_parameters_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="named parameters"):
        query_parameters({}, ["pro"])


class RunningUntilCancelled(Project):
    """The job runs until cancelled; the first poll of its results is when a client cancels."""

    def __init__(self, scope: CancelScope) -> None:
        super().__init__()
        self.scope = scope
        self.job: dict[str, Any] = {}
        self.cancelled = False
        self.polls = 0
        self.ended_by = ""

    def _state(self) -> dict[str, Any]:
        if not (self.cancelled or self.polls > 20):  # never hang: give up as a timeout would
            return {"state": "RUNNING"}
        self.ended_by = self.ended_by or ("cancel" if self.cancelled else "giving up")
        stopped = {"reason": "stopped", "message": "Job execution was cancelled"}
        return {"state": "DONE", "errorResult": stopped, "errors": [stopped]}

    def __call__(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.method == "POST" and request.path.split("?")[0].endswith("/cancel"):
            self.cancelled = True
            return 200, {"job": {**self.job, "status": self._state()}}
        if request.method == "POST":
            self.job = request.json()
            return 200, {**self.job, "status": self._state()}
        if "/queries/" in request.path:
            self.polls += 1
            self.scope.cancel()  # from the server's thread, as a CancelRequest would
            done = self._state()["state"] == "DONE"
            return 200, {"jobComplete": done, "jobReference": self.job["jobReference"]}
        return 200, {**self.job, "status": self._state()}


def test_cancel_cancels_the_running_job() -> None:
    scope = CancelScope()
    project = RunningUntilCancelled(scope)
    with scripted_endpoint(project) as endpoint, pytest.raises(WarehouseError):
        _read_all(_url(endpoint.port), scope)
    assert scope.requested
    assert project.ended_by == "cancel"  # the job stopped because Tally cancelled it


def test_the_health_check_runs_a_job_and_reports_a_dead_endpoint() -> None:
    with scripted_endpoint(Project()) as endpoint:
        warehouse_ping(_url(endpoint.port), timeout_s=5)
        assert endpoint.to("/jobs")[0].json()["configuration"]["query"]["query"] == "SELECT 1"
    with pytest.raises(WarehouseUnavailable, match="did not answer SELECT 1"):
        warehouse_ping(_url(1), timeout_s=1)


def _read_all(config: WarehouseConfig, scope: CancelScope) -> None:
    with stream(config, "SELECT 1", timeout_s=20, cancel=scope) as (_, batches):
        list(batches)
