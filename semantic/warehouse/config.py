"""WAREHOUSE_URL parsing: which engine, where, and which sqlglot dialect speaks to it.

Django-free so that settings, the CLI and the generator share one parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

# scheme -> (engine, sqlglot dialect). MariaDB speaks the MySQL protocol and dialect.
SCHEMES: dict[str, tuple[str, str]] = {
    "duckdb": ("duckdb", "duckdb"),
    "postgresql": ("postgresql", "postgres"),
    "postgres": ("postgresql", "postgres"),
    "mysql": ("mysql", "mysql"),
    "mariadb": ("mysql", "mysql"),
}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


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
    def display_url(self) -> str:
        """The URL with the password left out, safe for logs and /healthz."""
        if self.engine == "duckdb":
            return f"duckdb:///{self.path}"
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
    if engine == "duckdb":
        raw = unquote(parts.path)
        if parts.netloc:
            raise WarehouseURLError(
                f"a DuckDB URL has no host ({parts.netloc!r})",
                "write duckdb:///relative/path.duckdb or duckdb:////absolute/path.duckdb",
            )
        name = raw[1:] if raw.startswith("/") else raw
        if not name:
            raise WarehouseURLError("no DuckDB file in the URL", "duckdb:///var/warehouse.duckdb")
        if name != ":memory:":
            path = Path(name)
            name = str(path if path.is_absolute() else base_dir / path)
        return WarehouseConfig(engine=engine, dialect=dialect, path=name, options=options)
    if not parts.hostname:
        raise WarehouseURLError(f"no host in {value!r}")
    database = unquote(parts.path.lstrip("/")) or None
    if database is None:
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
