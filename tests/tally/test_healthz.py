"""/healthz reports registry, warehouse and broker, and is non-200 when one is down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT, postgres_reader_url, require_service


@pytest.fixture
def duckdb_warehouse(tmp_path: Path, settings: SettingsWrapper) -> Path:
    path = tmp_path / "wh.duckdb"
    duckdb.connect(str(path)).close()
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=tmp_path)
    return path


@pytest.mark.django_db
def test_healthz_is_200_when_everything_answers(
    client: Client, duckdb_warehouse: Path, settings: SettingsWrapper, django_user_model: Any
) -> None:
    """All three checks pass (their details shown to a signed-in admin) with an embedded warehouse and in-process tasks."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    client.force_login(django_user_model.objects.create_superuser("root"))
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"registry", "warehouse", "broker"}
    assert all(c["ok"] for c in body["checks"].values())
    assert body["checks"]["broker"]["detail"].startswith("in-process")


@pytest.mark.django_db
def test_healthz_reaches_a_real_redis_broker(
    client: Client, duckdb_warehouse: Path, settings: SettingsWrapper, redis_url: str
) -> None:
    """With CELERY_BROKER_URL on Redis, the broker check connects for real."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = redis_url
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"]["ok"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(
    client: Client, duckdb_warehouse: Path, settings: SettingsWrapper
) -> None:
    """A broker on a closed port fails the check, and the status is 503."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["registry"]["ok"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_the_warehouse_file_is_missing(
    client: Client, tmp_path: Path, settings: SettingsWrapper, django_user_model: Any
) -> None:
    """A missing DuckDB file is reported, not silently created empty."""
    client.force_login(django_user_model.objects.create_superuser("root"))
    missing = tmp_path / "nope.duckdb"
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{missing}", base_dir=tmp_path)
    response = client.get("/healthz")
    assert response.status_code == 503
    check = response.json()["checks"]["warehouse"]
    assert check["ok"] is False and "does not exist" in check["detail"]
    assert not missing.exists()


@pytest.mark.django_db
def test_healthz_checks_a_postgres_warehouse(
    client: Client, settings: SettingsWrapper, tmp_path: Path
) -> None:
    """A PostgreSQL warehouse that answers is healthy; a wrong port is not."""
    require_service("postgres")
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # The README's read-only role (Tally refuses to query as the superuser, issue 18).
    settings.WAREHOUSE = parse_warehouse_url(
        postgres_reader_url("postgres", schemas=()), base_dir=tmp_path
    )
    assert client.get("/healthz").status_code == 200
    settings.WAREHOUSE = parse_warehouse_url(
        "postgresql://postgres@127.0.0.1:1/postgres", base_dir=tmp_path
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["warehouse"]["ok"] is False


def test_healthz_is_503_when_the_registry_is_down(tmp_path: Path) -> None:
    """A registry database that cannot be reached makes /healthz fail (real process)."""
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/healthz');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    wh = tmp_path / "wh.duckdb"
    duckdb.connect(str(wh)).close()
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tally.settings",
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/tally",
            "WAREHOUSE_URL": f"duckdb:///{wh}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["status"] == 503
    assert out["body"]["checks"]["registry"]["ok"] is False
    assert out["body"]["checks"]["warehouse"]["ok"] is True
