"""The SQL API says it is listening only once it can answer (issue 23's soak): it used to
announce its port and then build the catalog before accepting anyone, so under load the
first clients' connections timed out unanswered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.sqlapi import services as sqlapi_services
from semantic.sqlapi.server import SqlServer, serve
from semantic.sqlapi.session import ServerConfig
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT
from tests.semantic.conftest import warehouse_path  # noqa: F401  (the demo warehouse fixture)


# transaction=True: the server closes stale registry connections before and after building
# the catalog, as at start-up; inside a test's atomic block that would close the test's own
# PostgreSQL connection (Django closes a connection whose autocommit differs).
@pytest.mark.django_db(transaction=True)
def test_the_port_is_announced_after_the_catalog_is_built(
    tmp_path: Path,
    warehouse_path: Path,  # noqa: F811
    settings: Settings,
) -> None:
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    sqlapi_services._catalogs.clear()
    seen: list[int] = []

    def ready(server: SqlServer) -> None:
        seen.append(len(sqlapi_services._catalogs))
        server.stop()  # serve_forever then returns at once: the test needs no client

    serve(ServerConfig(host="127.0.0.1", port=0), ready=ready)
    assert seen == [1], "the catalog must exist before the port is announced"
