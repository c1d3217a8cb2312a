"""Precision and recall of Tally's column lineage on a compiled public dbt project, against the
hand labels in tests/lineage/data/real_projects/.

Usage::

    python -m scripts.lineage_eval.projects CHECKOUT LABELS.yml [--write-excerpts] [--show]

CHECKOUT is the project's folder after ``dbt compile`` (it reads ``target/manifest.json`` and
``target/catalog.json`` when there); LABELS.yml names the repository and commit it was labelled
at. The whole project is imported as ``tally lineage import-dbt`` does (models ordered by
their refs, the manifest's and catalog's columns as schema), and Tally's DIRECT edges into the
labelled columns are scored. ``--write-excerpts`` stores, beside the labels, the compiled SQL
of the labelled models and the columns of what they read, for the test suite.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lineage.real_projects import (
    excerpts_dump,
    excerpts_path,
    excerpts_yaml,
    load_labels,
    score,
)
from lineage.sql_lineage import (
    SchemaBook,
    dbt_schema,
    models_from_dbt_manifest,
    project_lineage,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("labels", type=Path)
    parser.add_argument("--write-excerpts", action="store_true")
    parser.add_argument("--show", action="store_true", help="list every missed or extra edge")
    args = parser.parse_args(argv)
    manifest = args.checkout / "target" / "manifest.json"
    if not manifest.is_file():
        print(f"{manifest} not found: run `dbt compile` in {args.checkout} first", file=sys.stderr)
        return 2
    labels = load_labels(args.labels)
    started = time.perf_counter()
    models = models_from_dbt_manifest(manifest)
    book = SchemaBook()
    found = project_lineage(models, dialect=labels.dialect, schema=dbt_schema(manifest), book=book)
    seconds = time.perf_counter() - started
    result = score(labels, found.edges)
    print(f"{labels.project} @ {labels.commit[:12]}: {len(models)} models, {len(found.edges)} edges, "
          f"{len(found.issues)} statements skipped, imported in {seconds:.1f} s")  # fmt: skip
    print(
        "| project | labelled columns | labelled edges | TP | FP | FN | precision | recall | F1 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {labels.project} | {len(labels.columns)} | {result.tp + result.fn} | {result.tp} | "
          f"{result.fp} | {result.fn} | {result.precision:.3f} | {result.recall:.3f} | "
          f"{result.f1:.3f} |")  # fmt: skip
    if args.show:
        for line in result.misses:
            print(line)
        for issue in found.issues:
            print(f"skipped: {issue}")
    if args.write_excerpts:
        path = excerpts_path(args.labels)
        dump = excerpts_dump(labels, models, book.tables)
        header = (
            f"# Compiled SQL of the labelled models of {labels.repo} at {labels.commit}, and the\n"
            "# columns of what each reads: the minimum the test suite needs to score Tally's\n"
            "# extractor without the checkout. Written by scripts/lineage_eval/projects.py.\n"
        )
        path.write_text(header + excerpts_yaml(dump), encoding="utf-8")
        print(f"wrote {path} ({len(dump['models'])} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
