"""Opening the cloud warehouses, Snowflake and BigQuery, through their official clients.

Snowflake:
    ``snowflake://user:password@account/database/schema?warehouse=…&role=…`` (or key-pair
    authentication: ``?private_key_file=/path/rsa_key.p8``, the URL's password then being the
    key's passphrase, if any). Server-side binding (``qmark``), so bound values such as the
    PII salt never enter the SQL text Snowflake keeps in its query history. Each session runs
    in UTC with ``STATEMENT_TIMEOUT_IN_SECONDS`` set to the query's time limit (Snowflake
    stops the statement) and ``ABORT_DETACHED_QUERY`` (a query whose session is gone stops).
    ``?host=…&port=…&protocol=…`` reach a PrivateLink or local endpoint; plain HTTP is for a
    loopback host only. Tally refuses the administrative roles (ACCOUNTADMIN, SECURITYADMIN,
    SYSADMIN, USERADMIN, ORGADMIN) unless TALLY_WAREHOUSE_ALLOW_PRIVILEGED=1.

BigQuery:
    ``bigquery://project/dataset?location=…&credentials=/path/key.json&maximum_bytes_billed=…``;
    without ``credentials`` the client uses Application Default Credentials. The dataset is
    the query's default dataset; ``?endpoint=…`` reaches another API endpoint (a local one,
    over plain HTTP, takes no credentials). Jobs carry ``job_timeout_ms`` (BigQuery stops the
    job) and the optional ``maximum_bytes_billed`` cap. IAM decides what the service account
    may read: Tally has no query to check it with.

Both clients are imported only when such a warehouse is used (``tally[snowflake]``,
``tally[bigquery]``). This module is Django-free.
"""

from __future__ import annotations

