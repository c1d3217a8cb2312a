"""Shared fixtures: service reachability (fail under CI, skip elsewhere) and registry marks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"

SERVICES = {
    "postgres": ("127.0.0.1", 5432),
    "redis": ("127.0.0.1", 6379),
    "mariadb": ("127.0.0.1", 3306),
    "rabbitmq": ("127.0.0.1", 5672),
}
DB_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that touch the registry database run a second time with DATABASE_URL on
    # PostgreSQL (`pytest -m registry_db`); the rest need not run twice. Tests of PostgreSQL
    # behaviour itself (row locks) are `postgres_only`: deselected, not skipped, in the
    # SQLite run, and run in the PostgreSQL one.
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    if not on_postgres:
        _deselect(config, items, lambda item: item.get_closest_marker("postgres_only"))
    else:
        # A test run for each embedded engine meets the registry the same way for each: its
        # chdb case runs here; its Spark case (in the SQLite pass) would start a JVM (~20 s)
        # for a handful of tests that add nothing on the registry side.
        _deselect(config, items, _spark_case)
    for item in items:
        uses_db = bool(DB_FIXTURES & set(getattr(item, "fixturenames", ())))
        if (
            uses_db
            or item.get_closest_marker("django_db")
            or item.get_closest_marker("registry_db")
        ):
            item.add_marker(pytest.mark.registry_db)


def _spark_case(item: pytest.Item) -> bool:
    group = item.get_closest_marker("xdist_group")
    return group is not None and group.args[:1] == ("spark",)


def _deselect(
    config: pytest.Config, items: list[pytest.Item], drop: Callable[[pytest.Item], Any]
) -> None:
    deselected = [item for item in items if drop(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not drop(item)]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files (tests/semantic/golden) instead of comparing with them",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "registry_db: touches the registry DB; also run on PostgreSQL"
    )
    config.addinivalue_line(
        "markers",
        "postgres_only: tests PostgreSQL behaviour; deselected when the registry is SQLite",
    )


@pytest.fixture(autouse=True)
def _fresh_semantic_caches() -> Iterator[None]:
    # Each test builds its own registry (rolled back afterwards), so release numbers repeat
    # across tests; the in-process caches must not carry one test's release into the next.
    yield
    try:
        from semantic.services import caches_clear
    except Exception:  # Django not configured in this process: nothing was cached
        return
    caches_clear()


# select() refuses descriptors >= 1024 (CI failed on one in a worker that had leaked: chdb's
# one connection per query). A worker that ends with more open than this leaks somewhere.
# The chdb tests alone leave ~310 open for good, once: ~60 for chdb's threads and ~240 that
# its first failing query opens (it maps every loaded shared library to symbolize a trace).
FD_BOUND = 800


def open_descriptors() -> dict[str, int]:
    """This process's open file descriptors, counted by kind (socket, pipe, …) or path."""
    kinds: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed already
            continue
        kind = target.split(":")[0] if target.endswith("]") else target
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


@pytest.fixture(scope="session", autouse=True)
def _descriptors_bounded() -> Iterator[None]:
    """Fails the run (at teardown of its last test) when a test process ends with more than
    FD_BOUND descriptors open: a leak to find before it reaches select()'s 1,024."""
    yield
    if not Path("/proc/self/fd").is_dir():
        return
    kinds = open_descriptors()
    total = sum(kinds.values())
    if total > FD_BOUND:
        top = sorted(kinds.items(), key=lambda item: -item[1])[:8]
        pytest.fail(
            f"this test process ends with {total} open descriptors (bound {FD_BOUND}): a test "
            "leaks connections, sockets or pipes; the most: "
            + ", ".join(f"{kind} ×{count}" for kind, count in top)
        )


