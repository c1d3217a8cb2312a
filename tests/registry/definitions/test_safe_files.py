"""Bad definition files (issue 23): each is refused with file:line and a code, never read
forever, never a traceback, never a MemoryError."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from registry.definitions.issues import IssueSet
from registry.definitions.yaml_source import read_tree

GOOD = "metrics:\n  - name: a\n    type: simple\n"


def refused(root: Path) -> list[tuple[str, str, int]]:
    issues = IssueSet()
    list(read_tree(root, issues))
    return [(i.file.rsplit("/", 1)[-1], i.code, i.line) for i in issues.errors]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "defs"
    root.mkdir()
    (root / "good.yml").write_text(GOOD)
    return root


def test_a_symlink_to_dev_zero_is_not_read(project: Path) -> None:
    """It read until MemoryError: a device is not a regular file."""
    (project / "zero.yml").symlink_to("/dev/zero")
    assert refused(project) == [("zero.yml", "not_a_regular_file", 0)]


def test_a_fifo_is_refused_without_blocking(project: Path) -> None:
    """validate and sync hung on a FIFO named .yml (opening it waits for a writer)."""
    os.mkfifo(project / "pipe.yml")
    assert refused(project) == [("pipe.yml", "not_a_regular_file", 0)]


def test_symlink_loops_and_dangling_links_are_issues(project: Path) -> None:
    """Both gave tracebacks (from stat, while summing sizes)."""
    (project / "loop.yml").symlink_to(project / "loop.yml")
    (project / "dangling.yml").symlink_to(project / "missing.yml")
    assert sorted(refused(project)) == [
        ("dangling.yml", "unreadable_file", 0),
        ("loop.yml", "unreadable_file", 0),
    ]


def test_an_alias_bomb_of_long_strings_is_refused_at_its_line(project: Path) -> None:
    """A 626-byte file expanding to 8 MB passed the 5 MB file limit: few nodes, long text."""
    lines = ["a0: &a0 " + "x" * 500]
    for level in range(1, 6):
        prev = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([prev] * 7)}]")
    (project / "bomb.yml").write_text("\n".join(lines) + "\n")
    assert (project / "bomb.yml").stat().st_size < 1000
    ((name, code, line),) = refused(project)
    assert (name, code) == ("bomb.yml", "yaml_too_complex") and line >= 2


def test_a_nul_from_an_escape_is_refused_with_its_line(project: Path) -> None:
    """A NUL in a YAML string passed validate and crashed sync on PostgreSQL."""
    (project / "nul.yml").write_text('metrics:\n  - name: b\n    label: "x\\0y"\n')
    assert refused(project) == [("nul.yml", "control_character", 3)]


def test_a_raw_control_character_is_refused_with_its_line(project: Path) -> None:
    (project / "ctl.yml").write_bytes(b"metrics:\n  - name: c\x01\n")
    assert refused(project) == [("ctl.yml", "control_character", 2)]


def test_a_file_that_grows_past_the_limit_is_cut_off(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The size is checked while reading too: only limit + 1 bytes are ever read."""
    from registry.definitions.yaml_source import FileRefused, read_file_bytes

    big = project / "big.yml"
    big.write_text("a: " + "y" * 5000 + "\n")
    with pytest.raises(FileRefused) as info:
        read_file_bytes(big, 1024)
    assert info.value.code == "file_too_large"
    assert read_file_bytes(project / "good.yml", 1024) == GOOD.encode()
