"""WAREHOUSE_URL parsing: which engine, where, and which sqlglot dialect speaks to it.

Django-free so that settings, the CLI and the generator share one parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

# scheme -> (engine, sqlglot dialect). MariaDB speaks the MySQL protocol and dialect.
# chdb is ClickHouse embedded in this process (a data directory, like a DuckDB file);
# clickhouse is a ClickHouse server over HTTP (clickhouse-connect). spark:///dir is Spark
# embedded in this process (local mode, tables as Parquet under dir); spark://host:port and
# sc://host:port reach a Spark (or Databricks) cluster through Spark Connect.
# trino://user@host:port/catalog/schema is a Trino coordinator (semantic.warehouse.trino_session).
# snowflake://user:password@account/database/schema and bigquery://project/dataset are the
# cloud warehouses (semantic.warehouse.cloud_open); their "host" is the account or project.
SCHEMES: dict[str, tuple[str, str]] = {
    "duckdb": ("duckdb", "duckdb"),
    "postgresql": ("postgresql", "postgres"),
    "postgres": ("postgresql", "postgres"),
    "mysql": ("mysql", "mysql"),
    "mariadb": ("mysql", "mysql"),
    "chdb": ("chdb", "clickhouse"),
    "clickhouse": ("clickhouse", "clickhouse"),
    "spark": ("spark", "spark"),
    "sc": ("spark", "spark"),
    "trino": ("trino", "trino"),
    "snowflake": ("snowflake", "snowflake"),
    "bigquery": ("bigquery", "bigquery"),
}
DEFAULT_PORTS = {
    "postgresql": 5432,
    "mysql": 3306,
    "clickhouse": 8123,
    "spark": 15002,
    "trino": 8080,
    "snowflake": 443,
    "bigquery": 443,
}
# Engines whose data lives in a local path rather than behind a host.
LOCAL_ENGINES = ("duckdb", "chdb")
# The query options each cloud warehouse's URL may carry (anything else is a typo to report).
# host/port/protocol (Snowflake) and endpoint (BigQuery) reach a private or local endpoint.
CLOUD_OPTIONS: dict[str, tuple[str, ...]] = {
    "snowflake": (
        "warehouse",
        "role",
        "private_key_file",
        "private_key_file_pwd",
        "host",
        "port",
        "protocol",
    ),
    "bigquery": ("location", "credentials", "maximum_bytes_billed", "endpoint"),
}
_HOST_NAMES = {"snowflake": "account", "bigquery": "project"}
_NO_DATABASE_HINTS = {
    "trino": ("no catalog in the URL", "end it with /catalog/schema"),
    "snowflake": ("no database in the URL", "end it with /database/schema"),
    "bigquery": ("no dataset in the URL", "write bigquery://project/dataset"),
}


class WarehouseURLError(ValueError):
    """WAREHOUSE_URL is malformed; carries the problem and a hint."""

    def __init__(self, problem: str, hint: str | None = None) -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(problem if hint is None else f"{problem} (hint: {hint})")


@dataclass(frozen=True)
class WarehouseConfig:
    """Where the warehouse is and how to talk to it."""

    engine: str
    dialect: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    # TALLY_WAREHOUSE_ALLOW_PRIVILEGED: let Tally query as a superuser or a role that can
    # read server files (refused by default; see semantic.warehouse.connections).
    allow_privileged: bool = False

    @property
    def embedded(self) -> bool:
        """True when the engine runs inside this process (DuckDB, chdb, Spark local)."""
        return self.host is None

    @property
    def display_url(self) -> str:
        """The URL with the password left out, safe for logs and /healthz."""
        if self.host is None:
            return f"{self.engine}:///{self.path}"
        auth = f"{self.user}@" if self.user else ""
        # A Snowflake account or BigQuery project is a name, not a host and port.
        port = "" if self.engine in CLOUD_OPTIONS else f":{self.port}"
        return f"{self.engine}://{auth}{self.host}{port}/{self.database or ''}"


def parse_warehouse_url(value: str, *, base_dir: Path) -> WarehouseConfig:
    """Parses a WAREHOUSE_URL.

    ``duckdb:///relative/path`` is relative to ``base_dir`` and ``duckdb:////abs/path`` is
    absolute (SQLAlchemy's convention); ``duckdb:///:memory:`` is an in-memory database.

    Args:
        value: the URL.
        base_dir: directory that relative DuckDB paths resolve against.

    Returns:
        The parsed configuration.

    Raises:
        WarehouseURLError: malformed URL or unsupported engine.

    Example:
        >>> parse_warehouse_url("postgresql://postgres@127.0.0.1/wh", base_dir=Path("/")).port
        5432
    """
    if "://" not in value:
        raise WarehouseURLError(
            f"{value!r} is not a URL", "use duckdb:///var/warehouse.duckdb or postgresql://…"
        )
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise WarehouseURLError(f"cannot parse {redacted(value)!r}: {exc}") from None
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in SCHEMES:
        raise WarehouseURLError(
            f"unsupported warehouse {parts.scheme!r}",
            "supported: " + ", ".join(sorted(SCHEMES)),
        )
    engine, dialect = SCHEMES[scheme]
    options = tuple(sorted(parse_qsl(parts.query)))
    if engine in LOCAL_ENGINES or (engine == "spark" and scheme == "spark" and not parts.netloc):
        name = _local_path(scheme, parts.netloc, unquote(parts.path), base_dir)
        return WarehouseConfig(engine=engine, dialect=dialect, path=name, options=options)
    if not parts.hostname:
        raise WarehouseURLError(f"no {_HOST_NAMES.get(engine, 'host')} in {redacted(value)!r}")
    database = unquote(parts.path.lstrip("/")) or None
    if database is None and engine in ("clickhouse", "spark"):
        database = "default"
    if database is None:
        problem, hint = _NO_DATABASE_HINTS.get(engine, ("no database name in the URL", None))
        raise WarehouseURLError(problem, hint or "end it with /dbname")
    password = unquote(parts.password) if parts.password else None
    if engine == "bigquery" and (parts.username or parts.password):
        raise WarehouseURLError(
            "a BigQuery URL names no user or password",
            "write bigquery://project/dataset?credentials=/path/to/service-account.json",
        )
    if engine in CLOUD_OPTIONS:
        options, password = _cloud_options(engine, options, password)
        _check_cloud_path(engine, database, parts.username, password, dict(options))
    return WarehouseConfig(
        engine=engine,
        dialect=dialect,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[engine],
        user=unquote(parts.username) if parts.username else None,
        password=password,
        database=database,
        options=options,
    )


def _cloud_options(
    engine: str, options: tuple[tuple[str, str], ...], password: str | None
) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """Checks a cloud warehouse's query options; a key passphrase moves to ``password``.

    Snowflake's ``private_key_file_pwd`` (snowflake-sqlalchemy's name) is a secret: kept in
    ``password`` (left out of reprs and display URLs), never among the options.
    """
    allowed = CLOUD_OPTIONS[engine]
    unknown = sorted({key for key, _ in options if key not in allowed})
    if unknown:
        raise WarehouseURLError(
            f"unknown {engine} URL option {', '.join(unknown)}",
            "the options are " + ", ".join(allowed),
        )
    given = dict(options)
    if len(given) != len(options):
        raise WarehouseURLError(f"an option is given twice in the {engine} URL")
    if "private_key_file_pwd" in given:
        if "private_key_file" not in given:
            raise WarehouseURLError(
                "private_key_file_pwd without private_key_file",
                "add ?private_key_file=/path/to/rsa_key.p8 (key-pair authentication)",
            )
        if password is not None:
            raise WarehouseURLError(
                "two secrets in the URL (a password and private_key_file_pwd)",
                "with key-pair authentication the URL's password is the key's passphrase: "
                "give it once",
            )
        password = given.pop("private_key_file_pwd")
    for key in ("port", "maximum_bytes_billed"):
        if key in given and not given[key].isdigit():
            raise WarehouseURLError(f"{key}={given[key]!r} is not a whole number")
    if given.get("protocol", "https") not in ("https", "http"):
        raise WarehouseURLError(f"protocol={given['protocol']!r}", "use https (or http locally)")
    if "endpoint" in given and urlsplit(given["endpoint"]).scheme not in ("https", "http"):
        raise WarehouseURLError(
            f"endpoint={given['endpoint']!r} is not an http(s) URL",
            "write endpoint=https://bigquery.example.com",
        )
    return tuple(sorted(given.items())), password


def _check_cloud_path(
    engine: str, database: str, user: str | None, secret: str | None, options: dict[str, str]
) -> None:
    """Snowflake: /database[/schema], a user and a password or key file; BigQuery: /dataset."""
    parts = database.split("/")
    if engine == "bigquery":
        if len(parts) != 1:
            raise WarehouseURLError(
                f"{database!r} is not one dataset", "write bigquery://project/dataset"
            )
        return
    if len(parts) > 2 or not all(parts):
        raise WarehouseURLError(f"{database!r} is not database/schema", "end it with /db/schema")
    if not user:
        raise WarehouseURLError(
            "no user in the Snowflake URL", "write snowflake://user:…@account/db"
        )
    if secret is None and "private_key_file" not in options:
        raise WarehouseURLError(
            "no password or private key in the Snowflake URL",
            "write snowflake://user:password@account/db or add ?private_key_file=/path/key.p8",
        )


def redacted(value: str) -> str:
    """The URL with any password replaced by ``***`` (for messages about a bad URL).

    Example:
        >>> redacted("snowflake://ann:s3cret@acme/db?warehouse=wh")
        'snowflake://ann:***@acme/db?warehouse=wh'
    """
    scheme, sep, rest = value.partition("://")
    if not sep:
        return value
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return value
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostport}{slash}{tail}"


_LOCAL_EXAMPLES = {
    "duckdb": "duckdb:///var/warehouse.duckdb",
    "chdb": "chdb:///var/warehouse.chdb",
    "spark": "spark:///var/warehouse.spark",
}


def _local_path(scheme: str, netloc: str, raw: str, base_dir: Path) -> str:
    """The data path of an embedded engine's URL (relative to ``base_dir``)."""
    example = _LOCAL_EXAMPLES[scheme]
    if netloc:
        raise WarehouseURLError(
            f"a {scheme} URL of a local warehouse has no host ({netloc!r})",
            f"write {example} (relative) or {scheme}:////absolute/path",
        )
    name = raw[1:] if raw.startswith("/") else raw
    if not name:
        raise WarehouseURLError(f"no {scheme} path in the URL", example)
    if name == ":memory:":
        return name
    path = Path(name)
    return str(path if path.is_absolute() else base_dir / path)