def service_reachable(name: str, timeout: float = 1.0) -> bool:
    host, port = SERVICES[name]
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skips locally, but fails under CI=true, when a service the test needs is down."""
    if service_reachable(name):
        return
    host, port = SERVICES[name]
    unavailable(f"{name} is not reachable on {host}:{port}")


def unavailable(message: str) -> None:
    """Something a test needs is missing: skip locally, fail under CI=true (never skip)."""
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a test never skips for a missing service)")
    pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    require_service("redis")
    return "redis://127.0.0.1:6379/15"


@pytest.fixture
def postgres_admin_url() -> str:
    require_service("postgres")
    return "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_registry(
    directory: Path, label: str, template: str | None = None, vendor: str | None = None
) -> Iterator[str]:
    """The URL of a fresh registry database of the vendor this run tests, or ``vendor``
    ("sqlite", "postgres"): SQLite in ``directory``, or a PostgreSQL database named after
    ``label``, dropped afterwards; empty, or a copy of ``template`` (a registry URL from
    ``registry_template``)."""
    if (vendor or registry_vendor()) == "sqlite":
        yield sqlite_registry_at(directory, template)
        return
    require_service("postgres")
    import psycopg

    name = f"tally_sub_{os.getpid()}_{abs(hash(label)) % 10**8}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    # A template is copied file by file, in well under a second; no session may be open on it
    # (its set-up ran in `tally` processes that have exited; PostgreSQL waits up to 5 s for
    # their backends to end).
    copy = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template is not None else ""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def registry_vendor() -> str:
    """The registry database this run tests: "postgres" or "sqlite"."""
    current = os.environ.get("DATABASE_URL", "")
    return "postgres" if current.startswith(("postgres://", "postgresql://")) else "sqlite"


def sqlite_registry_at(directory: Path, template: str | None = None) -> str:
    """The URL of a SQLite registry file in ``directory``: empty, or a copy of the SQLite
    ``template`` (``registry_template(…, vendor="sqlite")``). A file: nothing to drop."""
    path = directory / "registry.sqlite3"
    if template is not None:
        _sqlite_copy(template.removeprefix("sqlite:///"), path)
    return f"sqlite:///{path}"


def _sqlite_copy(source: str, target: Path) -> None:
    # SQLite's backup API: a consistent copy even of a WAL database (the registry runs WAL).
    import sqlite3

    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@pytest.fixture
def registry_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty registry database of the vendor this run tests (SQLite or PostgreSQL)."""
    with fresh_registry(tmp_path, request.node.nodeid) as url:
        yield url


@pytest.fixture(scope="module")
def module_registry_url(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """``registry_url`` shared by a module's tests: for modules whose tests only read the
    registry their set-up wrote (a `tally migrate` + sync per test was most of their time)."""
    directory = tmp_path_factory.mktemp("registry")
    with fresh_registry(directory, request.node.nodeid) as url:
        yield url


MIGRATE = ("migrate", "-v0")
SYNC_FIXTURES = ("sync", str(ROOT / "fixtures"))


@pytest.fixture(scope="session")
def registry_template(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., str]]:
    """``registry_template(("migrate", "-v0"), …)``: the URL of a registry set up by those
    `tally` commands (real subprocesses, each asserted to succeed), once per test process;
    tests get copies of it from ``fresh_registry(…, template=url)``. A `tally migrate` is
    ~5 s of CPU, a copy milliseconds on SQLite and a fraction of a second on PostgreSQL.
    ``vendor="sqlite"``/``"postgres"`` asks for that vendor whatever this run tests."""
    made: dict[tuple[str, tuple[tuple[str, ...], ...]], str] = {}
    with ExitStack() as stack:

        def template(*steps: tuple[str, ...], vendor: str | None = None) -> str:
            key = (vendor or registry_vendor(), steps)
            if key not in made:
                directory = tmp_path_factory.mktemp("registry-template")
                url = stack.enter_context(
                    fresh_registry(directory, f"template {key}", vendor=key[0])
                )
                # No warehouse is read by these steps; the registry stores no warehouse URL.
                env = {"DATABASE_URL": url, "WAREHOUSE_URL": f"duckdb:///{directory / 'wh.duckdb'}"}
                for args in steps:
                    done = run_tally(*args, env=env)
                    assert done.returncode == 0, done.stderr
                made[key] = url
            return made[key]

        yield template


@pytest.fixture
def migrated_registry_url(
    tmp_path: Path, request: pytest.FixtureRequest, registry_template: Callable[..., str]
) -> Iterator[str]:
    """``registry_url`` after `tally migrate`: a copy of a registry migrated once per test
    process, for tests that write to it (the others share ``module_registry_url``)."""
    with fresh_registry(tmp_path, request.node.nodeid, registry_template(MIGRATE)) as url:
        yield url


@pytest.fixture
def synced_registry_url(
    tmp_path: Path, request: pytest.FixtureRequest, registry_template: Callable[..., str]
) -> Iterator[str]:
    """``migrated_registry_url`` after `tally sync fixtures/` as well (release r1)."""
    template = registry_template(MIGRATE, SYNC_FIXTURES)
    with fresh_registry(tmp_path, request.node.nodeid, template) as url:
        yield url


