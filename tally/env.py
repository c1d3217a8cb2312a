"""Settings read from the environment, each checked with an error that names its variable.

Django-free on purpose: the CLI, settings and tests parse configuration the same way, and a
malformed value must stop start-up with one line naming the variable, before Django prints a
traceback about something downstream.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url

from semantic.warehouse.config import WarehouseConfig, WarehouseURLError, parse_warehouse_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEFAULT_DATABASE_URL = "sqlite:///var/tally.sqlite3"
DEFAULT_WAREHOUSE_URL = "duckdb:///var/warehouse.duckdb"
# Only a development key, used in demo/debug mode (see ``demo_mode``); anywhere else
# SECRET_KEY must be set, and TALLY_PII_SALT too.
DEV_SECRET_KEY = "django-insecure-tally-demo-key-change-me-in-production-0123456789"

REGISTRY_ENGINES = {
    "django.db.backends.sqlite3": "sqlite",
    "django.db.backends.postgresql": "postgresql",
}
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting in the environment is malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str, hint: str | None = None) -> None:
        self.variable = variable
        self.problem = problem
        self.hint = hint
        text = f"{variable}: {problem}"
        if hint:
            text += f" (hint: {hint})"
        super().__init__(text)


@dataclass(frozen=True)
class Config:
    """Every environment-driven setting, parsed and checked."""

    debug: bool
    secret_key: str
    allowed_hosts: tuple[str, ...]
    database: dict[str, Any]
    database_vendor: str
    warehouse: WarehouseConfig
    broker_url: str | None
    time_spine_start: dt.date | None = None
    time_spine_end: dt.date | None = None
    # Access control and hardening (issue #8).
    https: bool = False
    behind_proxy: bool = False
    token_key: str = ""
    default_role: str = "viewer"
    rate_compile: str = "120/min"
    rate_query: str = "60/min"
    max_body_bytes: int = 10 * 1024 * 1024
    cache_url: str | None = None
    csrf_trusted_origins: tuple[str, ...] = ()
    # DEBUG=true, `tally demo` or the test settings: development secrets allowed (issue 18).
    demo: bool = False
    # The PII pseudonym salt; per_tenant: one salt per tenant binding (HMAC of this salt).
    pii_salt: str = ""
    pii_salt_per_tenant: bool = False
    # MCP over HTTP keeps a session per initialized client (one web process or sticky
    # sessions only; issue #19).
    mcp_sessions: bool = False


def _resolve_sqlite_path(name: str) -> str:
    """Resolves a relative SQLite path against the project directory, not the caller's cwd."""
    if name in ("", ":memory:"):
        return name
    path = Path(name)
    return str(path if path.is_absolute() else BASE_DIR / path)


