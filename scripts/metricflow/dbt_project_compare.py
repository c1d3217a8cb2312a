"""Run the same queries through MetricFlow (`mf query`) and Tally (`tally query`) on a dbt
project, and compare the rows.

    .venv/bin/python scripts/metricflow/dbt_project_compare.py BUILT_PROJECT QUERIES.json \\
        --registry /tmp/reg.sqlite3 --warehouse /tmp/p/warehouse.duckdb --mf /tmp/mfvenv/bin/mf

BUILT_PROJECT is a dbt project (e.g. a checkout of dbt-labs/jaffle-shop) whose models were
built into the DuckDB file ``--warehouse`` (``dbt run`` with a duckdb profile in the project
folder) and which Tally synced unchanged into ``--registry`` (``tally sync PROJECT_ROOT``).
QUERIES.json lists ``{"name", "metrics", "group_by", "where", "order_by", "limit",
"start_time", "end_time"}`` (see scripts/metricflow/dbt_projects/). Prints one Markdown row
per query: same rows, different (the first difference), or which side refused it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from itest_support import compare_tables  # noqa: E402

NOT_FINITE = {"inf", "-inf", "nan"}


def cell(value: str) -> Any:
    """A CSV cell back to a number, timestamp or boolean where it is one."""
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def query_args(query: dict[str, Any], *, mf: bool) -> list[str]:
    args = ["--metrics", ",".join(query["metrics"])]
    if query.get("group_by"):
        args += ["--group-by", ",".join(query["group_by"])]
    if query.get("where"):
        args += ["--where", query["where"]]
    if query.get("order_by"):
        # mf spells it --order; Tally --order-by (both take "-name" for descending).
        args += ["--order" if mf else "--order-by", ",".join(query["order_by"])]
    if query.get("limit"):
        args += ["--limit", str(query["limit"])]
    if query.get("start_time"):
        args += ["--start-time", query["start_time"], "--end-time", query["end_time"]]
    return args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("queries", type=Path)
    parser.add_argument("--registry", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--mf", default="mf", help="the mf executable (its own virtualenv)")
    args = parser.parse_args()
    tally_env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        TALLY_DEMO="1",
        DATABASE_URL=f"sqlite:///{args.registry.resolve()}",
        WAREHOUSE_URL=f"duckdb:///{args.warehouse.resolve()}",
    )
    mf_env = dict(os.environ, DBT_PROFILES_DIR=str(args.project.resolve()))
    failures = 0
    print("| query | flags | result |")
    print("| --- | --- | --- |")
    for query in json.loads(args.queries.read_text()):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "mf.csv"
            mf = subprocess.run(
                [args.mf, "query", *query_args(query, mf=True), "--csv", str(out)],
                cwd=args.project, env=mf_env, capture_output=True, text=True,
            )  # fmt: skip
            tally = subprocess.run(
                [sys.executable, "-m", "tally.cli", "query", *query_args(query, mf=False),
                 "--format", "csv"],
                cwd=REPO, env=tally_env, capture_output=True, text=True,
            )  # fmt: skip
            if not out.exists():
                lines = (mf.stdout + mf.stderr).strip().splitlines() or ["?"]
                result = f"MetricFlow refused: {lines[-1][:200]}"
            elif tally.returncode != 0:
                result = f"Tally refused: {tally.stderr.strip()[:300]}"
            else:
                expected = list(csv.reader(out.read_text().splitlines()))
                actual = list(csv.reader(tally.stdout.splitlines()))
                # A derived metric's division by zero: MetricFlow shows inf or nan (DuckDB's
                # float division), Tally NULL on every engine (README, Metrics). Such cells
                # are compared as NULL and counted, so the row says where MetricFlow differs.
                infinite = sum(v.lower() in NOT_FINITE for row in expected[1:] for v in row)
                comparison = compare_tables(
                    expected[0],
                    [
                        [None if v.lower() in NOT_FINITE else cell(v) for v in row]
                        for row in expected[1:]
                    ],
                    actual[0],
                    [[cell(v) for v in row] for row in actual[1:]],
                    check_order=bool(query.get("order_by")),
                    allow_empty=True,
                )
                result = (
                    f"same rows ({len(expected) - 1})"
                    if comparison.ok
                    else f"different: {comparison.message[:300]}"
                )
                if comparison.ok and infinite:
                    result += (
                        f"; MetricFlow differs in {infinite} cell(s): inf/nan from a division "
                        "by zero, which Tally gives as NULL"
                    )
        failures += not result.startswith("same rows")
        flags = " ".join(query_args(query, mf=False)).replace("|", "\\|")
        print(f"| {query['name']} | `{flags}` | {result} |", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
