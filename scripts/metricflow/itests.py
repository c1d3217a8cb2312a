"""Run MetricFlow's own integration test cases through Tally and compare the rows.

    .venv/bin/python scripts/metricflow/itests.py CHECKOUT [--only FILE ...] [--json OUT]
        [--work DIR] [--cases]
    .venv/bin/python scripts/metricflow/itests.py CHECKOUT --manifests
    .venv/bin/python scripts/metricflow/itests.py CHECKOUT --fan-out [--cap N] [--json OUT]

CHECKOUT is a checkout of the public dbt-labs/metricflow repository (nothing of it is copied
into this repository). Steps:

1. Loads every source table snapshot (``tests_metricflow/fixtures/source_table_snapshots/``)
   into a fresh DuckDB file ``<work>/warehouse.duckdb``, schema ``mf_src``.
2. Renders each case's ``check_query`` for DuckDB (itest_support.render_template: MetricFlow's
   CheckQueryHelpers as its DuckDB renderer prints them) and runs it: the expected rows.
3. For each semantic manifest the selected cases use, copies it to ``<work>/manifests/`` with
   ``$source_schema`` replaced (what MetricFlow's own harness does when it loads a manifest),
   then, in a child process with a throwaway SQLite registry, syncs it with the service behind
   ``tally sync`` (``definitions_sync``) and runs each case with the service behind
   ``tally query`` (``query_execute``) on that DuckDB file.
4. Compares Tally's rows with the expected rows (itest_support.compare_tables) and prints a
   table per file (passed / failed / not applicable) and, with ``--cases``, every case.
   ``--json OUT`` writes the whole result.

Not applicable means the case asks for something Tally does not offer (an engine feature
DuckDB lacks) or Tally refused it as
an unsupported metric kind; the reason is listed. "MetricFlow differs" is a case listed in
itest_differences.KNOWN_DIFFERENCES (MetricFlow's expected rows are wrong or approximate,
with the reason) whose rows Tally gives as that entry's own check query states; if Tally's
rows match neither, the case failed. "Tally refuses" is a case listed in
itest_differences.KNOWN_REFUSALS (MetricFlow's expected rows are a fan-out through a key the
fixture's data repeats) that Tally refuses with the listed code while our own check query
finds the repeated key; if Tally answers it, the case failed. Everything else is passed or
failed.

``--fan-out`` checks issue #16's fan-out property on each manifest the itests load instead
of running the cases (fan_out.py): for every simple metric over a SUM/COUNT measure and every
group-by item Tally lists as reachable for it (at most 40; time items once, no date parts),
the groups must add up to the ungrouped total. Prints metrics / pairs / equal / refused /
DIFFERENT per manifest; a DIFFERENT pair is a silent fan-out (or lost rows), listed with both
totals and the compiled SQL's joins.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from itest_differences import KNOWN_DIFFERENCES, KNOWN_REFUSALS  # noqa: E402
from itest_support import (  # noqa: E402
    CASES_DIR,
    MANIFESTS_DIR,
    MODEL_MANIFESTS,
    SNAPSHOTS_DIR,
    SOURCE_SCHEMA_PLACEHOLDER,
    ItestCase,
    TallyRequest,
    case_request,
    compare_tables,
    load_cases,
    parse_snapshot,
    render_template,
)

SOURCE_SCHEMA = "mf_src"
# Tally error codes that mean "not claimed" rather than "wrong".
NOT_CLAIMED_CODES = {"unsupported_metric", "unsupported_query"}
# Status of a case listed in KNOWN_DIFFERENCES whose rows are those of our own check.
DIFFERS = "MetricFlow differs"
# Status of a case listed in KNOWN_REFUSALS that Tally refuses as listed (a fan-out).
REFUSES = "Tally refuses"
ROW_CAP = 100_000


# --------------------------------------------------------------------------- warehouse


def build_warehouse(checkout: Path, path: Path) -> int:
    """Loads every snapshot into ``path`` (recreated); returns the number of tables."""
    import duckdb

    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute(f"CREATE SCHEMA {SOURCE_SCHEMA}")
    count = 0
    for file in sorted((checkout / SNAPSHOTS_DIR).rglob("*.yaml")):
        snapshot = parse_snapshot(file.read_text())
        con.execute(snapshot.create_sql(SOURCE_SCHEMA))
        if snapshot.rows:
            marks = ", ".join("?" for _ in snapshot.columns)
            con.executemany(
                f'INSERT INTO {SOURCE_SCHEMA}."{snapshot.name}" VALUES ({marks})',
                [list(row) for row in snapshot.rows],
            )
        count += 1
    con.close()
    return count


def expected_rows(path: Path, cases: list[ItestCase]) -> dict[tuple[str, str], dict[str, Any]]:
    """Runs each case's check query; maps (file, case) → columns and rows, or error."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for case in cases:
        key = (case.file, case.name)
        try:
            sql = render_template(case.check_query, source_schema=SOURCE_SCHEMA)
            cur = con.execute(sql)
            out[key] = {
                "columns": [d[0] for d in cur.description],
                "rows": cur.fetchall(),
                "sql": sql,
            }
        except Exception as exc:  # the check query itself failed: report, do not stop
            out[key] = {"error": f"{type(exc).__name__}: {exc}"}
        known = KNOWN_DIFFERENCES.get(key) or KNOWN_REFUSALS.get(key)
        if known is not None and "error" not in out[key]:
            # Our own statement of the right answer; an error here is a bug of ours: raise.
            cur = con.execute(known.check_query.format(source_schema=SOURCE_SCHEMA))
            out[key]["own"] = {"columns": [d[0] for d in cur.description], "rows": cur.fetchall()}
    con.close()
    return out


