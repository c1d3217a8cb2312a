"""`tally compile/query --principal-attr … --no-pii`: the operator's view of row policies and
PII masks (real subprocesses, real warehouse); the salt never leaves the process."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator

import duckdb
import pytest

from tests.conftest import MIGRATE, ROOT, demo_warehouse_at, fresh_registry, run_tally

pytestmark = pytest.mark.registry_db

SALT = "cli-salt-3b1f0c9a"
EMAIL_DIMENSION = """\
      - name: email
        type: categorical
"""
EMAIL_MEASURE = """\
      - name: distinct_emails
        agg: count_distinct
        expr: email
"""
EMAIL_METRIC = """\
metrics:
  - name: distinct_user_emails
    type: simple
    type_params: {measure: distinct_emails}
    config: {meta: {owner: growth-analytics, domain: growth, tier: experimental}}
"""


# The module's tests only read what this set up (three `tally` processes): set up once.
@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    registry_template: Callable[..., str],
) -> Iterator[dict[str, str]]:
    tmp_path = tmp_path_factory.mktemp("cli-principal")
    defs = tmp_path / "defs"
    shutil.copytree(ROOT / "fixtures", defs)
    users = defs / "semantic_models" / "users.yml"
    text = users.read_text()
    assert EMAIL_DIMENSION in text  # fixtures/ expose email as a (masked) dimension
    users.write_text(text.rstrip("\n") + "\n" + EMAIL_MEASURE)
    (defs / "metrics" / "pii.yml").write_text(EMAIL_METRIC)
    warehouse = demo_warehouse_at(tmp_path / "wh.duckdb", events=3000, seed=7)
    # A copy of a registry `tally migrate` made; the definitions are this module's own.
    migrated = registry_template(MIGRATE)
    with fresh_registry(tmp_path, request.node.nodeid, migrated) as registry_url:
        env = {
            "DATABASE_URL": registry_url,
            "WAREHOUSE_URL": f"duckdb:///{warehouse}",
            "TALLY_PII_SALT": SALT,
        }
        result = run_tally("sync", str(defs), env=env)
        assert result.returncode == 0, result.stderr
        yield env


def _tenants(env: dict[str, str]) -> list[tuple[str, int]]:
    path = env["WAREHOUSE_URL"].removeprefix("duckdb:///")
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(
            "SELECT a.tenant_id, count(*) FROM users AS u JOIN accounts AS a "
            "ON u.account_id = a.id GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2"
        ).fetchall()
    finally:
        con.close()


def test_query_as_a_tenant_sees_only_its_rows(env: dict[str, str]) -> None:
    """--principal-attr tenant_id=… returns that tenant's signups only, grouped by tenant."""
    tenants = _tenants(env)
    assert len(tenants) == 2
    for tenant, users in tenants:
        result = run_tally(
            "query", "--metrics", "signups", "--group-by", "account__tenant_id",
            "--principal-attr", f"tenant_id={tenant}", "--format", "json", env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["rows"] == [[tenant, users]]


def test_no_pii_masks_emails_and_never_prints_the_salt(env: dict[str, str]) -> None:
    """--no-pii groups by pseudonyms; neither the SQL shown nor any output holds the salt."""
    tenant, users = _tenants(env)[0]
    result = run_tally(
        "query", "--metrics", "signups,distinct_user_emails", "--group-by", "user__email",
        "--principal-attr", f"tenant_id={tenant}", "--no-pii", "--show-sql",
        "--format", "json", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert SALT not in result.stdout and SALT not in result.stderr
    # --show-sql writes the SQL to stderr: stdout is the JSON alone.
    assert "GETVARIABLE('tally_pii_salt')" in result.stderr
    body = json.loads(result.stdout)
    assert len(body["rows"]) == users
    for pseudonym, signups, distinct in body["rows"]:
        assert re.fullmatch(r"[0-9a-f]{32}", pseudonym) and signups == distinct == 1
    assert "@" not in result.stdout


def test_a_filter_on_a_masked_column_exits_1(env: dict[str, str]) -> None:
    result = run_tally(
        "compile", "--metrics", "signups", "--no-pii",
        "--where", "{{ Dimension('user__email') }} = 'a@b.example'", env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert "error[masked_column]" in result.stderr


def test_no_binding_means_no_rows(env: dict[str, str]) -> None:
    """A principal without tenant_id sees nothing (the policy is FALSE), not everything."""
    result = run_tally(
        "query", "--metrics", "signups", "--group-by", "account__tenant_id",
        "--principal-attr", "regions=EU,US", "--format", "json", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == []


def test_a_malformed_principal_attr_is_an_error(env: dict[str, str]) -> None:
    result = run_tally("compile", "--metrics", "signups", "--principal-attr", "tenant", env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "principal_attr[0]: error[bad_principal]: --principal-attr 'tenant' is not KEY=VALUE",
        "  hint: e.g. --principal-attr tenant_id=t1 --principal-attr regions=EU,US",
    ]