def parse_database_url(value: str) -> tuple[dict[str, Any], str]:
    """Parses DATABASE_URL into a Django DATABASES entry and its vendor name.

    Args:
        value: a URL such as ``sqlite:///var/tally.sqlite3`` or ``postgresql://u@host/db``.

    Returns:
        The Django database settings and ``"sqlite"`` or ``"postgresql"``.

    Raises:
        ConfigError: the URL is malformed or names an unsupported engine.

    Example:
        >>> parse_database_url("postgresql://postgres@127.0.0.1:5432/tally")[1]
        'postgresql'
    """
    if "://" not in value:
        raise ConfigError(
            "DATABASE_URL",
            f"{value!r} is not a URL",
            "use sqlite:///var/tally.sqlite3 or postgresql://user@host:5432/dbname",
        )
    try:
        db = dict(dj_database_url.parse(value, conn_max_age=60, conn_health_checks=True))
    except (ValueError, dj_database_url.UnknownSchemeError) as exc:
        raise ConfigError(
            "DATABASE_URL",
            f"cannot parse {value!r}: {exc}".split(". Did you forget")[0],
            "use sqlite:///var/tally.sqlite3 or postgresql://user@host:5432/dbname",
        ) from exc
    vendor = REGISTRY_ENGINES.get(db["ENGINE"])
    if vendor is None:
        raise ConfigError(
            "DATABASE_URL",
            f"the registry cannot run on {urlsplit(value).scheme!r}",
            "supported registry stores are sqlite and postgresql",
        )
    if vendor == "sqlite":
        db["NAME"] = _resolve_sqlite_path(db["NAME"])
        # SQLite has no server to keep a connection to; persistent connections only hold locks.
        db["CONN_MAX_AGE"] = 0
        # WAL with synchronous=NORMAL: a commit appends to the log without an fsync (a
        # checkpoint syncs), so the audit row every API call writes costs microseconds, not
        # a disk flush (issue 23: 20-40 ms of a 2 ms cached answer). A crash of the process
        # loses nothing; a power cut may lose the last commits, never corrupt the file.
        # Readers no longer wait for a writer either. PostgreSQL is the production store.
        db["OPTIONS"] = {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    elif not db.get("NAME"):
        raise ConfigError("DATABASE_URL", "no database name in the URL", "end it with /dbname")
    return db, vendor


def parse_broker_url(value: str | None) -> str | None:
    """Checks CELERY_BROKER_URL; None or empty means tasks run in-process.

    Example:
        >>> parse_broker_url("redis://127.0.0.1:6379/0")
        'redis://127.0.0.1:6379/0'
    """
    if not value:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ConfigError("CELERY_BROKER_URL", f"cannot parse {value!r}: {exc}") from exc
    if parts.scheme not in BROKER_SCHEMES:
        raise ConfigError(
            "CELERY_BROKER_URL",
            f"unsupported scheme {parts.scheme!r}",
            "use redis://host:6379/0 or amqp://user:pass@host:5672//",
        )
    if not parts.hostname:
        raise ConfigError("CELERY_BROKER_URL", f"no host in {value!r}")
    del port
    return value


def parse_bool(variable: str, value: str | None, default: bool) -> bool:
    """Parses a boolean flag strictly: a typo must not silently mean False.

    Example:
        >>> parse_bool("DEBUG", "yes", False)
        True
    """
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(variable, f"{value!r} is not a boolean", "use 1/0, true/false, yes/no")


def parse_hosts(value: str | None) -> tuple[str, ...]:
    """Parses ALLOWED_HOSTS, a comma-separated list.

    Example:
        >>> parse_hosts("tally.example.com, .internal")
        ('tally.example.com', '.internal')
    """
    if value is None:
        return ("127.0.0.1", "localhost", "[::1]", "testserver")
    hosts = tuple(h.strip() for h in value.split(",") if h.strip())
    bad = [h for h in hosts if " " in h or "/" in h]
    if bad:
        raise ConfigError("ALLOWED_HOSTS", f"{bad[0]!r} is not a host name", "comma-separate them")
    return hosts


def parse_date(variable: str, value: str | None) -> dt.date | None:
    """Parses an ISO date (``2024-01-01``); None or empty means unset.

    Example:
        >>> parse_date("TALLY_TIME_SPINE_START", "2024-01-01")
        datetime.date(2024, 1, 1)
    """
    if value is None or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ConfigError(variable, f"{value!r} is not a date", "use YYYY-MM-DD") from exc


def parse_time_spine_range(
    start: str | None, end: str | None
) -> tuple[dt.date | None, dt.date | None]:
    """TALLY_TIME_SPINE_START/END: the range of Tally's time spine (each unset = cover the data).

    Example:
        >>> parse_time_spine_range("2020-01-01", None)
        (datetime.date(2020, 1, 1), None)
    """
    low = parse_date("TALLY_TIME_SPINE_START", start)
    high = parse_date("TALLY_TIME_SPINE_END", end)
    if low is not None and high is not None and low > high:
        raise ConfigError(
            "TALLY_TIME_SPINE_END",
            f"{high.isoformat()} is before TALLY_TIME_SPINE_START {low.isoformat()}",
            "the end must be on or after the start",
        )
    return low, high


def env_number(variable: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    """A positive number from the environment (default when unset), or a ConfigError.

    Example:
        >>> env_number("TALLY_X", 5, {"TALLY_X": "0.5"}), env_number("TALLY_X", 5, {})
        (0.5, 5.0)
    """
    raw = (os.environ if environ is None else environ).get(variable, "").strip()
    if not raw:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(variable, f"expected a positive number, got {raw!r}")
    return value


_MEMORY_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|KiB|MiB|GiB)\s*$", re.IGNORECASE)


def env_memory_size(variable: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    """A memory size such as ``256MB`` or ``1GiB`` from the environment (default when unset),
    in DuckDB's spelling, or a ConfigError.

    Example:
        >>> env_memory_size("TALLY_X", "256MB", {"TALLY_X": " 64 mib "}), env_memory_size("TALLY_X", "256MB", {})
        ('64MiB', '256MB')
    """
    raw = (os.environ if environ is None else environ).get(variable, "").strip() or default
    found = _MEMORY_SIZE.match(raw)
    if found is None or not float(found.group(1)) > 0:
        raise ConfigError(
            variable, f"expected a memory size, got {raw!r}", "for example 256MB or 1GiB"
        )
    unit = {u.lower(): u for u in ("KB", "MB", "GB", "KiB", "MiB", "GiB")}[found.group(2).lower()]
    return f"{found.group(1)}{unit}"


PII_MASK_MODES = ("hash", "null")


HINT_GENERATE = "generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
DEMO_MODE_TEXT = "outside demo/debug mode (DEBUG=true, `tally demo`, the test settings)"


def demo_mode(environ: Mapping[str, str]) -> bool:
    """Demo/debug mode, the only one that runs on development secrets: ``DEBUG=true``, or
    ``TALLY_DEMO=1``, which the ``tally demo`` command and the test settings
    (tally/settings_test.py) set before the settings load.

    Example:
        >>> demo_mode({}), demo_mode({"DEBUG": "true"}), demo_mode({"TALLY_DEMO": "1"})
        (False, True, True)
    """
    return parse_bool("DEBUG", environ.get("DEBUG"), False) or parse_bool(
        "TALLY_DEMO", environ.get("TALLY_DEMO"), False
    )


def env_secret_key(environ: Mapping[str, str], *, demo: bool) -> str:
    """SECRET_KEY: required (32+ characters, not the development key) outside demo/debug mode.

    Example:
        >>> env_secret_key({}, demo=True) == DEV_SECRET_KEY
        True
    """
    raw = environ.get("SECRET_KEY") or ""
    if not raw and not demo:
        raise ConfigError(
            "SECRET_KEY", f"unset, and it is required {DEMO_MODE_TEXT}", HINT_GENERATE
        )
    if raw == DEV_SECRET_KEY and not demo:
        raise ConfigError(
            "SECRET_KEY", f"the public development key {DEMO_MODE_TEXT}", HINT_GENERATE
        )
    secret_key = raw or DEV_SECRET_KEY
    if len(secret_key) < 32:
        raise ConfigError("SECRET_KEY", "shorter than 32 characters", HINT_GENERATE)
    return secret_key


def env_pii_salt(secret_key: str, environ: Mapping[str, str], *, demo: bool) -> str:
    """TALLY_PII_SALT: required outside demo/debug mode (a salt known to outsiders lets anyone
    reverse pseudonyms with a list of names); in demo mode, unset, it derives from SECRET_KEY.

    Example:
        >>> env_pii_salt("k", {"TALLY_PII_SALT": "s" * 32}, demo=False) == "s" * 32
        True
        >>> len(env_pii_salt("k", {}, demo=True))
        64
    """
    raw = environ.get("TALLY_PII_SALT", "")
    if raw and len(raw) < 32 and not demo:
        raise ConfigError("TALLY_PII_SALT", "shorter than 32 characters", HINT_GENERATE)
    if raw:
        return raw
    if not demo:
        raise ConfigError(
            "TALLY_PII_SALT",
            f"unset, and it is required {DEMO_MODE_TEXT}",
            HINT_GENERATE + " (keep it: changing it changes every pseudonym)",
        )
    return hashlib.sha256(f"tally-pii-salt:{secret_key}".encode()).hexdigest()


def env_pii_mask(environ: Mapping[str, str] | None = None) -> str:
    """TALLY_PII_MASK: how PII columns without their own contract choice are masked.

    Example:
        >>> env_pii_mask({}), env_pii_mask({"TALLY_PII_MASK": "NULL"})
        ('hash', 'null')
    """
    raw = (os.environ if environ is None else environ).get("TALLY_PII_MASK", "").strip().lower()
    if not raw:
        return "hash"
    if raw not in PII_MASK_MODES:
        raise ConfigError("TALLY_PII_MASK", f"unknown mask {raw!r}", "use hash or null")
    return raw


ROLES = ("viewer", "analyst", "editor", "reviewer", "governance", "auditor", "admin")
RATE_PERIODS = ("s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day")


def parse_rate(variable: str, value: str | None, default: str) -> str:
    """A throttle rate ``N/period`` (DRF's format), e.g. ``120/min``.

    Example:
        >>> parse_rate("TALLY_RATE_QUERY", "30/hour", "60/min")
        '30/hour'
    """
    if value is None or not value.strip():
        return default
    count, _, period = value.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or period not in RATE_PERIODS:
        raise ConfigError(variable, f"{value!r} is not a rate", "use N/s, N/min, N/hour or N/day")
    return value.strip()


def parse_default_role(value: str | None) -> str:
    """TALLY_DEFAULT_ROLE: the role every signed-in person holds (``none`` = no role).

    Example:
        >>> parse_default_role("none"), parse_default_role(None)
        ('', 'viewer')
    """
    if value is None or not value.strip():
        return "viewer"
    role = value.strip().lower()
    if role == "none":
        return ""
    if role not in ROLES:
        raise ConfigError(
            "TALLY_DEFAULT_ROLE", f"unknown role {value!r}", "one of: none, " + ", ".join(ROLES)
        )
    return role


def derive_token_key(secret_key: str) -> str:
    """The API-token HMAC key when TALLY_TOKEN_KEY is unset: derived from SECRET_KEY, so
    rotating SECRET_KEY invalidates every token (set TALLY_TOKEN_KEY to decouple them)."""
    return hmac.new(secret_key.encode(), b"tally-api-token-key", hashlib.sha256).hexdigest()


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Reads and checks every setting from the environment.

    Raises:
        ConfigError: the first malformed variable, named.
    """
    env = os.environ if environ is None else environ
    debug = parse_bool("DEBUG", env.get("DEBUG"), default=False)
    https = parse_bool("TALLY_HTTPS", env.get("TALLY_HTTPS"), default=False)
    demo = demo_mode(env)
    secret_key = env_secret_key(env, demo=demo)
    if https and secret_key == DEV_SECRET_KEY:
        # A production deployment (TALLY_HTTPS) never runs on the key in the source.
        raise ConfigError(
            "SECRET_KEY",
            "unset, but TALLY_HTTPS is on (production)",
            "set a long random key: python -c 'import secrets; print(secrets.token_urlsafe(50))'",
        )
    token_key = env.get("TALLY_TOKEN_KEY") or derive_token_key(secret_key)
    if len(token_key) < 32:
        raise ConfigError(
            "TALLY_TOKEN_KEY", "shorter than 32 characters", "generate a long random key"
        )
    raw_body = env.get("TALLY_MAX_BODY_BYTES", "").strip()
    if raw_body and (not raw_body.isdigit() or int(raw_body) < 1024):
        raise ConfigError(
            "TALLY_MAX_BODY_BYTES", f"{raw_body!r} is not a size", "bytes, at least 1024"
        )
    for variable in ("TALLY_MAX_DEFINITION_BYTES", "TALLY_MAX_DEFINITION_NODES"):
        # Read where definitions are parsed (registry/definitions/yaml_source.py, Django-free);
        # checked here so a typo stops start-up instead of silently meaning the default.
        raw_limit = env.get(variable, "").strip()
        if raw_limit and (not raw_limit.isdigit() or int(raw_limit) < 1):
            raise ConfigError(variable, f"{raw_limit!r} is not a positive integer")
    cache_url = (env.get("TALLY_CACHE_URL") or "").strip() or None
    if cache_url and urlsplit(cache_url).scheme not in ("redis", "rediss"):
        raise ConfigError(
            "TALLY_CACHE_URL", f"unsupported cache {cache_url!r}", "redis://host:6379/1"
        )
    if (
        https
        and not cache_url
        and not parse_bool(
            "TALLY_ALLOW_LOCAL_RATE_LIMITS", env.get("TALLY_ALLOW_LOCAL_RATE_LIMITS"), False
        )
    ):
        # Production must not silently count rate limits and sign-in lockouts per process.
        raise ConfigError(
            "TALLY_CACHE_URL",
            "unset, but TALLY_HTTPS is on (production): rate limits and sign-in lockouts "
            "would count per web process",
            "set TALLY_CACHE_URL=redis://host:6379/1 (or TALLY_ALLOW_LOCAL_RATE_LIMITS=1 for "
            "a single-process deployment)",
        )
    database, vendor = parse_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    try:
        warehouse = parse_warehouse_url(
            env.get("WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL, base_dir=BASE_DIR
        )
    except WarehouseURLError as exc:
        raise ConfigError("WAREHOUSE_URL", exc.problem, exc.hint) from exc
    # Querying as a superuser or a file-reading role is refused unless explicitly allowed.
    allow_privileged = parse_bool(
        "TALLY_WAREHOUSE_ALLOW_PRIVILEGED", env.get("TALLY_WAREHOUSE_ALLOW_PRIVILEGED"), False
    )
    warehouse = dataclasses.replace(warehouse, allow_privileged=allow_privileged)
    spine_start, spine_end = parse_time_spine_range(
        env.get("TALLY_TIME_SPINE_START"), env.get("TALLY_TIME_SPINE_END")
    )
    return Config(
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=parse_hosts(env.get("ALLOWED_HOSTS")),
        database=database,
        database_vendor=vendor,
        warehouse=warehouse,
        broker_url=parse_broker_url(env.get("CELERY_BROKER_URL")),
        time_spine_start=spine_start,
        time_spine_end=spine_end,
        https=https,
        behind_proxy=parse_bool("TALLY_BEHIND_PROXY", env.get("TALLY_BEHIND_PROXY"), False),
        token_key=token_key,
        default_role=parse_default_role(env.get("TALLY_DEFAULT_ROLE")),
        rate_compile=parse_rate("TALLY_RATE_COMPILE", env.get("TALLY_RATE_COMPILE"), "120/min"),
        rate_query=parse_rate("TALLY_RATE_QUERY", env.get("TALLY_RATE_QUERY"), "60/min"),
        max_body_bytes=int(raw_body) if raw_body else 10 * 1024 * 1024,
        cache_url=cache_url,
        csrf_trusted_origins=tuple(
            o.strip() for o in (env.get("CSRF_TRUSTED_ORIGINS") or "").split(",") if o.strip()
        ),
        demo=demo,
        pii_salt=env_pii_salt(secret_key, env, demo=demo),
        pii_salt_per_tenant=parse_bool(
            "TALLY_PII_SALT_PER_TENANT", env.get("TALLY_PII_SALT_PER_TENANT"), False
        ),
        mcp_sessions=parse_bool("TALLY_MCP_SESSIONS", env.get("TALLY_MCP_SESSIONS"), False),
    )


def env_openlineage(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Where OpenLineage run events go: ``url`` (an HTTP endpoint) or ``file`` (one JSON event
    per line, relative to the repository root), the job ``namespace``; empty when unset.

    Example:
        >>> env_openlineage({"TALLY_OPENLINEAGE_URL": "http://marquez:5000"})["url"]
        'http://marquez:5000'
        >>> env_openlineage({"TALLY_OPENLINEAGE_URL": "marquez"})
        Traceback (most recent call last):
        ...
        tally.env.ConfigError: TALLY_OPENLINEAGE_URL: expected an http(s):// URL, got 'marquez'
    """
    source = os.environ if environ is None else environ
    url = source.get("TALLY_OPENLINEAGE_URL", "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError("TALLY_OPENLINEAGE_URL", f"expected an http(s):// URL, got {url!r}")
    file = source.get("TALLY_OPENLINEAGE_FILE", "").strip()
    if file and not os.path.isabs(file):
        file = str(BASE_DIR / file)
    return {
        "url": url,
        "endpoint": source.get("TALLY_OPENLINEAGE_ENDPOINT", "").strip() or "api/v1/lineage",
        "file": file,
        "namespace": source.get("TALLY_OPENLINEAGE_NAMESPACE", "").strip() or "tally",
    }
