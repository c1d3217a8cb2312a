"""Snowflake as a warehouse (issue 20): URLs, the official connector's requests and failures.

No Snowflake runs here (it is a cloud service; the one emulator on PyPI, fakesnow, pins an
older sqlglot than Tally's), so rows on a real account are not checked in CI (README,
"Warehouses"). What is tested is real: the URL parser, the real ``snowflake-connector-python``
failing against a closed port, and the same connector talking to a loopback HTTP endpoint
whose answers are scripted in Snowflake's JSON (login, query, query status, result): what
Tally sends (session parameters, the salt as a bound value, never in SQL text, the abort
of a query left unread) and how it reads what comes back (types, timeout and error codes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from semantic.compiler.policies import mask_expression
from semantic.warehouse.cloud_open import snowflake_connect_args
from semantic.warehouse.config import WarehouseConfig, WarehouseURLError, parse_warehouse_url
from semantic.warehouse.connections import warehouse_ping
from semantic.warehouse.execute import CancelScope, execute, stream
from tally.errors import WarehouseError
from tests.semantic.warehouse.scripted_http import Endpoint, Request, scripted_endpoint

pytest.importorskip("snowflake.connector")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

BASE = Path("/srv/tally")
QUERY_ID = "01b0a1b2-0000-4c3d-0000-000000000001"
SALT = "pepper-of-at-least-thirty-two-characters"


@pytest.fixture(autouse=True)
def _loopback_without_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not carry requests meant for the loopback endpoint."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def _url(port: int, extra: str = "") -> WarehouseConfig:
    return parse_warehouse_url(
        f"snowflake://ann:s3cret@acme-eu/sales/mart?host=127.0.0.1&port={port}&protocol=http"
        + extra,
        base_dir=BASE,
    )


# --- the URL -------------------------------------------------------------------------------


def test_a_snowflake_url_names_account_database_schema_warehouse_and_role() -> None:
    config = parse_warehouse_url(
        "snowflake://ann:s3cret@acme-eu/sales/mart?warehouse=reporting&role=tally_reader",
        base_dir=BASE,
    )
    assert (config.engine, config.dialect, config.host) == ("snowflake", "snowflake", "acme-eu")
    assert config.display_url == "snowflake://ann@acme-eu/sales/mart"
    args = snowflake_connect_args(config, timeout_s=29.5)
    assert (args["account"], args["user"], args["password"]) == ("acme-eu", "ann", "s3cret")
    assert (args["database"], args["schema"]) == ("sales", "mart")
    assert (args["warehouse"], args["role"]) == ("reporting", "tally_reader")
    assert args["session_parameters"]["STATEMENT_TIMEOUT_IN_SECONDS"] == 30
    assert args["paramstyle"] == "qmark"  # server-side binding
    bare = parse_warehouse_url("snowflake://ann:pw@acme-eu/sales", base_dir=BASE)
    assert snowflake_connect_args(bare, timeout_s=5)["schema"] == "PUBLIC"


def test_the_connector_knows_every_argument_tally_passes(tmp_path: Path) -> None:
    """An argument the connector does not know would be silently kept aside (``_extra``)."""
    from snowflake.connector import ConnectionConfig

    key = tmp_path / "rsa_key.p8"
    key.write_text("not read here")
    urls = (
        "snowflake://ann:pw@acme/db/s?warehouse=w&role=r",
        f"snowflake://ann@acme/db?private_key_file={key}&private_key_file_pwd=pass",
        "snowflake://ann:pw@acme/db?host=127.0.0.1&port=8085&protocol=http",
    )
    for url in urls:
        args = snowflake_connect_args(parse_warehouse_url(url, base_dir=BASE), timeout_s=5)
        assert ConnectionConfig.from_kwargs(**args)._extra == {}, url


def test_key_pair_authentication_keeps_the_passphrase_out_of_the_options(tmp_path: Path) -> None:
    key = tmp_path / "rsa_key.p8"
    key.write_text("not read here")
    config = parse_warehouse_url(
        f"snowflake://ann@acme/db?private_key_file={key}&private_key_file_pwd=open%20sesame",
        base_dir=BASE,
    )
    assert config.password == "open sesame"
    assert "open sesame" not in repr(config)
    assert dict(config.options) == {"private_key_file": str(key)}
    args = snowflake_connect_args(config, timeout_s=5)
    assert args["authenticator"] == "SNOWFLAKE_JWT"
    assert (args["private_key_file"], args["private_key_password"]) == (str(key), "open sesame")
    assert "password" not in args


@pytest.mark.parametrize(
    ("url", "problem", "hint"),
    [
        ("snowflake://ann:pw@acme", "no database in the URL", "/database/schema"),
        ("snowflake://ann:pw@acme/a/b/c", "is not database/schema", "/db/schema"),
        ("snowflake://acme/db", "no user", "snowflake://user"),
        ("snowflake://ann@acme/db", "no password or private key", "private_key_file"),
        ("snowflake://ann:pw@acme/db?warehous=wh", "unknown snowflake URL option warehous", "role"),
        ("snowflake://ann:pw@acme/db?protocol=ftp", "protocol='ftp'", "https"),
        ("snowflake://ann@acme/db?private_key_file_pwd=x", "without private_key_file", ".p8"),
    ],
)
def test_a_bad_snowflake_url_says_what_is_wrong(url: str, problem: str, hint: str) -> None:
    with pytest.raises(WarehouseURLError) as caught:
        parse_warehouse_url(url, base_dir=BASE)
    assert problem in caught.value.problem
    assert hint in (caught.value.hint or "")


def test_a_url_that_does_not_parse_is_reported_without_its_password() -> None:
    with pytest.raises(WarehouseURLError) as caught:
        parse_warehouse_url("snowflake://ann:s3cret@acme:port/db", base_dir=BASE)
    assert "s3cret" not in str(caught.value)
    assert "ann:***@acme" in str(caught.value)


# --- failures before and at login ----------------------------------------------------------


def test_plain_http_to_a_remote_host_is_refused_before_any_request() -> None:
    config = parse_warehouse_url(
        "snowflake://ann:pw@acme/db?host=snowflake.example.com&protocol=http", base_dir=BASE
    )
    with pytest.raises(WarehouseError) as caught:
        execute(config, "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_unavailable"
    assert "HTTPS is required" in str(caught.value.warehouse_message)


def test_a_missing_private_key_file_is_warehouse_unavailable(tmp_path: Path) -> None:
    config = parse_warehouse_url(
        f"snowflake://ann@acme/db?private_key_file={tmp_path}/absent.p8", base_dir=BASE
    )
    with pytest.raises(WarehouseError) as caught:
        execute(config, "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_unavailable"
    assert "absent.p8 does not exist" in str(caught.value.warehouse_message)


def test_an_unreachable_account_is_warehouse_unavailable() -> None:
    with pytest.raises(WarehouseError) as caught:
        execute(_url(1), "SELECT 1", timeout_s=3)
    assert caught.value.code == "warehouse_unavailable"
    assert caught.value.hint


def test_a_refused_login_is_warehouse_unavailable_and_names_no_password() -> None:
    def refuse(request: Request) -> tuple[int, dict[str, Any]]:
        return 200, _failure("390100", "Incorrect username or password was specified.")

    with scripted_endpoint(refuse) as endpoint, pytest.raises(WarehouseError) as caught:
        execute(_url(endpoint.port), "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_unavailable"
    message = str(caught.value.warehouse_message)
    assert "Incorrect username or password" in message
    assert "s3cret" not in message
    login = endpoint.to("login-request")[0].json()["data"]
    assert (login["ACCOUNT_NAME"], login["LOGIN_NAME"]) == ("acme-eu", "ann")
    assert login["SESSION_PARAMETERS"]["TIMEZONE"] == "UTC"
    assert login["SESSION_PARAMETERS"]["STATEMENT_TIMEOUT_IN_SECONDS"] == "5"


# --- a scripted account: what Tally sends and how it reads the answers ---------------------


def _ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "code": None, "message": None, "success": True}


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"data": None, "code": code, "message": message, "success": False}


def _column(name: str, type_: str, scale: int | None = None) -> dict[str, Any]:
    precision = 38 if type_ == "fixed" else None
    return {
        **dict.fromkeys(("database", "schema", "table"), ""),
        **{"name": name, "type": type_, "scale": scale, "precision": precision, "nullable": True},
        **{"byteLength": None, "length": None},
    }


def _rows(columns: list[dict[str, Any]], rows: list[list[Any]], query_id: str) -> dict[str, Any]:
    return _ok(
        {
            "parameters": [],
            "rowtype": columns,
            "rowset": rows,
            "total": len(rows),
            "returned": len(rows),
            "queryId": query_id,
            "queryResultFormat": "json",
        }
    )


RESULT_COLUMNS = [
    _column("N", "fixed", 0),
    _column("AMOUNT", "fixed", 2),
    _column("NAME", "text"),
    _column("OK", "boolean"),
    _column("DAY", "date"),
    _column("AT_UTC", "timestamp_ntz", 9),
    _column("AT_ZONED", "timestamp_tz", 9),
    _column("PAYLOAD", "variant"),
]
# Snowflake's JSON result encoding: days since 1970, epoch seconds, seconds and offset + 1440.
RESULT_ROWS = [
    [
        "7",
        "1.50",
        "a",
        "true",
        "19000",
        "1700000000.000000000",
        "1700000000.000000000 1500",
        '{"k":1}',
    ],
    [None] * 8,
]


class Account:
    """Answers like a Snowflake account: login, statements, the async query's status."""

    def __init__(self, *, role: str = "TALLY_READER", status: dict[str, Any] | None = None):
        self.role = role
        self.status = status or {"status": "SUCCESS"}

    def __call__(self, request: Request) -> tuple[int, dict[str, Any]]:
        if "login-request" in request.path:
            return 200, _ok(
                {
                    "masterToken": "master",
                    "token": "session",
                    "validityInSeconds": 3600,
                    "masterValidityInSeconds": 14400,
                    "sessionId": 42,
                    "parameters": [],
                    "sessionInfo": {"databaseName": "SALES", "schemaName": "MART"},
                }
            )
        if "query-request" in request.path:
            query = request.json()
            if query["asyncExec"]:
                data = {"queryId": QUERY_ID, "getResultUrl": f"/queries/{QUERY_ID}/result"}
                return 200, {**_ok(data), "code": "333334"}
            if query["sqlText"] == "SELECT CURRENT_ROLE()":
                return 200, _rows(
                    [_column("CURRENT_ROLE()", "text")], [[self.role]], QUERY_ID[:-1] + "2"
                )
            status = [["Statement executed successfully."]]
            return 200, _rows([_column("status", "text")], status, QUERY_ID[:-1] + "3")
        if "/monitoring/queries/" in request.path:
            return 200, _ok({"queries": [{"id": QUERY_ID, **self.status}]})
        if request.path.startswith(f"/queries/{QUERY_ID}/result"):
            return 200, _rows(RESULT_COLUMNS, RESULT_ROWS, QUERY_ID)
        return 200, _ok({})


