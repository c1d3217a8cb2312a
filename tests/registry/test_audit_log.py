"""The audit log: append-only (model and database), what compile/query/token use write,
the /api/v1/audit-log filters and the `tally audit-log` export."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from registry.models import AuditEvent, AuditLogImmutable, Release
from registry.services.access import access_profile_set, role_grant, token_create
from registry.services.audit import audit_event_create
from tests.registry.proposals_setup import metric_yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def event() -> AuditEvent:
    return audit_event_create(actor=None, action="test.event", payload={"n": 1})


def test_the_model_refuses_to_change_or_delete_a_row(event: AuditEvent) -> None:
    event.action = "rewritten"
    with pytest.raises(AuditLogImmutable):
        event.save()
    with pytest.raises(AuditLogImmutable):
        event.delete()
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.filter(pk=event.pk).update(action="rewritten")
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


def test_the_database_refuses_an_update_behind_the_orms_back(event: AuditEvent) -> None:
    """A hand-written UPDATE hits the trigger (SQLite and PostgreSQL)."""
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE registry_auditevent SET action = 'rewritten' WHERE id = %s", [event.pk]
        )
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


@pytest.mark.postgres_only
def test_postgres_refuses_a_delete_behind_the_orms_back(event: AuditEvent) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM registry_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


# --------------------------------------------------------------------------- compile and query


@pytest.fixture
def analyst_client(client: Client, fixtures_registry: None, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("ana")
    role_grant(user=user, role="analyst")
    # An analyst reads her own tenant's rows (the fixtures' row policy on account).
    access_profile_set(user=user, attributes={"tenant_id": "t1"})
    client.force_login(user)
    return client


def test_compile_and_query_append_who_what_sql_hash_and_rows(analyst_client: Client) -> None:
    body = {"metrics": ["revenue"], "group_by": ["metric_time__month"], "limit": 5}
    compiled = analyst_client.post("/api/v1/compile", body, content_type="application/json")
    assert compiled.status_code == 200, compiled.json()
    answered = analyst_client.post("/api/v1/query", body, content_type="application/json")
    assert answered.status_code == 200, answered.json()

    compile_row = AuditEvent.objects.get(action="query.compile")
    assert compile_row.actor.username == "ana" and compile_row.principal == "user:ana"
    assert compile_row.sql_hash == hashlib.sha256(compiled.json()["sql"].encode()).hexdigest()
    assert compile_row.payload["metrics"] == ["revenue"]
    assert compile_row.payload["principal"]["unrestricted"] is False
    assert compile_row.release.name == compiled.json()["release"]
    assert compile_row.ip == "127.0.0.1"

    run_row = AuditEvent.objects.get(action="query.run")
    rows = answered.json()["rows"]
    assert run_row.row_count == len(rows) == 5
    assert run_row.sql_hash == hashlib.sha256(answered.json()["sql"].encode()).hexdigest()


def test_a_refused_query_is_audited_with_its_error(analyst_client: Client) -> None:
    response = analyst_client.post(
        "/api/v1/compile", {"metrics": ["revenu"]}, content_type="application/json"
    )
    assert response.status_code == 400
    row = AuditEvent.objects.get(action="query.compile_failed")
    assert row.payload["error"]["code"] == "unknown_metric" and row.sql_hash is None


def test_rows_written_through_a_token_name_it(
    client: Client, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A proposal created with a token: the service's own audit row carries the token."""
    created = token_create(acting_user=None, scopes=["propose"], user=owner, name="ci-bot")
    files = {"revenue.yml": metric_yaml("revenue", {"label: Revenue": "label: Net revenue"})}
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            "/api/v1/proposals",
            {"title": "relabel", "files": files},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {created.raw}",
        )
    assert response.status_code == 201, response.json()
    row = AuditEvent.objects.filter(action__startswith="proposal.").first()
    assert row is not None and row.token_id == created.token.pk
    assert row.principal == "token:ci-bot" and row.actor == owner


# --------------------------------------------------------------------------- API and CLI


@pytest.fixture
def history(registry_r1: Release) -> None:
    audit_event_create(actor=None, action="query.run", object_kind="query", row_count=3)
    audit_event_create(actor=None, action="query.compile", object_kind="query")
    audit_event_create(actor=None, action="token.create", object_kind="token")


def test_auditors_read_and_filter_the_log(client: Client, history: None, sign_in: Any) -> None:
    auditor = sign_in("audrey", "auditor")
    family = auditor.get("/api/v1/audit-log?action=query.").json()
    assert [e["action"] for e in family["results"]] == ["query.compile", "query.run"]
    exact = auditor.get("/api/v1/audit-log?action=token.create").json()
    assert exact["count"] == 1
    bad = auditor.get("/api/v1/audit-log?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z")
    assert bad.status_code == 400 and bad.json()["error"]["location"] == "until"


def test_an_analyst_may_not_read_the_log(client: Client, history: None, sign_in: Any) -> None:
    response = sign_in("ana", "analyst").get("/api/v1/audit-log")
    assert response.status_code == 403
    assert "view_audit_log" in response.json()["error"]["message"]


def test_cli_exports_json_and_csv(history: None) -> None:
    out = io.StringIO()
    call_command("audit_log", "--action", "query.", "--format", "json", stdout=out)
    rows = json.loads(out.getvalue())
    assert [r["action"] for r in rows] == ["query.compile", "query.run"]
    assert rows[1]["row_count"] == 3
    out = io.StringIO()
    call_command("audit_log", "--since", "1d", "--format", "csv", stdout=out)
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert {"query.run", "query.compile", "token.create"} <= {r["action"] for r in table}
    assert json.loads(table[0]["payload"]) is not None


def test_cli_compile_is_audited_and_runs_as_a_user(
    fixtures_registry: None, django_user_model: Any, capsys: Any
) -> None:
    """`tally compile --as-user` compiles for that user's principal and records it."""
    user = django_user_model.objects.create_user("ana")
    role_grant(user=user, role="analyst")
    # An analyst reads her own tenant's rows (the fixtures' row policy on account).
    access_profile_set(user=user, attributes={"tenant_id": "t1"})
    call_command("compile", "--metrics", "revenue", "--as-user", "ana", stdout=io.StringIO())
    row = AuditEvent.objects.get(action="query.compile")
    assert (row.actor, row.principal) == (user, "user:ana")
    call_command("compile", "--metrics", "revenue", stdout=io.StringIO())
    operator = AuditEvent.objects.filter(action="query.compile").first()
    assert operator is not None and operator.actor is None
    assert operator.payload["principal"] is None
    with pytest.raises(SystemExit):
        call_command("compile", "--metrics", "revenue", "--as-user", "ghost")
    assert "as_user: error[unknown_user]: no user 'ghost'" in capsys.readouterr().err
