"""load_project reuses what it read only while the folder's contents are exactly the same."""

from __future__ import annotations

import shutil
from pathlib import Path

from registry.definitions.project_key import project_key
from semantic.compiler.definition_checks import load_project
from tests.conftest import ROOT


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "defs"
    shutil.copytree(ROOT / "fixtures", root)
    return root


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    first = load_project(root)
    assert not first.issues.errors
    metrics = root / "metrics" / "revenue.yml"
    text = metrics.read_text()
    label = "    label: Revenue\n"
    assert label in text
    metrics.write_text(text.replace(label, "    label: Paid revenue\n", 1))
    again = load_project(root)
    assert first.objects[("metric", "revenue")].spec["label"] == "Revenue"
    assert again.objects[("metric", "revenue")].spec["label"] == "Paid revenue"


def test_an_added_file_and_a_changed_limit_are_part_of_the_key(
    tmp_path: Path, monkeypatch: object
) -> None:
    root = _copy(tmp_path)
    key = project_key(root, True)
    assert key is not None and key == project_key(root, True)
    assert project_key(root, False) != key
    (root / "extra.yml").write_text("metrics: []\n")
    added = project_key(root, True)
    assert added != key
    monkeypatch.setenv("TALLY_MAX_DEFINITION_BYTES", "1000")  # type: ignore[attr-defined]
    assert project_key(root, True) != added


def test_what_a_caller_changes_does_not_reach_the_next_caller(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    first = load_project(root)
    first.objects.clear()
    first.issues.add("made_up", "a caller's own issue", file="x.yml")
    second = load_project(root)
    assert second.objects and not second.issues.errors


def test_links_and_dbt_projects_get_no_key(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "linked.yml").symlink_to(root / "metrics" / "revenue.yml")
    assert project_key(root, True) is None
    dbt = tmp_path / "dbt"
    (dbt / "models").mkdir(parents=True)
    (dbt / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    assert project_key(dbt, True) is None
