"""CLI start-up: whole-process wall time of `tally compile`, with `mf query --explain` on
the same definitions alongside (issue #19's figure: ≤ 0.5 s; it was ~1.4 s).

Each sample is one fresh process, timed from spawn to exit, as a user meets it. Floors for
reading the numbers: the interpreter alone and `django.setup()` with Tally's settings.
MetricFlow runs from its own virtualenv (``--mf-python``, default ``.venv-mf``; see
docs/conformance.md) in a dbt project built from fixtures/ by
scripts/metricflow/make_project.py (``--parse``); without it its row is left out.

    python -m bench cli_start [--repeat 15] [--mf-python /tmp/mf/bin/python]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.runner import Benchmark, Row, Stats

ROOT = Path(__file__).resolve().parent.parent
QUERY = ("--metrics", "revenue", "--group-by", "metric_time__month,account__plan")
_NOTES: list[str] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mf-python",
        type=Path,
        default=ROOT / ".venv-mf" / "bin" / "python",
        help="python of a virtualenv with dbt-metricflow (its `mf` sits beside it)",
    )
    parser.add_argument("--events", type=int, default=2000, help="demo warehouse size")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wall(command: list[str], *, env: dict[str, str], cwd: Path, repeat: int) -> Stats:
    """Wall seconds of ``command`` run ``repeat`` times (after one untimed run); the CPU
    seconds of the same runs are kept for the ``(CPU)`` rows (less sensitive to a loaded
    machine than wall time)."""
    samples = []
    cpu = []
    for index in range(repeat + 1):
        before = _children_cpu()
        start = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if result.returncode:
            raise RuntimeError(f"{' '.join(command[:4])} … failed: {result.stderr[-2000:]}")
        if index:  # the first run warms the OS file cache and writes .pyc files
            samples.append(elapsed)
            cpu.append(_children_cpu() - before)
    _CPU[" ".join(command)] = Stats(tuple(cpu))
    return Stats(tuple(samples))


_CPU: dict[str, Stats] = {}


def _tally(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tally.cli", *args], cwd=ROOT, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"tally {args[0]} failed: {result.stderr[-2000:]}")


def run(options: argparse.Namespace) -> list[Row]:
    _NOTES.clear()
    _CPU.clear()
    repeat = options.repeat or 15
    with tempfile.TemporaryDirectory(prefix="tally-bench-cli-") as tmp:
        warehouse = Path(tmp) / "wh.duckdb"
        env = {
            # Without PYTHONDONTWRITEBYTECODE: the untimed first run of each row writes the
            # .pyc files, as installing the package does, so no sample compiles Tally's ~100
            # modules from source (~0.1 s a process a user never pays).
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "DATABASE_URL": f"sqlite:///{Path(tmp) / 'registry.sqlite3'}",
            "WAREHOUSE_URL": f"duckdb:///{warehouse}",
            "DJANGO_SETTINGS_MODULE": "tally.settings",
            "TALLY_DEMO": "1",
        }
        _tally(env, "migrate", "-v0")
        _tally(env, "generate-demo", "--events", str(options.events), "--seed", "42",
               "--out", str(warehouse))  # fmt: skip
        _tally(env, "sync", str(ROOT / "fixtures"))
        py = sys.executable
        rows = [
            Row("python -c pass (interpreter floor)", None,
                _wall([py, "-c", "pass"], env=env, cwd=ROOT, repeat=repeat)),
            Row("django.setup() (Django floor)", None,
                _wall([py, "-c", "import django; django.setup()"], env=env, cwd=ROOT,
                      repeat=repeat)),
            Row("tally compile", None,
                _wall([py, "-m", "tally.cli", "compile", *QUERY], env=env, cwd=ROOT,
                      repeat=repeat)),
            Row("tally query --explain", None,
                _wall([py, "-m", "tally.cli", "query", *QUERY, "--explain"], env=env, cwd=ROOT,
                      repeat=repeat)),
        ]  # fmt: skip
        mf_row = _metricflow(options.mf_python, warehouse, Path(tmp), env, repeat)
        if mf_row is not None:
            rows.append(mf_row)
    # CPU seconds (user + system) of the same processes, in the same order.
    labels = [row.case for row in rows]
    rows.extend(
        Row(f"{label} (CPU)", None, stats, "s CPU")
        for label, stats in zip(labels, _CPU.values(), strict=True)
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    _NOTES.append(f"{repeat} processes per row; load average at the end {load:.1f}")
    return rows


def _metricflow(
    mf_python: Path, warehouse: Path, tmp: Path, env: dict[str, str], repeat: int
) -> Row | None:
    mf = mf_python.parent / "mf"
    if not mf.exists():
        _NOTES.append(f"no MetricFlow at {mf}: its row is left out (see docs/conformance.md)")
        return None
    project = tmp / "dbt_project"
    built = subprocess.run(
        [str(mf_python), str(ROOT / "scripts" / "metricflow" / "make_project.py"),
         "--warehouse", str(warehouse), "--out", str(project), "--parse"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if built.returncode:
        _NOTES.append(f"the dbt project did not build: {built.stderr[-300:]}")
        return None
    mf_env = {k: v for k, v in env.items() if not k.startswith(("DJANGO", "TALLY", "DATABASE"))}
    mf_env["PATH"] = f"{mf.parent}{os.pathsep}{env.get('PATH', '')}"
    # mf reads the project of its working directory and the profile next to it.
    mf_env["DBT_PROFILES_DIR"] = str(project)
    version = subprocess.run([str(mf), "--version"], capture_output=True, text=True)
    _NOTES.append(f"MetricFlow: {version.stdout.strip() or version.stderr.strip()}")
    stats = _wall([str(mf), "query", *QUERY, "--explain", "--quiet"], env=mf_env, cwd=project,
                  repeat=repeat)  # fmt: skip
    shutil.rmtree(project, ignore_errors=True)
    return Row("mf query --explain", None, stats)


def notes() -> str:
    return "; ".join(_NOTES)


BENCHMARK = Benchmark(
    description="whole-process wall time of `tally compile` (and `mf query --explain`)",
    run=run,
    add_arguments=add_arguments,
    baseline="tally compile",
    notes=notes,
)
