"""Benchmark runner: timing, statistics and the Markdown table every benchmark prints.

A benchmark is a module ``bench/<name>.py`` that exposes ``BENCHMARK = Benchmark(...)``. The
runner builds its command line (shared ``--repeat``/``--warmup`` plus the benchmark's own
options), calls ``run(options)`` and prints the rows it returns as a table of min / median /
max, with each row's ratio to a baseline case measured in the same run. A module that needs
full control of its output can define ``main(argv) -> int`` instead.

Keep module import cheap (``--list`` imports every benchmark): import heavy dependencies, or
anything needing ``django.setup()``, inside ``run``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import pkgutil
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import IO, Any

__all__ = [
    "Benchmark",
    "Row",
    "Stats",
    "format_table",
    "main",
    "measure",
    "print_table",
    "run_worker",
    "throughput",
]


@dataclass(frozen=True)
class Stats:
    """Samples of one measured case, in the unit of the row that holds them.

    Example:
        >>> Stats((3.0, 1.0, 2.0)).median
        2.0
    """

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("Stats needs at least one sample")

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def map(self, fn: Callable[[float], float]) -> Stats:
        """Applies ``fn`` to every sample (unit conversion, seconds → rate).

        Example:
            >>> Stats((0.5, 2.0)).map(lambda s: 10 / s).samples
            (20.0, 5.0)
        """
        return Stats(tuple(fn(s) for s in self.samples))


@dataclass(frozen=True)
class Row:
    """One line of a results table.

    Attributes:
        case: what was measured; rows of the same case at several sizes share the name.
        n: problem size (rows, queries…), or None when it has none.
        stats: the samples, already in ``unit``.
        unit: ``"s"`` for durations, or a rate such as ``"events/s"``.
    """

    case: str
    n: int | None
    stats: Stats
    unit: str = "s"


@dataclass(frozen=True)
class Benchmark:
    """What a ``bench/<name>.py`` module exports as ``BENCHMARK``.

    Attributes:
        description: one line for ``--list`` and the table heading.
        run: takes the parsed options (including ``repeat`` and ``warmup``, None unless
            given) and returns the rows to print.
        add_arguments: adds the benchmark's own options to the parser.
        baseline: case name the ratio column compares against, if any.
        notes: extra environment for the heading, such as library versions.
    """

    description: str
    run: Callable[[argparse.Namespace], Sequence[Row]]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    baseline: str | None = None
    notes: Callable[[], str] | None = None


def measure(
    fn: Callable[[], object],
    *,
    repeat: int = 5,
    warmup: int = 1,
    setup: Callable[[], object] | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> Stats:
    """Times ``fn`` ``repeat`` times after ``warmup`` untimed calls.

    As ``timeit`` does, the garbage collector is collected before and disabled during each
    timed call, so a collection triggered by earlier garbage does not land in one sample.

    Args:
        fn: the work to time; its result is discarded.
        repeat: timed calls (at least 1).
        warmup: untimed calls first (caches, JIT-like first-call costs).
        setup: untimed preparation before every call (e.g. deleting an output file).
        timer: clock, seconds as float.

    Returns:
        Durations in seconds.

    Raises:
        ValueError: repeat < 1 or warmup < 0.

    Example:
        >>> stats = measure(lambda: sum(range(1000)), repeat=3, warmup=0)
        >>> len(stats.samples), stats.min <= stats.median <= stats.max
        (3, True)
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    if warmup < 0:
        raise ValueError(f"warmup must be at least 0, got {warmup}")
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    samples = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            started = timer()
            fn()
            samples.append(timer() - started)
        finally:
            if was_enabled:
                gc.enable()
    return Stats(tuple(samples))


def throughput(row: Row, *, unit: str) -> Row:
    """The same measurement as a rate: ``n`` per second of each sample.

    Example:
        >>> throughput(Row("build", 1000, Stats((2.0, 4.0))), unit="rows/s").stats.samples
        (500.0, 250.0)
    """
    if row.n is None or row.unit != "s":
        raise ValueError("throughput needs a row in seconds with a size n")
    n = row.n
    return Row(row.case, n, row.stats.map(lambda seconds: n / seconds), unit)