# --------------------------------------------------------------------------- manifests


def prepare_manifest(checkout: Path, name: str, work: Path) -> Path:
    """The manifest folder with ``$source_schema`` substituted (symlinks followed)."""
    source = checkout / MANIFESTS_DIR / name
    target = work / "manifests" / name
    shutil.rmtree(target, ignore_errors=True)
    for file in sorted(source.rglob("*")):
        if file.suffix not in (".yaml", ".yml") or not file.is_file():
            continue
        dest = target / file.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(file.read_text().replace(SOURCE_SCHEMA_PLACEHOLDER, SOURCE_SCHEMA))
    return target


def _child_env(work: Path, registry: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tally.settings",
        DATABASE_URL=f"sqlite:///{registry}",
        WAREHOUSE_URL=f"duckdb:///{work / 'warehouse.duckdb'}",
        TALLY_DEMO="1",
        CELERY_BROKER_URL="",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("REDIS_URL", None)
    return env


def run_child(job: dict[str, Any], work: Path, registry: Path) -> dict[str, Any]:
    """Runs ``job`` in a child process (its own Django, registry and settings)."""
    job_path = work / f"job-{job['name']}.pickle"
    out_path = work / f"result-{job['name']}.pickle"
    out_path.unlink(missing_ok=True)
    job_path.write_bytes(pickle.dumps(job))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(job_path), str(out_path)],
        env=_child_env(work, registry),
        cwd=str(REPO),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not out_path.exists():
        return {"crash": (proc.stderr or proc.stdout)[-3000:]}
    result: dict[str, Any] = pickle.loads(out_path.read_bytes())
    return result


