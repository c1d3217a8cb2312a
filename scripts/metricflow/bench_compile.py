"""MetricFlow's warm in-process compile time per query (run with .venv-mf's python).

Prints one JSON line: {"<query name>": [seconds, ...]} for the given conformance queries,
each compiled (``MetricFlowEngine.explain``: SQL only, nothing executed) ``--repeat`` times
after one warm-up. bench/compile.py calls it to compare with Tally in the same run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "conformance"))

import make_project
from record import CONFORMANCE, ensure_warehouse, load_queries, mf_request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/conf"))
    parser.add_argument("--tally-python", type=Path, required=True)
    parser.add_argument("--names", required=True, help="comma-separated conformance queries")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    warehouse = (args.work / "warehouse.duckdb").resolve()
    ensure_warehouse(warehouse, args.tally_python, False)
    project = (args.work / "dbt_project").resolve()
    make_project.build(warehouse, project, [make_project.EXTRA_METRICS])
    make_project.dbt_parse(project)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from dbt_metricflow.cli.cli_configuration import CLIConfiguration

    config = CLIConfiguration()
    config.setup(dbt_profiles_path=project, dbt_project_path=project, configure_file_logging=False)
    engine = config.mf
    wanted = set(args.names.split(","))
    queries = [q for q in load_queries(CONFORMANCE / "queries.yml") if q["name"] in wanted]
    out: dict[str, list[float]] = {}
    for query in queries:
        engine.explain(mf_request(query))  # warm-up: caches, first-use imports
        samples = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            engine.explain(mf_request(query))
            samples.append(time.perf_counter() - started)
        out[query["name"]] = samples
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