import math
import os
from typing import Any
from urllib.parse import urlsplit

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connect_errors import WarehouseUnavailable
from semantic.warehouse.results import first_line

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Roles that administer the account rather than read data (Snowflake's system roles).
SNOWFLAKE_ADMIN_ROLES = frozenset(
    {"ACCOUNTADMIN", "SECURITYADMIN", "SYSADMIN", "USERADMIN", "ORGADMIN"}
)
BIGQUERY_SCOPES = ("https://www.googleapis.com/auth/bigquery",)


def whole_seconds(timeout_s: float) -> int:
    """The time limit in whole seconds, rounded up (the engines take integers).

    Example:
        >>> whole_seconds(0.2), whole_seconds(30.0), whole_seconds(30.5)
        (1, 30, 31)
    """
    return max(1, math.ceil(timeout_s))


def _check_plain_http(scheme: str, host: str, option: str) -> None:
    # Credentials and rows go over this connection: plain HTTP only where it cannot leave
    # the machine (an emulator or a test endpoint).
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise WarehouseUnavailable(
            f"{option} uses plain HTTP to {host}: HTTPS is required except on a loopback host"
        )


# --- Snowflake -----------------------------------------------------------------------------


def snowflake_connect_args(config: WarehouseConfig, *, timeout_s: float) -> dict[str, Any]:
    """The keyword arguments of ``snowflake.connector.connect`` for ``config``.

    Raises:
        WarehouseUnavailable: plain HTTP to a host that is not loopback, or a missing key file.

    Example:
        >>> from semantic.warehouse.config import parse_warehouse_url
        >>> from pathlib import Path
        >>> c = parse_warehouse_url("snowflake://ann:pw@acme-eu/sales/mart?warehouse=wh", base_dir=Path("/"))
        >>> a = snowflake_connect_args(c, timeout_s=30)
        >>> a["account"], a["database"], a["schema"], a["warehouse"], a["paramstyle"]
        ('acme-eu', 'sales', 'mart', 'wh', 'qmark')
    """
    options = dict(config.options)
    database, _, schema = (config.database or "").partition("/")
    seconds = whole_seconds(timeout_s)
    args: dict[str, Any] = {
        "account": config.host,
        "user": config.user,
        "database": database,
        "schema": schema or "PUBLIC",
        # Server-side binding: values travel apart from the SQL text.
        "paramstyle": "qmark",
        "autocommit": True,
        "login_timeout": seconds,
        "client_session_keep_alive": False,
        # Log out on close (a query still running is aborted, see ABORT_DETACHED_QUERY).
        "enable_server_session_keep_alive_auto_detection": False,
        "session_parameters": {
            "TIMEZONE": "UTC",
            "STATEMENT_TIMEOUT_IN_SECONDS": seconds,
            "ABORT_DETACHED_QUERY": True,
            "QUERY_TAG": "tally",
        },
    }
    for key in ("warehouse", "role"):
        if options.get(key):
            args[key] = options[key]
    key_file = options.get("private_key_file")
    if key_file:
        if not os.path.isfile(key_file):
            raise WarehouseUnavailable(f"Snowflake private key file {key_file} does not exist")
        args["authenticator"] = "SNOWFLAKE_JWT"
        args["private_key_file"] = key_file
        if config.password:
            args["private_key_password"] = config.password
    else:
        args["password"] = config.password
    if "host" in options:
        protocol = options.get("protocol", "https")
        _check_plain_http(protocol, options["host"], "the Snowflake URL's protocol")
        args["host"] = options["host"]
        args["protocol"] = protocol
        args["port"] = int(options.get("port", "443" if protocol == "https" else "80"))
    elif options.get("protocol", "https") != "https":
        raise WarehouseUnavailable("protocol=http needs a host=… (a local endpoint)")
    return args


def snowflake_connect(config: WarehouseConfig, *, timeout_s: float) -> Any:
    """A Snowflake DB-API connection (logged in, session parameters set).

    Raises:
        WarehouseUnavailable: the connector is missing, the account cannot be reached, or
            the login is refused (the message names neither password nor key).
    """
    try:
        import snowflake.connector
    except ImportError as exc:
        raise WarehouseUnavailable(
            "the Snowflake connector is not installed (pip install 'tally[snowflake]')"
        ) from exc
    args = snowflake_connect_args(config, timeout_s=timeout_s)
    try:
        return snowflake.connector.connect(**args)
    except snowflake.connector.Error as exc:
        raise WarehouseUnavailable(
            f"cannot connect to {config.display_url}: {first_line(str(exc))}"
        ) from exc


def snowflake_privileged_because(conn: Any) -> str | None:
    """Why a Snowflake session's role is too privileged for Tally, or None."""
    cursor = conn.cursor()
    try:
        cursor.execute("SELECT CURRENT_ROLE()")
        row = cursor.fetchone()
    finally:
        cursor.close()
    role = str(row[0] if row else "").upper()
    if role in SNOWFLAKE_ADMIN_ROLES:
        return f"its role {role} administers the account"
    return None


# --- BigQuery ------------------------------------------------------------------------------


def bigquery_client_args(config: WarehouseConfig) -> dict[str, Any]:
    """The keyword arguments of ``google.cloud.bigquery.Client`` except the credentials.

    Example:
        >>> from semantic.warehouse.config import parse_warehouse_url
        >>> from pathlib import Path
        >>> c = parse_warehouse_url("bigquery://acme-data/sales?location=EU", base_dir=Path("/"))
        >>> bigquery_client_args(c)
        {'project': 'acme-data', 'location': 'EU', 'client_options': None}
    """
    options = dict(config.options)
    endpoint = options.get("endpoint")
    if endpoint:
        parts = urlsplit(endpoint)
        _check_plain_http(parts.scheme, parts.hostname or "", "the BigQuery endpoint")
    return {
        "project": config.host,
        "location": options.get("location"),
        "client_options": {"api_endpoint": endpoint} if endpoint else None,
    }


def bigquery_credentials(config: WarehouseConfig) -> Any:
    """The service account of ``?credentials=``, none for a local endpoint, or None (the
    client then finds Application Default Credentials).

    Raises:
        WarehouseUnavailable: the key file is missing or is not a service-account key.
    """
    options = dict(config.options)
    path = options.get("credentials")
    if path:
        from google.oauth2 import service_account

        if not os.path.isfile(path):
            raise WarehouseUnavailable(f"BigQuery credentials file {path} does not exist")
        try:
            return service_account.Credentials.from_service_account_file(
                path, scopes=BIGQUERY_SCOPES
            )
        except (ValueError, KeyError) as exc:
            # The library's message quotes no key material, only what is missing.
            raise WarehouseUnavailable(
                f"BigQuery credentials file {path} is not a service-account key: "
                f"{first_line(str(exc))}"
            ) from exc
    endpoint = options.get("endpoint")
    if endpoint and urlsplit(endpoint).scheme == "http":
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    return None


def bigquery_client(config: WarehouseConfig) -> Any:
    """A BigQuery client (no request is sent until the first job).

    Raises:
        WarehouseUnavailable: the client library is missing, or there are no credentials.
    """
    try:
        from google.cloud import bigquery
    except ImportError as exc:
        raise WarehouseUnavailable(
            "the BigQuery client is not installed (pip install 'tally[bigquery]')"
        ) from exc
    import google.auth.exceptions

    args = bigquery_client_args(config)
    try:
        return bigquery.Client(credentials=bigquery_credentials(config), **args)
    except google.auth.exceptions.GoogleAuthError as exc:
        raise WarehouseUnavailable(
            f"no BigQuery credentials for {config.display_url}: {first_line(str(exc))} "
            "(add ?credentials=/path/to/key.json or set GOOGLE_APPLICATION_CREDENTIALS)"
        ) from exc


def bigquery_retry(timeout_s: float) -> Any:
    """The client's default retry of API calls, bounded by ``timeout_s`` (not 10 minutes)."""
    from google.cloud.bigquery import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(timeout_s)


def bigquery_ping(client: Any, *, timeout_s: float) -> None:
    """Runs ``SELECT 1`` as a job and waits for its row."""
    retry = bigquery_retry(timeout_s)
    job = client.query("SELECT 1", retry=retry, timeout=timeout_s, job_retry=None)
    list(job.result(timeout=timeout_s, retry=retry))