def child_main(job_path: Path, out_path: Path) -> None:
    """In the child: migrate (template registry) or sync one manifest and run its cases."""
    import django

    django.setup()
    from django.core.management import call_command

    job = pickle.loads(job_path.read_bytes())
    if job["kind"] == "migrate":
        call_command("migrate", verbosity=0, interactive=False)
        out_path.write_bytes(pickle.dumps({"ok": True}))
        return

    from registry.services.definitions import definitions_sync
    from semantic.compiler.spec import MetricQuery
    from semantic.services import caches_clear, query_execute, saved_query_apply
    from tally.errors import TallyError

    result: dict[str, Any] = {"cases": {}}
    try:
        synced = definitions_sync(root=Path(job["manifest_dir"]), acting_user=None, note="itests")
        result["plan"] = synced.plan.counts()
        result["release"] = synced.release.name if synced.release is not None else None
    except TallyError as exc:
        details = exc.details if isinstance(exc.details, list) else []
        lines = [f"{d.get('file')}:{d.get('line')}: {d.get('message')}" for d in details[:12]]
        result["sync_error"] = f"{exc.code}: {exc.message}" + "".join(f"\n  {x}" for x in lines)
        out_path.write_bytes(pickle.dumps(result))
        return
    caches_clear()
    if job.get("fan_out"):
        from fan_out import child_fan_out

        result["fan_out"] = child_fan_out(job["fan_out"])
    for name, request in job["requests"].items():
        started = time.perf_counter()
        try:
            query = MetricQuery(
                metrics=tuple(request["metrics"]),
                group_by=tuple(request["group_by"]),
                where=tuple(request["where"]),
                start_time=request["start_time"],
                end_time=request["end_time"],
                order_by=tuple(request["order_by"]),
                limit=request["limit"],
                min_max_only=request.get("min_max_only", False),
                apply_group_by=request.get("apply_group_by", True),
            )
            if request["saved_query"]:
                query = saved_query_apply(
                    name=request["saved_query"], query=query, release_ref=None
                )
            answer = query_execute(query=query, row_cap=ROW_CAP)
            result["cases"][name] = {
                "columns": list(answer.columns),
                "rows": [list(r) for r in answer.rows],
                "sql": answer.compiled.sql,
                "seconds": time.perf_counter() - started,
            }
        except TallyError as exc:
            result["cases"][name] = {"code": exc.code, "error": exc.message, "hint": exc.hint}
        except Exception as exc:  # a crash is a finding: record it and go on
            result["cases"][name] = {"code": "crash", "error": f"{type(exc).__name__}: {exc}"}
    out_path.write_bytes(pickle.dumps(result))


# --------------------------------------------------------------------------- report


def judge(
    case: ItestCase,
    request: TallyRequest | str,
    expected: dict[str, Any],
    actual: dict[str, Any] | None,
    sync_error: str | None,
) -> tuple[str, str]:
    """(status, reason) of one case: passed, failed, n/a or MetricFlow differs."""
    if isinstance(request, str):
        return "n/a", request
    if "error" in expected:
        return "failed", f"check query failed on DuckDB: {expected['error']}"
    if sync_error is not None:
        return "failed", f"manifest {case.manifest} did not sync (listed above)"
    if actual is None:
        return "failed", "no result from the child process"
    refusal = KNOWN_REFUSALS.get((case.file, case.name))
    if refusal is not None:
        # MetricFlow's rows here are a fan-out: Tally must refuse, for the listed cause.
        if "error" not in actual:
            return "failed", f"answered where {refusal.code} was expected: {refusal.reason}"
        if actual["code"] != refusal.code:
            return "failed", f"{actual['code']}: {actual['error']}"
        if not expected.get("own", {}).get("rows"):
            return "failed", "refused, but our check query finds no repeated key"
        return REFUSES, f"{refusal.reason}; Tally: {actual['error']}"
    if "error" in actual:
        status = "n/a" if actual["code"] in NOT_CLAIMED_CODES else "failed"
        return status, f"{actual['code']}: {actual['error']}"
    comparison = compare_tables(
        expected["columns"],
        expected["rows"],
        actual["columns"],
        actual["rows"],
        check_order=bool(case.raw.get("check_order")),
        allow_empty=bool(case.raw.get("allow_empty")),
    )
    if comparison.ok:
        return "passed", ""
    known = KNOWN_DIFFERENCES.get((case.file, case.name))
    if known is not None:
        own = compare_tables(
            expected["own"]["columns"],
            expected["own"]["rows"],
            actual["columns"],
            actual["rows"],
        )
        if own.ok:
            return DIFFERS, f"{known.verdict}: {comparison.message}; {known.reason}"
        return "failed", f"{comparison.message} (nor the rows of our own check: {own.message})"
    return "failed", comparison.message


def migrated_template(work: Path) -> Path | None:
    """A migrated, empty SQLite registry to copy for each manifest (made once)."""
    template = work / "registry-template.sqlite3"
    if not template.exists():
        migrated = run_child({"kind": "migrate", "name": "migrate"}, work, template)
        if "crash" in migrated:
            print(migrated["crash"], file=sys.stderr)
            template.unlink(missing_ok=True)
            return None
    return template


