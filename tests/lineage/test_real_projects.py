"""Tally's DIRECT column edges against hand labels of public dbt projects (issue #21), scored on
the stored excerpts (compiled SQL of the labelled models and the columns they read), so no
checkout is needed. scripts/lineage_eval/projects.py scores the full projects from a checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage.real_projects import (
    Labels,
    excerpts_path,
    label_files,
    load_labels,
    score,
    score_excerpts,
)
from lineage.sql_lineage import sql_edges

FILES = label_files()


def test_at_least_150_edges_are_labelled_across_projects() -> None:
    labels = [load_labels(p) for p in FILES]
    assert len(labels) >= 2
    assert sum(sum(len(s) for s in lab.columns.values()) for lab in labels) >= 150
    for lab in labels:
        assert len(lab.commit) == 40 and lab.repo, lab.project  # pinned


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_labelled_project_scores_precision_099_and_f1_097(path: Path) -> None:
    """The issue's figure: precision ≥ 0.99 and F1 ≥ 0.97 per project."""
    assert excerpts_path(path).is_file(), "write it with scripts/lineage_eval/projects.py"
    result = score_excerpts(path)
    assert result.precision >= 0.99 and result.f1 >= 0.97, "\n".join(result.misses)


def test_scoring_counts_missing_and_extra_edges() -> None:
    """The scorer can fail: a wrong label is a miss and the edge found is an extra."""
    labels = Labels("p", "", "", "duckdb", "", {"main.b.y": frozenset({"main.a.w"}),
                                                "main.b.z": frozenset()})  # fmt: skip
    result = score(labels, sql_edges("CREATE TABLE b AS SELECT x AS y, z FROM a"))
    assert (result.tp, result.fp, result.fn) == (0, 2, 1)
    assert result.precision == 0.0 and result.recall == 0.0
    assert "missing main.a.w > main.b.y" in result.misses
