"""Django-free layers stay Django-free (STYLE rule 4): imported in a process without settings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DJANGO_FREE = [
    "registry.roles",
    "tally.lru",
    "semantic.warehouse.config",
    "semantic.compiler.grains",
    "semantic.anomaly",
    "semantic.demo",
    "semantic.warehouse.execute",
    "semantic.warehouse.results",
    "semantic.warehouse.sessions",
    "semantic.warehouse.values",
    "semantic.warehouse.writer",
    "semantic.warehouse.spine_build",
    "semantic.warehouse.loader",
    "semantic.warehouse.load_common",
    "semantic.warehouse.load_mysql",
    "semantic.warehouse.load_postgres",
    "semantic.warehouse.time_spine",
    "lineage.graph",
    "lineage.graph.ids",
    "lineage.graph.elements",
    "lineage.graph.metrics",
    "lineage.graph.build",
    "lineage.graph.delta",
    "lineage.graph.attach",
    "lineage.graph.queries",
    "lineage.graph.export",
    "lineage.sql_lineage",
    "lineage.sql_lineage.edges",
    "lineage.sql_lineage.walk",
    "lineage.sql_lineage.statements",
    "lineage.sql_lineage.projects",
    "semantic.sqlapi.wire",
    "semantic.sqlapi.table",
    "semantic.sqlapi.translate",
    "semantic.sqlapi.catalog",
    "tally.client",
    "semantic.query_bounds",
]
# Every module of the compiler and of the definitions layer, found on disk: a new stage is
# covered without being listed.
DJANGO_FREE += sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for folder in (ROOT / "semantic" / "compiler", ROOT / "registry" / "definitions")
    for path in folder.rglob("*.py")
)


# One interpreter, one fork per module: each child starts from the same process (no Django
# settings, nothing of Tally's or Django's imported, only the third-party libraries below,
# which never import Django), imports its module and reports. A fresh interpreter per
# module gave the same answers at several times the cost.
PRELOAD = ("sqlglot", "sqlglot.optimizer", "yaml", "networkx", "jsonschema", "duckdb",
           "dbt_semantic_interfaces.implementations.semantic_manifest")  # fmt: skip
PROBE = """
import json, os, sys, traceback
os.environ.pop("DJANGO_SETTINGS_MODULE", None)
for name in sys.argv[1].split(","):
    __import__(name)
assert not [m for m in sys.modules if m.split(".")[0] in ("django", "registry", "semantic",
    "lineage", "tally")], "a preloaded library imported Django or Tally"
found = {}
for module in sys.argv[2:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            __import__(module)
            bad = sorted(m for m in sys.modules if m == "django.db" or m.startswith("django.db."))
            answer = {"imports": bad}
        except BaseException:
            answer = {"error": traceback.format_exc()}
        os.write(write, json.dumps(answer).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        body = pipe.read()
    os.waitpid(pid, 0)
    found[module] = json.loads(body or b'{"error": "the child died without an answer"}')
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def imported() -> dict[str, dict[str, object]]:
    """Module → what importing it alone pulled in (or its error)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(PRELOAD), *DJANGO_FREE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, dict[str, object]] = json.loads(result.stdout)
    return found


@pytest.mark.parametrize("module", DJANGO_FREE)
def test_module_imports_without_django(module: str, imported: dict[str, dict[str, object]]) -> None:
    """Importing the module neither needs settings nor pulls django.db into sys.modules."""
    answer = imported[module]
    assert "error" not in answer, answer.get("error")
    assert answer["imports"] == [], f"{module} imports {', '.join(answer['imports'])}"  # type: ignore[arg-type]


def test_the_probe_sees_django_db() -> None:
    """The guard can fail: a module that does import django.db is reported."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(PRELOAD), "django.db.models"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "django.db.models" in json.loads(result.stdout)["django.db.models"]["imports"]
