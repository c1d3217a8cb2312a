"""Settings parsing: each malformed variable is named in one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tally.env import (
    BASE_DIR,
    DEFAULT_DATABASE_URL,
    ConfigError,
    load_config,
    parse_bool,
    parse_broker_url,
    parse_database_url,
    parse_hosts,
)
from tests.conftest import run_tally


def test_defaults_give_embedded_sqlite_duckdb_and_in_process_tasks() -> None:
    """With nothing set, the demo runs on files under var/ and without a broker."""
    config = load_config({"TALLY_DEMO": "1"})
    assert config.database_vendor == "sqlite"
    assert config.database["NAME"] == str(BASE_DIR / "var" / "tally.sqlite3")
    assert config.warehouse.engine == "duckdb"
    assert config.warehouse.path == str(BASE_DIR / "var" / "warehouse.duckdb")
    assert config.broker_url is None
    assert config.debug is False
    assert DEFAULT_DATABASE_URL.startswith("sqlite:///")


def test_postgres_database_url_is_parsed_with_persistent_connections() -> None:
    """A PostgreSQL registry keeps connections (CONN_MAX_AGE) and health-checks them."""
    db, vendor = parse_database_url("postgresql://postgres@127.0.0.1:5432/tally")
    assert vendor == "postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"]) == ("127.0.0.1", 5432, "tally")
    assert db["CONN_MAX_AGE"] == 60 and db["CONN_HEALTH_CHECKS"] is True


def test_absolute_sqlite_path_is_kept() -> None:
    """sqlite:////abs/path means an absolute path (four slashes)."""
    db, _ = parse_database_url("sqlite:////tmp/x.sqlite3")
    assert db["NAME"] == "/tmp/x.sqlite3"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("DATABASE_URL", "not a url", "is not a URL"),
        ("DATABASE_URL", "foo://x/y", "cannot parse"),
        ("DATABASE_URL", "postgres://:99999/x", "cannot parse"),
        ("DATABASE_URL", "mysql://root@127.0.0.1/tally", "the registry cannot run on 'mysql'"),
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432", "no database name"),
        ("WAREHOUSE_URL", "duckdb", "is not a URL"),
        ("WAREHOUSE_URL", "oracle://x/y", "unsupported warehouse 'oracle'"),
        ("WAREHOUSE_URL", "postgresql://h:notaport/db", "cannot parse"),
        (
            "WAREHOUSE_URL",
            "duckdb://host/x.duckdb",
            "a duckdb URL of a local warehouse has no host",
        ),
        ("WAREHOUSE_URL", "postgresql://127.0.0.1:5432", "no database name"),
        ("CELERY_BROKER_URL", "http://x", "unsupported scheme 'http'"),
        ("CELERY_BROKER_URL", "redis://:bad/0", "cannot parse"),
        ("DEBUG", "maybe", "is not a boolean"),
        ("SECRET_KEY", "short", "shorter than 32 characters"),
        ("ALLOWED_HOSTS", "a b, c", "is not a host name"),
    ],
)
def test_malformed_setting_names_its_variable(variable: str, value: str, fragment: str) -> None:
    """Every malformed variable raises ConfigError whose text starts with the variable name."""
    with pytest.raises(ConfigError) as info:
        load_config({"TALLY_DEMO": "1", variable: value})
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")
    assert fragment in str(info.value)


def test_error_text_snapshot() -> None:
    """The exact wording users see for a bad DATABASE_URL (snapshot)."""
    with pytest.raises(ConfigError) as info:
        load_config({"TALLY_DEMO": "1", "DATABASE_URL": "mysql://root@127.0.0.1/tally"})
    assert str(info.value) == (
        "DATABASE_URL: the registry cannot run on 'mysql' "
        "(hint: supported registry stores are sqlite and postgresql)"
    )


def test_parsers_accept_their_documented_forms() -> None:
    """Booleans, host lists and broker URLs in their usual spellings."""
    assert parse_bool("DEBUG", "TRUE", False) is True
    assert parse_bool("DEBUG", "0", True) is False
    assert parse_bool("DEBUG", None, True) is True
    assert parse_hosts("a.example, b.example ,") == ("a.example", "b.example")
    assert parse_broker_url("") is None
    assert parse_broker_url("amqp://guest:guest@127.0.0.1:5672//").startswith("amqp://")


def test_malformed_url_stops_cli_with_one_line(tmp_path: Path) -> None:
    """`tally` exits 2 printing a single line that names the variable, no traceback."""
    result = run_tally("check", env={"WAREHOUSE_URL": "mongodb://x/y"}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tally: configuration error: WAREHOUSE_URL: unsupported warehouse")
    assert "Traceback" not in result.stderr
