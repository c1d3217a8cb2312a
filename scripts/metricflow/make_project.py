"""Build a throwaway dbt project around fixtures/ so that MetricFlow can read it.

    python scripts/metricflow/make_project.py --warehouse /tmp/conf/warehouse.duckdb \
        --out /tmp/conf/dbt_project [--parse]

The project holds:

- ``dbt_project.yml`` (project and profile ``tally_conformance``) and ``profiles.yml`` for
  dbt-duckdb. The profile opens an in-memory DuckDB and ATTACHes the warehouse file READ_ONLY
  under the catalog alias ``warehouse`` with schema ``main``, so every ``ref('x')`` resolves
  to ``"warehouse"."main"."x"`` whatever the warehouse file is called, and nothing MetricFlow
  or dbt does can write to it.
- ``models/`` with a copy of the semantic YAML from fixtures/ (semantic models, metrics,
  saved queries, the time-spine ``models:`` entry) plus the extra metrics of the conformance
  suite (``tests/conformance/extra_metrics.yml``). The ODCS contracts and governance.yml are
  Tally-only and are not copied.
- one stub model per referenced table, ``models/<table>.sql`` = ``select * from main.<table>``.
  The stubs exist only so that ``ref()`` resolves; the tables already exist in the warehouse.
  NEVER ``dbt run`` this project: it would try to replace each table by a view of itself
  (the attach is read-only, so it would fail rather than damage anything).

The fixtures are copied byte for byte: dbt-core 1.11 accepts every key they use, so no
transformation is needed (see docs/conformance.md). ``--parse`` runs ``dbt parse`` with the
dbt of the interpreter running this script (use .venv-mf) and checks that
``target/semantic_manifest.json`` was written.

Only the standard library and PyYAML are needed to build the project.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
EXTRA_METRICS = REPO / "tests" / "conformance" / "extra_metrics.yml"
PROJECT_NAME = "tally_conformance"
CATALOG = "warehouse"
SCHEMA = "main"
# ref('name') or ref('package', 'name'); the relation is the last argument.
REF = re.compile(r"""^\s*ref\(\s*(?:['"][^'"]+['"]\s*,\s*)?['"]([^'"]+)['"]\s*\)\s*$""")


def semantic_files() -> list[tuple[Path, str]]:
    """(source file, name inside models/) for every definition file dbt should read."""
    files: list[tuple[Path, str]] = []
    for path in sorted((FIXTURES / "semantic_models").glob("*.yml")):
        files.append((path, f"semantic_models/{path.name}"))
    for path in sorted((FIXTURES / "metrics").glob("*.yml")):
        files.append((path, f"metrics/{path.name}"))
    files.append((FIXTURES / "saved_queries.yml", "saved_queries.yml"))
    files.append((FIXTURES / "time_spine.yml", "time_spine.yml"))
    return files


def referenced_tables(files: list[Path]) -> list[str]:
    """Tables named by ``model: ref('x')`` in semantic models and by ``models:`` entries."""
    tables: set[str] = set()
    for path in files:
        doc = yaml.safe_load(path.read_text()) or {}
        for semantic_model in doc.get("semantic_models") or []:
            match = REF.match(str(semantic_model.get("model", "")))
            if not match:
                raise SystemExit(
                    f"{path}: semantic model {semantic_model.get('name')!r} has no ref()"
                )
            tables.add(match.group(1))
        for model in doc.get("models") or []:
            tables.add(model["name"])
    return sorted(tables)


def dbt_project_yml() -> str:
    return yaml.safe_dump(
        {
            "name": PROJECT_NAME,
            "version": "1.0.0",
            "config-version": 2,
            "profile": PROJECT_NAME,
            "model-paths": ["models"],
            "target-path": "target",
            "clean-targets": ["target"],
            "flags": {"send_anonymous_usage_stats": False},
            "models": {PROJECT_NAME: {"+materialized": "view"}},
        },
        sort_keys=False,
    )


def profiles_yml(warehouse: Path) -> str:
    return yaml.safe_dump(
        {
            PROJECT_NAME: {
                "target": "conformance",
                "outputs": {
                    "conformance": {
                        "type": "duckdb",
                        "path": ":memory:",
                        "attach": [{"path": str(warehouse), "alias": CATALOG, "read_only": True}],
                        "database": CATALOG,
                        "schema": SCHEMA,
                        "threads": 1,
                    }
                },
            }
        },
        sort_keys=False,
    )


def build(warehouse: Path, out: Path, extra: list[Path]) -> list[str]:
    """Write the project into ``out`` (emptied first); returns the stub model names."""
    if out.exists():
        shutil.rmtree(out)
    models = out / "models"
    models.mkdir(parents=True)
    (out / "dbt_project.yml").write_text(dbt_project_yml())
    (out / "profiles.yml").write_text(profiles_yml(warehouse.resolve()))
    sources = semantic_files()
    for source, name in sources:
        target = models / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for index, path in enumerate(extra):
        shutil.copyfile(path, models / f"extra_{index}_{path.name}")
    tables = referenced_tables([s for s, _ in sources] + list(extra))
    for table in tables:
        (models / f"{table}.sql").write_text(
            f"-- stub: ref('{table}') resolves to {CATALOG}.{SCHEMA}.{table}, which the warehouse "
            "already holds. Never `dbt run` this project.\n"
            f"select * from {SCHEMA}.{table}\n"
        )
    return tables


def dbt_parse(out: Path) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    command = [str(dbt), "parse", "--project-dir", str(out), "--profiles-dir", str(out), "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"dbt parse failed ({result.returncode})")
    manifest = out / "target" / "semantic_manifest.json"
    if not manifest.exists():
        raise SystemExit(f"dbt parse did not write {manifest}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True, help="DuckDB warehouse file")
    parser.add_argument("--out", type=Path, required=True, help="project directory (replaced)")
    parser.add_argument(
        "--extra",
        type=Path,
        action="append",
        help=f"extra metrics YAML to include (default: {EXTRA_METRICS.relative_to(REPO)})",
    )
    parser.add_argument("--no-extra", action="store_true", help="include no extra metrics")
    parser.add_argument("--parse", action="store_true", help="run `dbt parse` afterwards")
    args = parser.parse_args(argv)
    if not args.warehouse.exists():
        raise SystemExit(f"no warehouse at {args.warehouse}")
    extra = [] if args.no_extra else (args.extra or [EXTRA_METRICS])
    tables = build(args.warehouse, args.out, extra)
    print(f"wrote dbt project {args.out} (models: {', '.join(tables)})")
    if args.parse:
        dbt_parse(args.out)
        print(f"wrote {args.out / 'target' / 'semantic_manifest.json'}")


if __name__ == "__main__":
    main()
