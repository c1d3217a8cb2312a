"""Schemathesis over the OpenAPI schema, in-process against the WSGI app: no input gives a
500, and no operation answers an anonymous caller with anything but 401/403."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.conf import LazySettings
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, given, settings

from registry.models import Release
from registry.services.access import token_create
from semantic.warehouse.config import parse_warehouse_url
from tally.wsgi import application
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db
# Examples per operation: enough to reach validation and lookups, small enough that the
# whole fuzz stays well under a minute on two shared cores.
AUTHENTICATED_EXAMPLES = 6
ANONYMOUS_EXAMPLES = 2


def _operations() -> list[Any]:
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40  # the walk sees the whole API
    return operations


def _fuzz(operations: list[Any], examples: int, headers: dict[str, str], check: Any) -> None:
    for operation in operations:
        _fuzz_one(operation, examples, headers, check)


def _fuzz_one(operation: Any, examples: int, headers: dict[str, str], check: Any) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        check(case, case.call(app=application, headers=headers))

    run()


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """The real WSGI handler closes the database connection after each request, which would
    end the test's transaction; Django's test client disconnects the same handler."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_registry(registry_r1: Release, settings: LazySettings, keep_test_connection: None) -> None:
    # The in-memory warehouse answers compile and query without any tables: queries fail
    # as a 4xx/502 from the warehouse, which is what a no-500 check wants to see.
    settings.WAREHOUSE = parse_warehouse_url("duckdb:///:memory:", base_dir=ROOT)
    settings.TALLY_RATE_LIMITS = {}
    cache.clear()


def test_no_input_gives_a_500(fuzz_registry: None, django_user_model: Any) -> None:
    admin = django_user_model.objects.create_superuser("root", password="x" * 12)
    raw = token_create(
        acting_user=None,
        scopes=["read", "compile", "query", "propose", "audit", "pii"],
        user=admin,
    ).raw
    failures: list[str] = []

    def check(case: Any, response: Any) -> None:
        if response.status_code >= 500 and response.status_code != 502:
            failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
        if response.status_code >= 400 and response.headers.get("Content-Type", [""])[0] == (
            "application/json"
        ):
            assert "error" in response.json(), (case.method, case.formatted_path)

    _fuzz(_operations(), AUTHENTICATED_EXAMPLES, {"Authorization": f"Bearer {raw}"}, check)
    assert not failures, failures


def test_anonymous_callers_are_refused_everywhere(fuzz_registry: None) -> None:
    """No operation in the schema is reachable without a token or a session."""
    leaks: list[str] = []

    def check(case: Any, response: Any) -> None:
        try:
            resolve(case.formatted_path)
        except Resolver404:
            return  # no view behind the generated path: Django's own 404, nothing served
        if response.status_code not in (401, 403):
            leaks.append(f"{case.method} {case.formatted_path}: {response.status_code}")

    _fuzz(_operations(), ANONYMOUS_EXAMPLES, {}, check)
    assert not leaks, leaks