@pytest.fixture
def account() -> Iterator[Endpoint]:
    with scripted_endpoint(Account()) as endpoint:
        yield endpoint


def _statements(endpoint: Endpoint) -> list[dict[str, Any]]:
    return [r.json() for r in endpoint.to("query-request")]


def test_rows_arrive_typed_and_the_salt_travels_only_as_a_bound_value(account: Endpoint) -> None:
    result = execute(
        _url(account.port),
        "SELECT $tally_pii_salt",
        timeout_s=5,
        variables={"tally_pii_salt": SALT},
    )
    assert [(c.name, c.kind) for c in result.columns] == [
        ("N", "integer"),
        ("AMOUNT", "decimal"),
        ("NAME", "text"),
        ("OK", "boolean"),
        ("DAY", "date"),
        ("AT_UTC", "timestamp"),
        ("AT_ZONED", "timestamp"),
        ("PAYLOAD", "json"),
    ]
    import datetime as dt
    from decimal import Decimal

    moment = dt.datetime(2023, 11, 14, 22, 13, 20)  # naive UTC, the zoned one converted
    assert result.rows == (
        (7, Decimal("1.50"), "a", True, dt.date(2022, 1, 8), moment, moment, '{"k":1}'),
        (None,) * 8,
    )
    statements = _statements(account)
    assert [s["sqlText"] for s in statements] == [
        "SELECT CURRENT_ROLE()",  # the least-privilege check
        "SET tally_pii_salt = ?",
        "SELECT $tally_pii_salt",
    ]
    assert statements[1]["bindings"] == {"1": {"type": "TEXT", "value": SALT}}
    assert statements[2]["asyncExec"] is True
    sent_sql = json.dumps([s["sqlText"] for s in statements])
    assert SALT not in sent_sql


