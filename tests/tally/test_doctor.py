"""`tally doctor` (issue 23): fails on an unsafe deployment, passes a sound one."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, require_service


def doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "-m", "tally.cli", "doctor"], cwd=ROOT, env={**clean, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def production_env(tmp_path: Path) -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TALLY_PII_SALT": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'registry.sqlite3'}",
        # No warehouse file: that check fails too; each test asserts the findings it is about.
        "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
    }


def test_doctor_fails_on_per_process_rate_limits_and_a_missing_broker(
    tmp_path: Path,
) -> None:
    """Issue 23: 4 web workers let 239 of 300 requests through a 60/min limit because the
    cache was per process; the doctor names it (and the missing broker) and exits 1."""
    done = doctor(production_env(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "fail  rate_limit_cache: rate limits and sign-in lockouts count per process" in (
        done.stdout
    )
    assert "fail  broker: no broker" in done.stdout
    assert "hint: set TALLY_CACHE_URL" in done.stdout


def test_doctor_passes_the_shared_services_it_can_reach(
    tmp_path: Path,
) -> None:
    """With Redis for cache and broker, the cache and broker checks pass."""
    require_service("redis")
    env = {
        **production_env(tmp_path),
        "TALLY_CACHE_URL": "redis://127.0.0.1:6379/14",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
    }
    done = doctor(env)
    assert "  ok  rate_limit_cache: shared cache RedisCache" in done.stdout, done.stdout
    assert "  ok  broker:" in done.stdout and "  ok  secret_key:" in done.stdout
    # Not migrated: the registry check says so and the command fails.
    assert "fail  migrations:" in done.stdout and done.returncode == 1