@pytest.fixture(scope="module")
def module_synced_registry_url(
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    registry_template: Callable[..., str],
) -> Iterator[str]:
    """``module_registry_url`` after `tally migrate` and `tally sync fixtures/` (release r1),
    copied from the template, for a module's tests that only read it."""
    template = registry_template(MIGRATE, SYNC_FIXTURES)
    with fresh_registry(tmp_path_factory.mktemp("registry"), request.node.nodeid, template) as url:
        yield url


def in_own_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a thread of its own, for ``asyncio.run``/``anyio.run``: a test process
    that ran a browser journey keeps Playwright's event loop running on its main thread, where
    both refuse to start another."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


@contextmanager
def migrated_registry(
    name: str, env: dict[str, str], registry_template: Callable[..., str]
) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database ``name`` as the registry, migrated and synced with
    fixtures/ through the real CLI (a copy of the process's template of that); yields ``env``
    with its DATABASE_URL; dropped after."""
    import psycopg

    template = registry_template(MIGRATE, SYNC_FIXTURES, vendor="postgres")

    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.rsplit("/", 1)[1]}"')
    env = {**env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}"}
    try:
        yield env
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_DEMO_BUILDS: dict[tuple[int, int], Path] = {}


def demo_warehouse_at(target: str | Path, *, events: int, seed: int) -> Path:
    """``target`` becomes the demo warehouse of ``(events, seed)`` (what `tally generate-demo`
    or ``build_demo_warehouse`` writes): built once per test process (the build is
    deterministic for its arguments) and copied, since many modules use the same one."""
    import atexit
    import shutil
    import tempfile

    from semantic.demo import build_demo_warehouse

    built = _DEMO_BUILDS.get((events, seed))
    if built is None:
        folder = Path(tempfile.mkdtemp(prefix="tally-demo-builds-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        built = folder / f"demo-{events}-{seed}.duckdb"
        build_demo_warehouse(built, events=events, seed=seed)
        _DEMO_BUILDS[(events, seed)] = built
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, target)
    return target


def run_tally(
    *args: str, env: dict[str, str], timeout: float = 120, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Runs the real `tally` CLI in a subprocess with the given environment overrides."""
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "tally.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def sign_in(client: Any, django_user_model: Any) -> Any:
    """Signs the test client in as a user holding roles: ``sign_in("ana", "analyst")``.

    The API denies by default, so every API test says which role its caller holds instead
    of relying on an open endpoint. Returns the client; the user is ``client.user``.
    """
    from registry.services.access import role_grant

    def _sign_in(username: str, *roles: str, domain: str | None = None, **fields: Any) -> Any:
        user, _ = django_user_model.objects.get_or_create(username=username, defaults=fields)
        for role in roles:
            role_grant(user=user, role=role, domain=domain)
        client.force_login(user)
        client.user = user
        return client

    return _sign_in


# --------------------------------------------------------------------------- warehouse roles

# The least-privilege warehouse role the README documents (Security): Tally refuses to query
# as a superuser or a role that can read server files, so tests that query a server
# warehouse connect as this role; loading the data stays with the admin connection.
READER_ROLE = "tally_reader"
READER_PASSWORD = "tally-reader-test"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_reader_url(database: str, schemas: tuple[str, ...] = ("public",)) -> str:
    """Grants the README's read-only role SELECT on ``schemas`` of ``database``; its URL."""
    import psycopg
    from psycopg import sql

    role = sql.Identifier(READER_ROLE)
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        # CREATE ROLE has no IF NOT EXISTS, and parallel test processes share the cluster.
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN CREATE ROLE {} LOGIN PASSWORD {}; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            ).format(role, sql.Literal(READER_PASSWORD))
        )
    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role)
        )
        for schema in schemas:
            name = sql.Identifier(schema)
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(name, role))
            conn.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(name, role)
            )
            conn.execute(
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
                ).format(name, role)
            )
    return f"postgresql://{READER_ROLE}:{READER_PASSWORD}@127.0.0.1:5432/{database}"


def mariadb_reader_url(database: str) -> str:
    """Grants the README's read-only user SELECT on ``database``; its URL."""
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE USER IF NOT EXISTS '{READER_ROLE}'@'%%' IDENTIFIED BY %s",
                [READER_PASSWORD],
            )
            cur.execute(f"GRANT SELECT ON `{database}`.* TO '{READER_ROLE}'@'%'")
    finally:
        conn.close()
    return f"mysql://{READER_ROLE}:{READER_PASSWORD}@127.0.0.1:3306/{database}"