def test_a_stream_left_early_aborts_its_query(account: Endpoint) -> None:
    with stream(_url(account.port), "SELECT 1", timeout_s=5, batch_size=1) as (_, batches):
        next(batches)
    assert account.to(f"/queries/{QUERY_ID}/abort-request")


def test_the_statement_timeout_is_warehouse_timeout() -> None:
    timed_out = Account(
        status={
            "status": "FAILED_WITH_ERROR",
            "errorCode": "630",
            "errorMessage": "Statement reached its statement or warehouse timeout of 5 second(s) "
            "and was canceled.",
        }
    )
    with scripted_endpoint(timed_out) as endpoint, pytest.raises(WarehouseError) as caught:
        execute(_url(endpoint.port), "SELECT 1", timeout_s=5)
    assert caught.value.code == "warehouse_timeout"


def test_a_rejected_query_is_warehouse_error_with_snowflakes_code() -> None:
    rejected = Account(
        status={
            "status": "FAILED_WITH_ERROR",
            "errorCode": "2003",
            "errorMessage": "SQL compilation error:\nObject 'SALES.MART.EVENTS' does not exist.",
        }
    )
    with scripted_endpoint(rejected) as endpoint, pytest.raises(WarehouseError) as caught:
        execute(_url(endpoint.port), "SELECT * FROM events", timeout_s=5)
    assert caught.value.code == "warehouse_error"
    assert caught.value.details["driver_code"] == "002003"
    assert "does not exist" in str(caught.value.warehouse_message)