def sync_manifests(checkout: Path, work: Path, json_out: Path | None) -> int:
    """Syncs each manifest under MANIFESTS_DIR unchanged (bar ``$source_schema``) into its
    own empty registry with ``definitions_sync``; prints a Markdown table."""
    template = migrated_template(work)
    if template is None:
        return 2
    root = checkout / MANIFESTS_DIR
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.y*ml")))
    names += sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and p.name not in names and any(p.rglob("*.y*ml")) and p.name != "shared"
    )
    rows = []
    print("| manifest | result | objects synced |")
    print("| --- | --- | ---: |")
    for name in sorted(set(names) - {"shared"}):
        registry = work / f"registry-{name}.sqlite3"
        shutil.copyfile(template, registry)
        job = {
            "kind": "run",
            "name": name,
            "manifest_dir": str(prepare_manifest(checkout, name, work)),
            "requests": {},
        }
        result = run_child(job, work, registry)
        if "crash" in result:
            status, detail = "crashed", result["crash"].strip().splitlines()[-1]
        elif "sync_error" in result:
            status, detail = "refused", result["sync_error"].replace("\n", " ")
        else:
            plan = result["plan"]
            status, detail = "synced", str(plan["add"] + plan["restore"])
        rows.append({"manifest": name, "status": status, "detail": detail})
        print(f"| {name} | {status} | {detail if status == 'synced' else ''} |", flush=True)
    print()
    for row in rows:
        if row["status"] != "synced":
            print(f"- {row['manifest']}: {row['detail'][:600]}")
    if json_out:
        json_out.write_text(json.dumps({"manifests": rows}, indent=2))
    return 0 if all(r["status"] == "synced" for r in rows) else 1


