"""Demo warehouse generator throughput, against a bare DuckDB CTAS of the same row count.

The baseline case ``ctas_floor`` writes ``range(N)`` plus three hash columns to a fresh
DuckDB file: roughly the least any generator of N rows can cost on this machine. The ratio
column therefore shows what our realistic shapes (sort, strings, JSON, dimensions) add.

    python -m bench generator                      # 1M and 10M events
    python -m bench generator --sizes 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.runner import Benchmark, Row, measure, throughput

DEFAULT_SIZES = (1_000_000, 10_000_000)
BASELINE = "ctas_floor"
CASE = "build_demo_warehouse"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=DEFAULT_SIZES,
        help="comma-separated event counts (default 1000000,10000000)",
    )
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")


def run(options: argparse.Namespace) -> list[Row]:
    """Measures the floor and the generator at each size; seconds first, then events/s."""
    # Imported here so that `python -m bench --list` stays cheap.
    from semantic.demo import build_demo_warehouse

    seconds: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tally-bench-") as tmp:
        for n in options.sizes:
            repeat, warmup = _budget(n, options.repeat, options.warmup)
            floor_path = Path(tmp) / f"floor-{n}.duckdb"
            demo_path = Path(tmp) / f"demo-{n}.duckdb"
            floor = measure(
                lambda n=n, path=floor_path: _ctas_floor(path, n),
                repeat=repeat,
                warmup=warmup,
                setup=lambda path=floor_path: path.unlink(missing_ok=True),
            )
            # Every sample rebuilds over the previous file, as `tally demo` does on refresh.
            demo = measure(
                lambda n=n, path=demo_path: build_demo_warehouse(path, events=n, seed=options.seed),
                repeat=repeat,
                warmup=warmup,
            )
            seconds += [Row(BASELINE, n, floor), Row(CASE, n, demo)]
            # Free the disk between sizes: a 10M warehouse is ~650 MB.
            floor_path.unlink(missing_ok=True)
            demo_path.unlink(missing_ok=True)
    return seconds + [throughput(row, unit="events/s") for row in seconds]


def _ctas_floor(path: Path, n: int) -> None:
    """The cost floor: N generated rows written to a new DuckDB file and checkpointed."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute(
            f"CREATE TABLE floor AS SELECT i, hash(42, i, 'a') AS a, hash(42, i, 'b') AS b, "
            f"hash(42, i, 'c') AS c FROM range({int(n)}) AS r(i)"
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _budget(n: int, repeat: int | None, warmup: int | None) -> tuple[int, int]:
    """Default repeats keep a full run near a minute: 3 runs up to 1M, 2 above."""
    default_repeat, default_warmup = (3, 1) if n <= 1_000_000 else (2, 0)
    return (
        default_repeat if repeat is None else repeat,
        default_warmup if warmup is None else warmup,
    )


def _sizes(text: str) -> Sequence[int]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"sizes must be comma-separated integers: {exc}") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def _notes() -> str:
    import duckdb

    return f"DuckDB {duckdb.__version__}, file targets in a temporary directory"


BENCHMARK = Benchmark(
    description="demo warehouse generator throughput vs a bare DuckDB CTAS",
    run=run,
    add_arguments=add_arguments,
    baseline=BASELINE,
    notes=_notes,
)
