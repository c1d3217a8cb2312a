"""`tally compile` stays light (issue #19): its process never imports Celery, Django REST
framework, pyarrow, DuckDB, networkx or jsonschema, which it does not use, nor the query
runner's result cache (redis), time spine builder and the definitions reader (PyYAML);
`django.setup()`, which every process runs, loads none of Tally's compiler, definitions or
services. A deterministic guard on what is imported, not a timing: the figures are
`python -m bench cli_start`'s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.conftest import (
    MIGRATE,
    ROOT,
    SYNC_FIXTURES,
    demo_warehouse_at,
    sqlite_registry_at,
)

# DRF's and drf-spectacular's app packages are in INSTALLED_APPS, so every Django process
# loads their __init__ and checks modules (well under a millisecond); what must stay out is
# DRF itself (views, serializers, renderers) and the OpenAPI generator.
HEAVY = (
    "celery",
    "kombu",
    "rest_framework.views",
    "rest_framework.serializers",
    "drf_spectacular.openapi",
    "pyarrow",
    "mcp",
    # Loaded where they are used: DuckDB when a query runs, networkx and jsonschema when
    # definitions are validated (sync, lint), never by a compile.
    "duckdb",
    "networkx",
    "jsonschema",
    # Run a query only (semantic.services.query_execute loads them): the result cache and
    # the Redis client it catches errors of (~60 ms with redis's OpenTelemetry hooks), the
    # warehouse runner and the time spine builder (which reads project definitions).
    "redis",
    "semantic.result_cache",
    "semantic.warehouse.run",
    "semantic.time_spine",
    "registry.definitions.project",
    # Review policy and the definitions file reader: registry.permissions, loaded at
    # start-up, imports them when a proposal's domains or a user's teams are looked up.
    "registry.services.review_policy",
    "registry.definitions.yaml_source",
)
# What `django.setup()` alone must not load: every `tally` command, web and worker process
# pays for its app registry, so app configs, models and receivers import only those. (PyYAML
# and pydantic still come with dbt-semantic-interfaces where a filter has Jinja items.)
SETUP_HEAVY = (
    "yaml",
    "sqlglot",
    "pydantic",
    "jinja2",
    "dbt_semantic_interfaces",
    "prometheus_client",
    "semantic.compiler.manifest",
    "semantic.services",
    "registry.definitions",
    "registry.selectors",
    "registry.services",
    *HEAVY,
)
SETUP_PROBE = """
import json, sys
import django
django.setup()
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"heavy": heavy}}), file=sys.stderr)
"""
# Runs `tally compile` in this process, then reports which heavy packages it imported.
PROBE = """
import json, sys
from tally.cli import main
status = main(["compile", "--metrics", "revenue", "--group-by", "metric_time__month"])
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"status": status, "heavy": heavy}}), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, registry_template: Callable[..., str]
) -> dict[str, str]:
    # `tally migrate`, `tally generate-demo` and `tally sync fixtures/`, as copies.
    root = tmp_path_factory.mktemp("cli-imports")
    template = registry_template(MIGRATE, SYNC_FIXTURES, vendor="sqlite")
    registry_url = sqlite_registry_at(root, template)
    warehouse = demo_warehouse_at(root / "wh.duckdb", events=1000, seed=7)
    return {"DATABASE_URL": registry_url, "WAREHOUSE_URL": f"duckdb:///{warehouse}"}


def _probe(env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)],
        cwd=ROOT,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stderr.strip().splitlines()[-1])
    return found


def _base_env() -> dict[str, str]:
    return dict(os.environ)


def test_compile_imports_no_celery_drf_or_pyarrow(env: dict[str, str]) -> None:
    """Celery (the tally package loaded it), DRF and the OpenAPI generator (Django's system
    checks imported every URLconf) and pyarrow once made up most of a compile's start-up."""
    found = _probe(env)
    assert found == {"status": 0, "heavy": []}


def test_django_setup_loads_no_compiler_definitions_or_services() -> None:
    """registry's ready() loaded registry.permissions, which imported review policy, the
    definitions reader and PyYAML (~0.1 s of every process's start-up)."""
    result = subprocess.run(
        [sys.executable, "-c", SETUP_PROBE.format(heavy=SETUP_HEAVY)],
        cwd=ROOT,
        env=_base_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1]) == {"heavy": []}


def test_the_probe_sees_a_heavy_import(env: dict[str, str]) -> None:
    """The guard can fail: a command that does use DRF (the URLconf check) shows up."""
    probe = PROBE.replace('main(["compile"', 'main(["check", "--deploy"]) or main(["compile"')
    result = subprocess.run(
        [sys.executable, "-c", probe.format(heavy=HEAVY)],
        cwd=ROOT,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = json.loads(result.stderr.strip().splitlines()[-1])
    assert "rest_framework.views" in found["heavy"]


def test_celery_worker_still_finds_the_app() -> None:
    """`celery -A tally` finds the app although the package no longer imports it eagerly."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tally; print(type(tally.celery_app).__name__, tally.celery_app.main)",
        ],
        cwd=ROOT,
        env={**_base_env(), "DJANGO_SETTINGS_MODULE": "tally.settings_test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Celery", "tally"]


def test_a_task_sent_by_a_command_goes_to_tallys_celery_app(
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    registry_template: Callable[..., str],
) -> None:
    """Regression: with Celery loaded lazily, `tally sync` sent the release's lineage task
    through Celery's default app (a broker on localhost, never the configured one or the
    in-process runner), because lineage.tasks did not load tally.celery."""
    template = registry_template(MIGRATE, vendor="sqlite")
    url = sqlite_registry_at(tmp_path_factory.mktemp("sync"), template)
    fresh = {**env, "DATABASE_URL": url}
    probe = (
        "import json, sys\n"
        "from tally.cli import main\n"
        f"status = main(['sync', {str(ROOT / 'fixtures')!r}])\n"
        "from celery import current_app\n"
        "print(json.dumps({'status': status, 'app': current_app.main, "
        "'sent': 'lineage.tasks' in sys.modules}), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env={**_base_env(), **fresh},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stderr.strip().splitlines()[-1])
    assert found == {"status": 0, "app": "tally", "sent": True}


def test_the_mcp_server_loads_no_rest_framework_or_lineage_code() -> None:
    """`tally mcp` (started by every MCP client) loaded DRF's views and lineage's trace for
    one bounds check and one tool: ~0.3 s of each start."""
    probe = (
        "import json, sys\n"
        "import django\n"
        "django.setup()\n"
        "import tally.mcp.server\n"
        "heavy = [m for m in ('rest_framework.views', 'lineage.trace', 'semantic.api.views') "
        "if m in sys.modules]\n"
        "print(json.dumps(heavy), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=_base_env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