def fan_out_main(checkout: Path, work: Path, json_out: Path | None, cap: int) -> int:
    """Syncs each manifest the itests use into its own registry and checks the fan-out
    property there (fan_out.child_fan_out); prints the per-manifest table."""
    from fan_out import print_table

    tables = build_warehouse(checkout, work / "warehouse.duckdb")
    print(f"loaded {tables} source tables", file=sys.stderr)
    template = migrated_template(work)
    if template is None:
        return 2
    results: dict[str, dict[str, Any]] = {}
    for manifest in sorted(set(MODEL_MANIFESTS.values())):
        registry = work / f"registry-fanout-{manifest}.sqlite3"
        shutil.copyfile(template, registry)
        job = {
            "kind": "run",
            "name": f"fanout-{manifest}",
            "manifest_dir": str(prepare_manifest(checkout, manifest, work)),
            "requests": {},
            "fan_out": cap,
        }
        started = time.perf_counter()
        result = run_child(job, work, registry)
        if "crash" in result:
            results[manifest] = {"error": "child process crashed: " + result["crash"]}
        elif "sync_error" in result:
            results[manifest] = {"error": "did not sync: " + result["sync_error"]}
        else:
            results[manifest] = result["fan_out"]
        print(f"{manifest}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print_table(results, cap)
    if json_out:
        json_out.write_text(json.dumps(results, indent=2))
    return 0 if all("error" not in r and not r["different"] for r in results.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout of dbt-labs/metricflow")
    parser.add_argument("--only", nargs="+", default=None, help="itest files (name or stem)")
    parser.add_argument("--json", type=Path, default=None, help="write the full result here")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tally-itests"))
    parser.add_argument("--cases", action="store_true", help="list every case")
    parser.add_argument(
        "--manifests",
        action="store_true",
        help="instead: sync every semantic manifest MetricFlow ships, one table row each",
    )
    parser.add_argument(
        "--fan-out",
        action="store_true",
        help="instead: check that groups add up to the total on every manifest the itests use",
    )
    parser.add_argument(
        "--cap", type=int, default=40, help="with --fan-out: group-by items per metric (40)"
    )
    args = parser.parse_args(argv)

    checkout: Path = args.checkout.resolve()
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.manifests:
        return sync_manifests(checkout, work, args.json)
    if args.fan_out:
        return fan_out_main(checkout, work, args.json, args.cap)
    files = sorted((checkout / CASES_DIR).glob("itest_*.yaml"))
    if not files:
        parser.error(f"no itest_*.yaml under {checkout / CASES_DIR}: not a metricflow checkout")
    if args.only:
        wanted = {o.removesuffix(".yaml") for o in args.only}
        files = [f for f in files if f.stem in wanted or f.stem.removeprefix("itest_") in wanted]
        if not files:
            parser.error(f"--only matched no file: {args.only}")

    cases = [case for file in files for case in load_cases(file)]
    warehouse = work / "warehouse.duckdb"
    tables = build_warehouse(checkout, warehouse)
    print(f"loaded {tables} source tables into {warehouse}", file=sys.stderr)
    expected = expected_rows(warehouse, cases)
    requests = {(c.file, c.name): case_request(c, source_schema=SOURCE_SCHEMA) for c in cases}

    template = migrated_template(work)
    if template is None:
        return 2

    actual: dict[tuple[str, str], dict[str, Any]] = {}
    sync_errors: dict[str, str] = {}
    for manifest in sorted({c.manifest for c in cases}):
        jobs = {
            f"{c.file}/{c.name}": requests[(c.file, c.name)]
            for c in cases
            if c.manifest == manifest and not isinstance(requests[(c.file, c.name)], str)
        }
        registry = work / f"registry-{manifest}.sqlite3"
        shutil.copyfile(template, registry)
        job = {
            "kind": "run",
            "name": manifest,
            "manifest_dir": str(prepare_manifest(checkout, manifest, work)),
            "requests": {k: v.as_dict() for k, v in jobs.items() if isinstance(v, TallyRequest)},
        }
        print(f"{manifest}: {len(jobs)} case(s)", file=sys.stderr)
        result = run_child(job, work, registry)
        if "crash" in result:
            sync_errors[manifest] = "child process crashed: " + result["crash"]
        elif "sync_error" in result:
            sync_errors[manifest] = result["sync_error"]
        for key, value in result.get("cases", {}).items():
            file, name = key.split("/", 1)
            actual[(file, name)] = value

    report: list[dict[str, Any]] = []
    for case in cases:
        key = (case.file, case.name)
        status, reason = judge(
            case, requests[key], expected[key], actual.get(key), sync_errors.get(case.manifest)
        )
        request = requests[key]
        report.append(
            {
                "file": case.file,
                "case": case.name,
                "manifest": case.manifest,
                "status": status,
                "reason": reason,
                "request": request.as_dict() if isinstance(request, TallyRequest) else None,
                "tally_sql": (actual.get(key) or {}).get("sql"),
            }
        )

    for manifest, error in sync_errors.items():
        print(f"{manifest} did not sync: {error}\n")
    print_report(report, list_cases=args.cases)
    if args.json:
        args.json.write_text(json.dumps({"cases": report, "sync_errors": sync_errors}, indent=2))
    return 0 if all(r["status"] != "failed" for r in report) else 1


def print_report(report: list[dict[str, Any]], *, list_cases: bool) -> None:
    """The per-file table (Markdown), then the failed and n/a cases with their reasons."""
    by_file: dict[str, Counter[str]] = {}
    for row in report:
        by_file.setdefault(row["file"], Counter())[row["status"]] += 1
    print("| file | cases | passed | failed | n/a | MetricFlow differs | Tally refuses |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    total: Counter[str] = Counter()
    for file, counts in by_file.items():
        total.update(counts)
        print(
            f"| {file} | {sum(counts.values())} | {counts['passed']} | {counts['failed']} "
            f"| {counts['n/a']} | {counts[DIFFERS]} | {counts[REFUSES]} |"
        )
    print(
        f"| **all** | {sum(total.values())} | {total['passed']} | {total['failed']} "
        f"| {total['n/a']} | {total[DIFFERS]} | {total[REFUSES]} |"
    )
    print()
    for row in report:
        if list_cases or row["status"] != "passed":
            reason = row["reason"].replace("\n", " ")
            if len(reason) > 800:
                reason = reason[:800] + "…"
            print(
                f"- {row['file']}/{row['case']}: {row['status']}"
                + (f" — {reason}" if reason else "")
            )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(Path(sys.argv[2]), Path(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
