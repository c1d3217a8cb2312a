"""Registry figures: sync of a 1,000-metric / 200-model registry, and catalog search over 10,000.

Each registry store (SQLite file, PostgreSQL database) is measured in its own subprocess,
because Django binds one DATABASES setting per process. Baselines measured in the same run:
``floor: parse only`` (reading and validating the folder with no database: the floor of a
sync) and ``floor: page SQL`` (the bare SELECT of one page, no HTTP or serialisation: the
floor of a search).

    python -m bench registry                          # SQLite and PostgreSQL
    python -m bench registry --stores sqlite --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.runner import Benchmark, Row, Stats, run_worker

STORES = ("sqlite", "postgresql")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SYNC_MODELS, SYNC_METRICS = 200, 1000
SEARCH_METRICS = 10_000
# A mix of what a catalog sees: text search, facets, deep pages.
SEARCH_QUERIES = (
    "q=metric_12&limit=50",
    "q=revenue&limit=50",
    "owner=finance-data&tier=standard&limit=50",
    "domain=growth&limit=50&offset=2000",
    "q=Synthetic&limit=50&offset=5000",
    "limit=50",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stores",
        type=lambda s: tuple(x for x in s.split(",") if x),
        default=STORES,
        help="registry stores to measure: sqlite,postgresql",
    )


def run(options: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    repeat = options.repeat or 5
    for store in options.stores:
        samples: dict[str, Any] = run_worker(
            [sys.executable, "-m", "bench.registry", store, str(repeat)], label=f"{store} worker"
        )
        for case, (n, values) in samples.items():
            rows.append(Row(f"{case} [{store}]", n, Stats(tuple(values))))
    return rows


# --------------------------------------------------------------------------- worker


def _database_url(store: str, tmp: Path) -> tuple[str, str | None]:
    if store == "sqlite":
        return f"sqlite:///{tmp / 'bench.sqlite3'}", None
    import psycopg

    name = f"tally_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}", name


def _worker(store: str, repeat: int) -> dict[str, tuple[int, list[float]]]:
    import time

    with tempfile.TemporaryDirectory(prefix="tally-bench-registry-") as tmp_dir:
        tmp = Path(tmp_dir)
        url, pg_name = _database_url(store, tmp)
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tally.settings")
        os.environ.setdefault("TALLY_DEMO", "1")  # demo data: development secrets
        try:
            return _measure_all(tmp, repeat, time.perf_counter)
        finally:
            if pg_name:
                from django.db import connections

                connections.close_all()
                import psycopg

                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _measure_all(tmp: Path, repeat: int, clock: Any) -> dict[str, tuple[int, list[float]]]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.synthetic import write_synthetic_registry
    from registry.services.definitions import definitions_sync
    from semantic.compiler.definition_checks import load_project

    call_command("migrate", verbosity=0)
    folder = write_synthetic_registry(
        tmp / "sync", semantic_models=SYNC_MODELS, metrics=SYNC_METRICS
    )
    n_sync = SYNC_MODELS + SYNC_METRICS
    out: dict[str, tuple[int, list[float]]] = {}

    parse = []
    for _ in range(repeat):
        started = clock()
        load_project(folder)
        parse.append(clock() - started)
    out["floor: parse only"] = (n_sync, parse)

    # First sync into an empty registry: each sample needs an empty registry, so the
    # tables are emptied (untimed) by recreating the database schema between samples.
    first, unchanged = [], []
    for index in range(repeat):
        if index:
            _reset_registry(connection)
        started = clock()
        definitions_sync(root=folder, acting_user=None)
        first.append(clock() - started)
        started = clock()
        result = definitions_sync(root=folder, acting_user=None)
        unchanged.append(clock() - started)
        assert result.release is None
    out["sync_first"] = (n_sync, first)
    out["sync_unchanged"] = (n_sync, unchanged)

    # Search: 10,000 metrics in the registry, pages through the API in-process.
    _reset_registry(connection)
    big = write_synthetic_registry(tmp / "search", semantic_models=200, metrics=SEARCH_METRICS)
    definitions_sync(root=big, acting_user=None)
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user("bench")
    client = Client()
    client.force_login(user)
    api, page_sql = [], []
    from registry.selectors import definition_list

    for query in SEARCH_QUERIES * 2:  # warm caches and the connection
        assert client.get(f"/api/v1/metrics?{query}").status_code == 200
    for _ in range(repeat):
        for query in SEARCH_QUERIES:
            started = clock()
            response = client.get(f"/api/v1/metrics?{query}")
            api.append(clock() - started)
            assert response.status_code == 200
            params = dict(p.split("=") for p in query.split("&"))
            offset, limit = int(params.pop("offset", 0)), int(params.pop("limit"))
            started = clock()
            list(definition_list(kind="metric", **params)[offset : offset + limit])
            page_sql.append(clock() - started)
    out["search_api_page"] = (SEARCH_METRICS, api)
    out["floor: page SQL"] = (SEARCH_METRICS, page_sql)
    return out


def _reset_registry(connection: Any) -> None:
    from django.core.management import call_command

    # Zero the registry app's migrations and re-apply them: the immutability triggers refuse
    # DELETE on PostgreSQL, so dropping the tables is the honest way back to empty.
    call_command("migrate", "registry", "zero", verbosity=0)
    call_command("migrate", verbosity=0)


BENCHMARK = Benchmark(
    description="registry sync (1,000 metrics + 200 models) and catalog search over 10,000",
    run=run,
    add_arguments=add_arguments,
    baseline="floor",
)


if __name__ == "__main__":
    samples = _worker(sys.argv[1], int(sys.argv[2]))
    print(json.dumps(samples))