def test_an_administrative_role_is_refused_unless_allowed() -> None:
    with scripted_endpoint(Account(role="ACCOUNTADMIN")) as endpoint:
        with pytest.raises(WarehouseError) as caught:
            execute(_url(endpoint.port), "SELECT 1", timeout_s=5)
        assert caught.value.code == "warehouse_unavailable"
        assert "ACCOUNTADMIN" in str(caught.value.warehouse_message)
        assert not [s for s in _statements(endpoint) if s["sqlText"] == "SELECT 1"]
        allowed = replace(_url(endpoint.port), allow_privileged=True)
        assert execute(allowed, "SELECT 1", timeout_s=5).row_count == 2


def _encrypted_key(path: Path, passphrase: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = serialization.BestAvailableEncryption(passphrase)
    pkcs8 = serialization.PrivateFormat.PKCS8
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, encryption))
    return key.public_key()


def test_key_pair_login_sends_a_jwt_signed_with_the_decrypted_key(tmp_path: Path) -> None:
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    public_key = _encrypted_key(tmp_path / "rsa_key.p8", b"open sesame")
    with scripted_endpoint(Account()) as endpoint:
        config = parse_warehouse_url(
            f"snowflake://ann@acme-eu/sales?private_key_file={tmp_path}/rsa_key.p8"
            f"&private_key_file_pwd=open%20sesame&host=127.0.0.1&port={endpoint.port}"
            "&protocol=http",
            base_dir=BASE,
        )
        assert execute(config, "SELECT 1", timeout_s=5).row_count == 2
    login = endpoint.to("login-request")[0].json()["data"]
    assert login["AUTHENTICATOR"] == "SNOWFLAKE_JWT"
    assert "PASSWORD" not in login
    header, payload, signature = login["TOKEN"].split(".")
    padded = signature + "=" * (-len(signature) % 4)
    public_key.verify(  # raises InvalidSignature unless the key in the file signed it
        base64.urlsafe_b64decode(padded),
        f"{header}.{payload}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_a_wrong_key_passphrase_is_warehouse_unavailable_and_not_repeated(tmp_path: Path) -> None:
    _encrypted_key(tmp_path / "rsa_key.p8", b"open sesame")
    with scripted_endpoint(Account()) as endpoint:
        config = parse_warehouse_url(
            f"snowflake://ann:close-sesame@acme-eu/sales?private_key_file={tmp_path}/rsa_key.p8"
            f"&host=127.0.0.1&port={endpoint.port}&protocol=http",
            base_dir=BASE,
        )
        with pytest.raises(WarehouseError) as caught:
            execute(config, "SELECT 1", timeout_s=5)
        assert not endpoint.to("login-request")  # refused before anything was sent
    assert caught.value.code == "warehouse_unavailable"
    assert "close-sesame" not in str(caught.value.warehouse_message)


# --- the SQL -------------------------------------------------------------------------------


def test_the_compiled_salt_is_the_session_variable_tally_sets() -> None:
    """The compiler reads ``$tally_pii_salt``; the session SETs exactly that variable."""
    masked = mask_expression(exp.column("email", table="u"), "hash", "snowflake")
    sql = sqlglot.select(masked).from_("u").sql("snowflake")
    tree = sqlglot.parse_one(sql, read="snowflake")
    names = {p.name for p in tree.find_all(exp.Parameter)}
    assert names == {"tally_pii_salt"}
    assert "$tally_pii_salt" in sql


class RunningUntilAborted(Account):
    """The query runs until aborted; the first status poll is when a client cancels."""

    def __init__(self, scope: CancelScope) -> None:
        super().__init__()
        self.scope = scope
        self.aborted = False
        self.polls = 0
        self.ended_by = ""

    def __call__(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.path.startswith(f"/queries/{QUERY_ID}/abort-request"):
            self.aborted = True
            return 200, _ok({})
        if "/monitoring/queries/" in request.path:
            self.polls += 1
            if self.aborted or self.polls > 20:  # never hang: give up as a timeout would
                self.ended_by = self.ended_by or ("abort" if self.aborted else "giving up")
                failed = {"status": "FAILED_WITH_ERROR", "errorCode": "604"}
                return 200, _ok({"queries": [{"id": QUERY_ID, **failed}]})
            self.scope.cancel()  # from the server's thread, as a CancelRequest would
            return 200, _ok({"queries": [{"id": QUERY_ID, "status": "RUNNING"}]})
        return super().__call__(request)


def test_cancel_aborts_the_running_query_by_its_id() -> None:
    scope = CancelScope()
    account = RunningUntilAborted(scope)
    with scripted_endpoint(account) as endpoint:
        with pytest.raises(WarehouseError):
            execute_cancellable(_url(endpoint.port), scope)
        assert scope.requested
        assert account.ended_by == "abort"  # the query stopped because Tally aborted it


def execute_cancellable(config: WarehouseConfig, scope: CancelScope) -> None:
    with stream(config, "SELECT 1", timeout_s=20, cancel=scope) as (_, batches):
        list(batches)


def test_the_health_check_logs_in_and_runs_select_1(account: Endpoint) -> None:
    warehouse_ping(_url(account.port), timeout_s=5)
    assert [s["sqlText"] for s in _statements(account)] == ["SELECT CURRENT_ROLE()", "SELECT 1"]
