"""Issue 18, principle 8: SECRET_KEY and TALLY_PII_SALT are required outside demo/debug mode
(DEBUG=true, `tally demo`, the test settings), and per-tenant PII salts are an option."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.test import Client

from registry.services.access import access_profile_set, role_grant
from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from tally.env import DEV_SECRET_KEY, ConfigError, load_config
from tests.conftest import ROOT, demo_warehouse_at

KEY = secrets.token_urlsafe(50)
SALT = secrets.token_urlsafe(50)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY"),
        ({"SECRET_KEY": KEY}, "TALLY_PII_SALT"),
        ({"SECRET_KEY": KEY, "TALLY_PII_SALT": "short"}, "TALLY_PII_SALT"),
    ],
)
def test_production_start_up_requires_its_own_secrets(env: dict[str, str], variable: str) -> None:
    """Bug: without SECRET_KEY the app ran on the public development key, and the PII salt
    derived from it (pseudonyms reversed with a list of names)."""
    with pytest.raises(ConfigError) as error:
        load_config(env)
    assert error.value.variable == variable
    assert "demo/debug mode" in error.value.problem or "shorter" in error.value.problem
    assert error.value.hint and "secrets.token_urlsafe" in error.value.hint


def test_demo_and_debug_mode_run_on_development_secrets() -> None:
    """DEBUG=true and TALLY_DEMO (set by `tally demo` and the test settings) need nothing."""
    for env in ({"DEBUG": "true"}, {"TALLY_DEMO": "1"}):
        config = load_config(env)
        assert config.secret_key == DEV_SECRET_KEY and len(config.pii_salt) == 64
    config = load_config({"SECRET_KEY": KEY, "TALLY_PII_SALT": SALT})
    assert (config.secret_key, config.pii_salt, config.demo) == (KEY, SALT, False)


def _tally(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    # A production-like environment: none of the test settings' demo mode.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TALLY_", "DJANGO_")) and k not in ("DEBUG", "SECRET_KEY")
    }
    return subprocess.run(
        [sys.executable, "-m", "tally.cli", *args],
        cwd=ROOT,
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_start_up_stops_with_one_line_naming_the_missing_secret() -> None:
    """The real CLI: one configuration-error line naming the variable and how to make one;
    `tally demo` is demo mode and starts (its --help loads the settings)."""
    result = _tally("check")
    assert result.returncode == 2
    assert result.stderr.startswith("tally: configuration error: SECRET_KEY: unset")
    assert "hint: generate one" in result.stderr and len(result.stderr.splitlines()) == 1
    assert _tally("check", SECRET_KEY=KEY).stderr.startswith(
        "tally: configuration error: TALLY_PII_SALT: unset"
    )
    assert _tally("check", SECRET_KEY=KEY, TALLY_PII_SALT=SALT).returncode == 0
    assert _tally("demo", "--help").returncode == 0


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "demo.duckdb"
    demo_warehouse_at(path, events=3000, seed=7)
    return path


@pytest.mark.django_db
def test_per_tenant_salts_give_each_tenant_its_own_pseudonyms(
    client: Client, django_user_model: Any, settings: Any, warehouse_path: Path
) -> None:
    """Bug: one salt for all tenants, so the same person's pseudonym linked across tenants.
    With TALLY_PII_SALT_PER_TENANT the salt is HMAC(TALLY_PII_SALT, tenant)."""
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    settings.TALLY_PII_SALT = SALT
    settings.TALLY_PII_SALT_PER_TENANT = True
    con = duckdb.connect(str(warehouse_path), read_only=True)
    tenant, emails = con.execute(
        "SELECT a.tenant_id, list(u.email) FROM users AS u JOIN accounts AS a "
        "ON a.id = u.account_id GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    ).fetchone()
    con.close()
    analyst = django_user_model.objects.create_user("ana")
    role_grant(user=analyst, role="analyst")
    access_profile_set(user=analyst, attributes={"tenant_id": tenant})
    client.force_login(analyst)
    body = {"metrics": ["signups"], "group_by": ["user__email"], "limit": 50}
    response = client.post("/api/v1/query", body, content_type="application/json")
    assert response.status_code == 200, response.content
    got = {row[0] for row in response.json()["rows"]}
    own = hmac.new(SALT.encode(), f"tenant:{tenant}".encode(), hashlib.sha256).hexdigest()
    assert got
    assert got <= {hashlib.md5(f"{own}:{email}".encode()).hexdigest() for email in emails}
    assert not got & {hashlib.md5(f"{SALT}:{email}".encode()).hexdigest() for email in emails}