def format_table(rows: Sequence[Row], *, baseline: str | None = None) -> str:
    """Renders rows as a Markdown table; with ``baseline``, adds each row's ratio to it.

    The ratio is median / median of the baseline row with the same ``n`` and unit (so for
    durations > 1 means slower, for rates < 1 means slower); rows with no such baseline row
    leave the cell empty. A case may end in `` [group]`` (say, the database it ran on): it is
    then compared with the baseline of its own group. A baseline case may also be named
    ``"<baseline>: what it is"``, so one table can hold different floors at different ``n``.

    Example:
        >>> rows = [Row("floor", 10, Stats((1.0,))), Row("ours", 10, Stats((2.5,)))]
        >>> print(format_table(rows, baseline="floor"))
        | case | n | min | median | max | unit | ratio vs floor |
        | --- | ---: | ---: | ---: | ---: | --- | ---: |
        | floor | 10 | 1.00 | 1.00 | 1.00 | s | 1.00x |
        | ours | 10 | 2.50 | 2.50 | 2.50 | s | 2.50x |
    """
    header = ["case", "n", "min", "median", "max", "unit"]
    align = ["---", "---:", "---:", "---:", "---:", "---"]
    base = {
        (r.n, r.unit, _group(r.case)): r.stats.median
        for r in rows
        if baseline is not None and _is_baseline(r.case, baseline)
    }
    if baseline is not None:
        header.append(f"ratio vs {baseline}")
        align.append("---:")
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for row in rows:
        cells = [
            row.case,
            "" if row.n is None else f"{row.n:,}",
            _number(row.stats.min),
            _number(row.stats.median),
            _number(row.stats.max),
            row.unit,
        ]
        if baseline is not None:
            reference = base.get((row.n, row.unit, _group(row.case)))
            cells.append("" if not reference else f"{row.stats.median / reference:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _group(case: str) -> str:
    """The ``[group]`` suffix of a case name, or "" (see format_table)."""
    return case[case.rindex(" [") + 2 : -1] if case.endswith("]") and " [" in case else ""


def _is_baseline(case: str, baseline: str) -> bool:
    name = case[: case.rindex(" [")] if _group(case) else case
    return name == baseline or name.startswith(f"{baseline}: ")


def print_table(
    rows: Sequence[Row], *, baseline: str | None = None, file: IO[str] | None = None
) -> None:
    """Prints :func:`format_table` output (to stdout by default)."""
    print(format_table(rows, baseline=baseline), file=file or sys.stdout)


def run_worker(command: Sequence[str], *, label: str, tail: int = 3000) -> Any:
    """Runs a benchmark worker in its own process (Django binds one database per process)
    and returns the JSON its last stdout line holds.

    Raises:
        RuntimeError: the worker exited non-zero; the message ends with its stderr's tail.
    """
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{result.stderr[-tail:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench NAME [--repeat N] [options]`` and ``--list``."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Two-stage parsing: the benchmark's own options are known only after importing it.
    first = argparse.ArgumentParser(prog="python -m bench", add_help=False)
    first.add_argument("name", nargs="?")
    first.add_argument("--list", action="store_true")
    first.add_argument("-h", "--help", action="store_true")
    known, rest = first.parse_known_args(args)
    if known.list:
        for name, summary in _discover():
            print(f"{name:<20} {summary}")
        return 0
    if known.name is None:
        print(_USAGE, file=sys.stderr if not known.help else sys.stdout)
        return 0 if known.help else 2
    module = _load(known.name)
    if module is None:
        print(f"no benchmark named {known.name!r}; see python -m bench --list", file=sys.stderr)
        return 2
    bench = getattr(module, "BENCHMARK", None)
    if not isinstance(bench, Benchmark):
        custom = getattr(module, "main", None)
        if not callable(custom):
            print(f"bench.{known.name} defines neither BENCHMARK nor main()", file=sys.stderr)
            return 2
        passthrough = [*rest, "--help"] if known.help else rest
        return int(custom(passthrough) or 0)

    parser = argparse.ArgumentParser(
        prog=f"python -m bench {known.name}", description=bench.description
    )
    parser.add_argument("--repeat", type=_positive, default=None, help="timed runs per case")
    parser.add_argument("--warmup", type=_non_negative, default=None, help="untimed runs first")
    if bench.add_arguments is not None:
        bench.add_arguments(parser)
    options = parser.parse_args([*rest, "--help"] if known.help else rest)
    rows = bench.run(options)
    print(f"## bench {known.name}: {bench.description}\n")
    print(_environment() + (f"; {bench.notes()}" if bench.notes else "") + "\n")
    print_table(rows, baseline=bench.baseline)
    return 0


_USAGE = """usage: python -m bench NAME [--repeat N] [--warmup N] [options]
       python -m bench --list
       python -m bench NAME --help"""


def _discover() -> list[tuple[str, str]]:
    """(name, one-line description) of every benchmark module in this package."""
    package = importlib.import_module(__package__ or "bench")
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "runner":
            continue
        try:
            module = importlib.import_module(f"{package.__name__}.{info.name}")
        except Exception as exc:  # a broken benchmark must not hide the others
            found.append((info.name, f"(cannot import: {exc})"))
            continue
        bench = getattr(module, "BENCHMARK", None)
        if isinstance(bench, Benchmark):
            found.append((info.name, bench.description))
        elif callable(getattr(module, "main", None)):
            doc = (module.__doc__ or "").strip()
            found.append((info.name, doc.splitlines()[0] if doc else "(no description)"))
    return found


def _load(name: str) -> ModuleType | None:
    """Imports ``bench.<name>``, or None when no such module exists."""
    if not name.isidentifier() or name.startswith("_") or name == "runner":
        return None
    qualified = f"{__package__ or 'bench'}.{name}"
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        # Only "this benchmark does not exist" means None; a missing dependency inside an
        # existing benchmark must surface as the real error.
        if exc.name == qualified:
            return None
        raise


def _environment() -> str:
    """One line describing where the numbers came from."""
    return (
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.machine()}"
    )


def _number(value: float) -> str:
    """Readable fixed-width-ish numbers: 3 significant digits, thousands separated above 1000."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value