@contextmanager
def demo_on_engines(source: Path, prefix: str) -> Iterator[dict[str, Any]]:
    """The demo warehouse ``source`` loaded into a fresh PostgreSQL and MariaDB database
    (as the admin), yielding engine → (config, schema) that query as the README's read-only
    role, plus ``"database"``: the databases' name. Both databases are dropped afterwards."""
    require_service("postgres")
    require_service("mariadb")
    import psycopg
    import pymysql

    from semantic.warehouse.config import parse_warehouse_url
    from semantic.warehouse.loader import copy_duckdb_tables

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    maria = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    maria.cursor().execute(f"CREATE DATABASE `{name}`")
    try:
        copy_duckdb_tables(
            source,
            parse_warehouse_url(f"postgresql://postgres@127.0.0.1:5432/{name}", base_dir=ROOT),
            schema="public",
        )
        copy_duckdb_tables(
            source, parse_warehouse_url(f"mysql://root@127.0.0.1:3306/{name}", base_dir=ROOT)
        )
        # Loaded as the admin; queried as the README's read-only role (issue 18).
        pg = parse_warehouse_url(postgres_reader_url(name, ("public",)), base_dir=ROOT)
        my = parse_warehouse_url(mariadb_reader_url(name), base_dir=ROOT)
        yield {
            "duckdb": (parse_warehouse_url(f"duckdb:///{source}", base_dir=ROOT), "main"),
            "postgres": (pg, "public"),
            "mysql": (my, name),
            "database": name,
        }
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        maria.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        maria.close()


# --- embedded engines (issue 20): ClickHouse in chdb and Spark in local mode ---------------
# One of each per test process: chdb serves one data directory per process and a local
# SparkSession is started once (its JVM start is most of its cost), so the demo warehouse
# is loaded once per process into both and every engine test shares them.

EMBEDDED_EVENTS = 20_000
EMBEDDED_SEED = 42


@pytest.fixture(scope="session")
def embedded_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo warehouse (DuckDB) every embedded-engine test copies from."""

    path = tmp_path_factory.mktemp("embedded") / "demo.duckdb"
    demo_warehouse_at(path, events=EMBEDDED_EVENTS, seed=EMBEDDED_SEED)
    return path


@pytest.fixture(scope="session")
def chdb_warehouse(embedded_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo loaded into chdb (ClickHouse embedded), database ``main`` as in DuckDB (the
    schema fixtures/ names); its WarehouseConfig."""
    from semantic.warehouse.config import parse_warehouse_url
    from semantic.warehouse.loader import copy_duckdb_tables

    try:
        import chdb  # noqa: F401
    except ImportError as exc:
        unavailable(f"chdb is not installed: {exc}")
    path = tmp_path_factory.mktemp("chdb") / "warehouse.chdb"
    config = parse_warehouse_url(f"chdb:///{path}", base_dir=ROOT)
    copy_duckdb_tables(embedded_demo, config, schema="main")
    return config


def java_available() -> bool:
    try:
        subprocess.run(["java", "-version"], capture_output=True, check=True, timeout=30)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="session")
def spark_warehouse(embedded_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo loaded into a local Spark warehouse (database ``main``), its one SparkSession
    started."""
    from semantic.warehouse.config import parse_warehouse_url
    from semantic.warehouse.connections import warehouse_ping
    from semantic.warehouse.loader import copy_duckdb_tables

    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        unavailable(f"pyspark is not installed: {exc}")
    if not java_available():
        unavailable("no java on PATH for local Spark (./dev test installs default-jre-headless)")
    path = tmp_path_factory.mktemp("spark") / "warehouse.spark"
    # Demo-sized data: one shuffle partition and interpreted expressions (no code generation
    # per query); measured on 7 conformance queries: JVM CPU 57 s → 48 s, wall 124 s → 72 s.
    # No adaptive re-planning between stages, and a JVM that compiles only with C1 and
    # collects with the serial collector: the 93 Spark cases of test_engines_embedded took
    # 106 s of the machine's CPU, 78 s with these (85 s with adaptive execution left on).
    options = (
        "spark.sql.shuffle.partitions=1&spark.sql.adaptive.enabled=false"
        "&spark.sql.codegen.wholeStage=false&spark.sql.codegen.factoryMode=NO_CODEGEN"
        "&spark.driver.extraJavaOptions=-XX:TieredStopAtLevel%3D1%20-XX:%2BUseSerialGC"
    )
    config = parse_warehouse_url(f"spark:///{path}?{options}", base_dir=ROOT)
    copy_duckdb_tables(embedded_demo, config, schema="main")
    warehouse_ping(config, timeout_s=300)
    return config
