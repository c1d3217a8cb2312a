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
}
DEFAULT_PORTS = {
    "postgresql": 5432,
    "mysql": 3306,
    "clickhouse": 8123,
    "spark": 15002,
    "trino": 8080,
}
# Engines whose data lives in a local path rather than behind a host.
LOCAL_ENGINES = ("duckdb", "chdb")


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
        return f"{self.engine}://{auth}{self.host}:{self.port}/{self.database or ''}"


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
        raise WarehouseURLError(f"cannot parse {value!r}: {exc}") from exc
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
        raise WarehouseURLError(f"no host in {value!r}")
    database = unquote(parts.path.lstrip("/")) or None
    if database is None and engine in ("clickhouse", "spark"):
        database = "default"
    if database is None:
        if engine == "trino":
            raise WarehouseURLError("no catalog in the URL", "end it with /catalog/schema")
        raise WarehouseURLError("no database name in the URL", "end it with /dbname")
    return WarehouseConfig(
        engine=engine,
        dialect=dialect,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[engine],
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        database=database,
        options=options,
    )


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
