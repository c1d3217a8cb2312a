"""Benchmarks. Each module ``bench/<name>.py`` exports ``BENCHMARK`` (see bench.runner).

Run one with ``python -m bench <name> [--repeat N] [options]``; list them with
``python -m bench --list``. Each prints a Markdown table of min / median / max and, when the
benchmark names a baseline case, the ratio of medians against it.
"""
