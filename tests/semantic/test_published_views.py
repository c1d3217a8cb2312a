"""tally publish-views: one warehouse view per saved query, commented with the release and
versions; idempotent; rewritten on a new release when TALLY_PUBLISHED_VIEWS_SCHEMA is set."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.compiler.spec import MetricQuery
from semantic.published_views import MSG_BAD_SCHEMA, views_publish
from semantic.services import query_execute, saved_query_apply
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.execute import execute
from tally.errors import UserError
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db
# One xdist worker runs every Spark test (`./dev test` uses --dist loadgroup): one JVM.
SPARK = pytest.mark.xdist_group("spark")


@pytest.fixture
def warehouse(tmp_path: Path, warehouse_path: Path, settings: Settings) -> Path:
    path = tmp_path / "wh.duckdb"
    shutil.copy(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    return path


def views(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT view_name, comment FROM duckdb_views() WHERE schema_name = 'tally'"
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def test_publish_creates_one_commented_view_per_saved_query(warehouse: Path) -> None:
    """Each view returns the saved query's rows; its comment names release and versions."""
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    published = views_publish(schema="tally")
    assert {v.saved_query for v in published} == {
        "fiscal_revenue", "monthly_revenue_by_plan", "trial_funnel_by_industry",
        "weekly_engagement_by_region",
    }  # fmt: skip
    found = views(warehouse)
    assert found["monthly_revenue_by_plan"] == (
        "tally saved query monthly_revenue_by_plan, release r1: arpa@1.0, mrr@1.0, revenue@1.0"
    )
    con = duckdb.connect(str(warehouse), read_only=True)
    from_view = con.execute("SELECT * FROM tally.monthly_revenue_by_plan").fetchall()
    con.close()
    query = saved_query_apply(
        name="monthly_revenue_by_plan", query=MetricQuery(metrics=()), release_ref=None
    )
    direct = query_execute(query=query).rows
    assert sorted(map(repr, from_view)) == sorted(map(repr, direct)) and from_view


def test_publish_twice_changes_nothing(warehouse: Path) -> None:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    first = views_publish(schema="tally")
    before = views(warehouse)
    assert views_publish(schema="tally") == first
    assert views(warehouse) == before


def test_bad_schema_name_is_a_user_error(warehouse: Path) -> None:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    with pytest.raises(UserError) as caught:
        views_publish(schema="tally; DROP TABLE events")
    assert caught.value.code == "bad_schema"
    assert caught.value.message == MSG_BAD_SCHEMA.format(schema="tally; DROP TABLE events")


def test_new_release_refreshes_views_when_configured(
    warehouse: Path, settings: Settings, django_capture_on_commit_callbacks: Any
) -> None:
    """With TALLY_PUBLISHED_VIEWS_SCHEMA set, publishing a release rewrites the views."""
    settings.TALLY_PUBLISHED_VIEWS_SCHEMA = "published"
    with django_capture_on_commit_callbacks(execute=True):
        definitions_sync(root=ROOT / "fixtures", acting_user=None)
    con = duckdb.connect(str(warehouse), read_only=True)
    names = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'published'"
    ).fetchall()
    con.close()
    assert len(names) == 4  # one per saved query of fixtures/


@pytest.mark.parametrize("engine", ["chdb", pytest.param("spark", marks=SPARK)])
def test_publish_on_embedded_engines(
    engine: str, request: pytest.FixtureRequest, settings: Settings
) -> None:
    """On ClickHouse (chdb) and Spark local each view returns the saved query's rows and
    carries the release's comment; publishing again changes nothing."""
    config = request.getfixturevalue(f"{engine}_warehouse")
    settings.WAREHOUSE = config
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    published = views_publish(schema="tally")
    assert views_publish(schema="tally") == published
    name = "monthly_revenue_by_plan"
    from_view = execute(config, f"SELECT * FROM tally.{name}").rows
    query = saved_query_apply(name=name, query=MetricQuery(metrics=()), release_ref=None)
    direct = query_execute(query=query).rows
    assert from_view and sorted(map(repr, from_view)) == sorted(map(repr, direct))
    assert _view_comment(config, name) == (
        f"tally saved query {name}, release r1: arpa@1.0, mrr@1.0, revenue@1.0"
    )
    if engine == "spark":
        # A restart registers the Parquet tables again; the directories Spark made for the
        # databases it created (tally.db, main.db) are not databases of tables.
        from semantic.warehouse.engine_open import spark_register_tables, spark_session

        session = spark_session(config)
        spark_register_tables(session, Path(config.path))
        names = {row[0] for row in session.sql("SHOW DATABASES").collect()}
        assert "tally.db" not in names and "main.db" not in names


def _view_comment(config: Any, name: str) -> str:
    if config.engine == "chdb":
        sql = f"SELECT comment FROM system.tables WHERE database = 'tally' AND name = '{name}'"
        return str(execute(config, sql).rows[0][0])
    rows = execute(config, f"DESCRIBE TABLE EXTENDED tally.{name}").rows
    return next(str(value) for key, value, *_ in rows if key == "Comment")
