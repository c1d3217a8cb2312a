"""Trino as a warehouse (issue 20): URLs, the client's failure paths, the PII salt binding.

No Trino coordinator runs here (none is packaged on PyPI or Debian), so what is tested is
what needs none: the URL, the real ``trino`` client failing against a closed port and
against an HTTP server that answers 503, and the salt bound once per placeholder of the
SQL the compiler writes for Trino. Rows on a real coordinator are not tested in CI (README,
"Warehouses").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlglot

from semantic.compiler.policies import mask_expression
from semantic.warehouse.config import WarehouseURLError, parse_warehouse_url
from semantic.warehouse.engine_open import trino_catalog_schema
from semantic.warehouse.execute import execute
from semantic.warehouse.trino_session import placeholder_count
from tally.errors import WarehouseError

BASE = Path("/srv/tally")


def test_a_trino_url_names_coordinator_catalog_and_schema() -> None:
    config = parse_warehouse_url(
        "trino://analyst:secret@trino.internal:8443/hive/sales?secure=true", base_dir=BASE
    )
    assert (config.engine, config.dialect) == ("trino", "trino")
    assert (config.host, config.port, config.user) == ("trino.internal", 8443, "analyst")
    assert trino_catalog_schema(config) == ("hive", "sales")
    assert "secret" not in config.display_url
    default = parse_warehouse_url("trino://tally@trino.internal/iceberg", base_dir=BASE)
    assert default.port == 8080
    assert trino_catalog_schema(default) == ("iceberg", "default")


def test_a_trino_url_without_a_catalog_says_how_to_write_it() -> None:
    with pytest.raises(WarehouseURLError) as caught:
        parse_warehouse_url("trino://tally@trino.internal:8080", base_dir=BASE)
    assert "catalog" in caught.value.problem
    assert caught.value.hint == "end it with /catalog/schema"


def test_an_unreachable_coordinator_is_warehouse_unavailable() -> None:
    config = parse_warehouse_url("trino://tally@127.0.0.1:1/memory/default", base_dir=BASE)
    with pytest.raises(WarehouseError) as caught:
        execute(config, "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_unavailable"
    assert caught.value.hint


def test_a_password_over_plain_http_is_refused_before_any_request() -> None:
    config = parse_warehouse_url("trino://tally:pw@127.0.0.1:1/memory/default", base_dir=BASE)
    with pytest.raises(WarehouseError) as caught:
        execute(config, "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_unavailable"
    # The detail is the administrator's (server log); users read the code and a reference.
    assert "secure=true" in (caught.value.warehouse_message or "")
    assert ":pw@" not in str(caught.value.warehouse_message)


class _Overloaded(BaseHTTPRequestHandler):
    """A coordinator behind a proxy that answers 503 (a restart, an overloaded gateway)."""

    requests = 0

    def do_POST(self) -> None:
        type(self).requests += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def overloaded_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Overloaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_coordinator_answering_503_is_warehouse_unavailable(overloaded_port: int) -> None:
    config = parse_warehouse_url(
        f"trino://tally@127.0.0.1:{overloaded_port}/memory/default", base_dir=BASE
    )
    with pytest.raises(WarehouseError) as caught:
        execute(config, "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_unavailable"
    assert _Overloaded.requests >= 1  # the real client did send the statement


def test_the_salt_is_bound_once_per_placeholder_the_compiler_writes() -> None:
    masked = [mask_expression(sqlglot.exp.column(c, table="u"), "hash", "trino") for c in "ab"]
    sql = sqlglot.select(*masked).from_("u").where("u.note <> '?'").sql("trino")
    assert sql.count("?") == 3  # two placeholders and one inside a string literal
    assert placeholder_count(sql) == 2
