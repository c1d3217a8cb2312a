"""Request ids, JSON logs, JSON 500s on API paths and the /ops/metrics endpoint (issue 23)."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from tally.logs import JsonFormatter, RequestIdFilter, request_id_var


@pytest.mark.urls("tests.tally.boom_urls")
def test_an_api_500_is_json_logged_with_its_traceback_and_request_id(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 23: API 500s came back as HTML and nothing was logged with DEBUG off."""
    client.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="tally.request"):
        response = client.get("/api/v1/boom", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response["X-Request-ID"] == "req-42"
    error = response.json()["error"]
    assert error["code"] == "internal_error" and "req-42" in error["message"]
    assert "a bug" not in json.dumps(error)  # the exception text stays in the log
    (record,) = [r for r in caplog.records if r.name == "tally.request"]
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert RequestIdFilter().filter(record) and record.request_id == "req-42"


def test_a_request_gets_an_id_and_an_unsafe_offered_id_is_replaced(client: Client) -> None:
    """Each response names its request id; a client id with spaces or newlines (log
    injection) is not echoed."""
    fresh = client.get("/healthz")["X-Request-ID"]
    assert len(fresh) == 32
    offered = client.get("/healthz", HTTP_X_REQUEST_ID="a b\nc")["X-Request-ID"]
    assert offered != "a b\nc" and len(offered) == 32


def test_json_formatter_writes_one_object_with_request_id_and_traceback() -> None:
    token = request_id_var.set("abc123")
    try:
        try:
            raise ValueError("nope")
        except ValueError:
            record = logging.LogRecord("tally.x", logging.ERROR, __file__, 1, "failed %s", ("run",),
                                       exc_info=__import__("sys").exc_info())  # fmt: skip
        record.run_id = 7
        RequestIdFilter().filter(record)
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    body = json.loads(line)
    assert "\n" not in line
    assert body["message"] == "failed run" and body["request_id"] == "abc123"
    assert body["run_id"] == 7 and "ValueError: nope" in body["exc"]


@pytest.mark.django_db
def test_metrics_need_the_token_or_an_admin(client: Client, settings: Settings) -> None:
    """/ops/metrics is refused (403, JSON) without the scrape token; with it, the exposition has
    request latency and run states."""
    settings.TALLY_METRICS_TOKEN = "s3cret-token"
    assert client.get("/ops/metrics").status_code == 403
    assert client.get("/ops/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    client.get("/healthz")
    response = client.get("/ops/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    text = response.content.decode()
    assert "tally_http_request_seconds_bucket" in text
    assert 'tally_compute_runs{state="queued"} 0.0' in text


@pytest.mark.django_db
def test_metrics_without_a_token_configured_are_admin_only(
    client: Client, settings: Settings, admin_user: object
) -> None:
    settings.TALLY_METRICS_TOKEN = ""
    assert client.get("/ops/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403
    client.force_login(admin_user)  # type: ignore[arg-type]
    assert client.get("/ops/metrics").status_code == 200
