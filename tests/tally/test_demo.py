"""`tally demo` end to end, in real subprocesses, on a tiny warehouse."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_tally

pytestmark = pytest.mark.registry_db


def _env(registry_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": registry_url,
        "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
        "CELERY_BROKER_URL": "",
    }


def test_demo_sets_up_everything_then_reuses_it(registry_url: str, tmp_path: Path) -> None:
    """First run migrates, builds the warehouse and the admin; the second reuses them."""
    env = _env(registry_url, tmp_path)
    before = dt.date.today()
    first = run_tally("demo", "--events", "2000", "--no-serve", env=env)
    assert first.returncode == 0, first.stderr
    assert "warehouse   built" in first.stdout
    assert "definitions release r1: " in first.stdout
    assert "demo admin  created" in first.stdout
    # The demo's daily series, computed once, after a replay as of two days earlier (at 2,000
    # events the last week may hold no late arrival; at the demo's 200k it holds hundreds).
    assert "values of 45 metrics by day and month" in first.stdout
    assert "revised by late arrivals" in first.stdout and "replay run" not in first.stdout
    # Data up to yesterday, a planted tracking outage, and one audit batch over it all.
    # (yesterday as of the run's start or end: the test may straddle midnight)
    yesterdays = {before - dt.timedelta(days=1), dt.date.today() - dt.timedelta(days=1)}
    assert any(f"up to {day}" in first.stdout for day in yesterdays), first.stdout
    assert "events lost)" in first.stdout
    assert re.search(r"audits +\d+ checks, \d+ failing", first.stdout), first.stdout
    assert "login: admin / tally-demo" in first.stdout
    # The seven team members of fixtures/governance.yml read every tenant (the viewer does not).
    assert "7 auditor grant(s)" in first.stdout
    assert (tmp_path / "warehouse.duckdb").exists()

    second = run_tally("demo", "--events", "2000", "--no-serve", env=env)
    assert second.returncode == 0, second.stderr
    assert "warehouse   reusing" in second.stdout
    assert "definitions up to date" in second.stdout
    assert "demo admin  exists" in second.stdout
    assert "values      reusing" in second.stdout
    # "finishes quickly", said by what it did rather than a stopwatch: nothing is rebuilt.
    assert "audits      reusing" in second.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_demo_serves_the_ui_health_and_api_docs(registry_url: str, tmp_path: Path) -> None:
    """`tally demo` serves /, /healthz, the OpenAPI schema and docs with static assets."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tally.cli",
            "demo",
            "--events",
            "2000",
            "--addr",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env={**os.environ, **_env(registry_url, tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"demo exited early:\n{proc.stdout.read() if proc.stdout else ''}")
            try:
                status, body = _get(f"{base}/healthz")
                break
            except OSError:
                time.sleep(0.3)
        assert status == 200, body
        assert json.loads(body)["status"] == "ok"
        status, body = _get(f"{base}/")
        assert status == 200 and b"Tally" in body
        status, body = _get(f"{base}/static/tally/tally.css")
        assert status == 200 and b"--accent" in body
        status, body = _get(f"{base}/api/schema/")
        assert status == 200 and b"openapi" in body
        status, body = _get(f"{base}/api/docs/")
        assert status == 200 and b"swagger" in body.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.django_db
def test_demo_users_can_sign_in_including_the_viewer() -> None:
    """The viewer is created with an empty password field; the demo still gives it one."""
    from django.contrib.auth import authenticate, get_user_model

    from tally.management.commands.demo import DEMO_PASSWORD, DEMO_VIEWER, Command

    get_user_model().objects.create(username=DEMO_VIEWER)  # password "" as get_or_create leaves it
    assert "password(s) set" in Command()._users()
    assert authenticate(username=DEMO_VIEWER, password=DEMO_PASSWORD) is not None
    # A second run changes nothing: a password once set is kept.
    assert "password(s) set" not in Command()._users()
