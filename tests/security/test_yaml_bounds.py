"""Issue 18, principle 7 (YAML): alias expansion, document size and node count are bounded
where definitions are parsed, and proposal file names no file system takes are a 400."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from semantic.compiler.definition_checks import load_project
from tally.env import ConfigError, load_config
from tests.registry.conftest import owner, registry_r1  # noqa: F401 (fixtures)

# The issue's document: nine levels of nine aliases, 9**9 strings once expanded (~800 bytes;
# it cost 97 s of CPU and 0.8 GB before anything refused it).
LEVELS = "abcdefghi"
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in itertools.pairwise(LEVELS)
)


def _issues(tmp_path: Path, name: str, text: str) -> list[Any]:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return load_project(tmp_path).issues.errors


def test_the_alias_bomb_is_refused_at_the_line_where_it_blows_up(tmp_path: Path) -> None:
    """Bug: an 800-byte alias bomb was expanded by everything that walked it (97 s)."""
    assert len(BOMB.encode()) < 1000
    errors = _issues(tmp_path, "bomb.yml", BOMB)
    assert [(e.code, e.file.endswith("bomb.yml"), e.line) for e in errors] == [
        ("yaml_too_complex", True, 6)  # f: 9**5 strings, past 250,000 nodes
    ]
    assert "expands to more than 250,000 nodes" in errors[0].message
    assert "TALLY_MAX_DEFINITION_NODES" in (errors[0].hint or "")


def test_an_alias_into_its_own_anchor_is_refused(tmp_path: Path) -> None:
    """A recursive alias never ends when walked as plain data."""
    errors = _issues(tmp_path, "loop.yml", "metrics:\n  - &m [1, *m]\n")
    assert [(e.code, e.line, e.message) for e in errors] == [
        ("yaml_too_complex", 2, "an alias refers to its own anchor")
    ]


def test_document_size_and_node_count_have_configurable_caps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TALLY_MAX_DEFINITION_BYTES and TALLY_MAX_DEFINITION_NODES cap each file / document."""
    monkeypatch.setenv("TALLY_MAX_DEFINITION_BYTES", "2048")
    errors = _issues(tmp_path, "big.yml", "metrics: []\n# " + "x" * 3000 + "\n")
    assert [e.code for e in errors] == ["file_too_large"]
    assert "TALLY_MAX_DEFINITION_BYTES" in (errors[0].hint or "")
    monkeypatch.delenv("TALLY_MAX_DEFINITION_BYTES")
    monkeypatch.setenv("TALLY_MAX_DEFINITION_NODES", "100")
    (tmp_path / "big.yml").unlink()
    errors = _issues(tmp_path, "wide.yml", "metrics:\n  - [" + ", ".join(["1"] * 200) + "]\n")
    assert [(e.code, e.line) for e in errors] == [("yaml_too_complex", 2)]
    with pytest.raises(ConfigError) as bad:
        load_config({"TALLY_DEMO": "1", "TALLY_MAX_DEFINITION_NODES": "lots"})
    assert bad.value.variable == "TALLY_MAX_DEFINITION_NODES"


def _propose(client: Client, user: Any, files: dict[str, str]) -> Any:
    client.force_login(user)
    body = {"title": "t", "files": files}
    return client.post("/api/v1/proposals", body, content_type="application/json")


@pytest.mark.django_db
def test_a_proposal_carrying_the_bomb_is_a_400_naming_file_and_line(
    client: Client,
    owner: Any,  # noqa: F811
) -> None:
    """The proposal path: refused before any check runs, so no page replays the bomb."""
    response = _propose(client, owner, {"metrics/bomb.yml": BOMB})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["location"]) == ("invalid_definitions", "metrics/bomb.yml:6")
    assert error["details"][0]["code"] == "yaml_too_complex"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "problem"),
    [("metrics/a\x00b.yml", "control character"), ("m" * 300 + ".yml", "longer than 255")],
)
def test_proposal_file_names_no_file_system_takes_are_a_400(
    client: Client,
    owner: Any,  # noqa: F811
    name: str,
    problem: str,
) -> None:
    """Bug: a NUL or a 300-character file name was an OSError at write time: a 500."""
    response = _propose(client, owner, {name: "metrics: []\n"})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "bad_file_name" and problem in error["message"]
    assert error["hint"]
