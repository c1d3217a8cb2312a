"""Row policies and PII masks are checked at validate/sync time, with file:line and a hint."""

from __future__ import annotations

import shutil
from pathlib import Path

from semantic.compiler.definition_checks import load_project
from tests.conftest import ROOT

GOOD_POLICY = (
    "            - entity: account\n"
    "              # {% raw %}: dbt renders Jinja in config.meta; Tally reads the text inside.\n"
    "              filter: \"{% raw %}{{ Dimension('account__tenant_id') }} = "
    '{{ principal.tenant_id }}{% endraw %}"\n'
)


def _fixtures_with_policy(tmp_path: Path, policy: str) -> tuple[Path, int]:
    """A copy of fixtures/ whose accounts model declares ``policy``; the policy's line."""
    root = tmp_path / "defs"
    shutil.copytree(ROOT / "fixtures", root)
    path = root / "semantic_models" / "accounts.yml"
    text = path.read_text()
    assert GOOD_POLICY in text
    line = text[: text.index(GOOD_POLICY)].count("\n") + 1
    path.write_text(text.replace(GOOD_POLICY, policy))
    return root, line


def test_the_fixture_policy_is_valid(tmp_path: Path) -> None:
    root, _ = _fixtures_with_policy(tmp_path, GOOD_POLICY)
    assert load_project(root).issues.errors == []


def test_a_policy_reading_an_unknown_dimension_reports_file_and_line(tmp_path: Path) -> None:
    """A typo in a policy's dimension is an error at the policy's line, with the dimensions."""
    root, line = _fixtures_with_policy(
        tmp_path,
        "            - entity: account\n"
        "              filter: \"{{ Dimension('account__tenant') }} = {{ principal.tenant_id }}\"\n",
    )
    errors = load_project(root).issues.errors
    assert len(errors) == 1, [e.cli_lines() for e in errors]
    issue = errors[0]
    assert issue.code == "bad_row_policy"
    assert issue.file.endswith("semantic_models/accounts.yml")
    assert issue.line == line
    assert "account__tenant" in issue.message
    assert issue.hint is not None and "tenant_id" in issue.hint


def test_a_policy_on_an_unknown_entity_or_with_sql_is_refused(tmp_path: Path) -> None:
    """Entity typos, unknown keys and unsafe SQL are each an error."""
    root, _ = _fixtures_with_policy(
        tmp_path,
        "            - entity: acount\n"
        "              filter: \"{{ Dimension('account__tenant_id') }} = 't1'\"\n"
        "            - entity: account\n"
        "              filter: \"{{ Dimension('account__tenant_id') }} = 't1'; DROP TABLE x\"\n"
        "            - entity: account\n"
        '              fliter: "1 = 1"\n',
    )
    errors = load_project(root).issues.errors
    assert [e.code for e in errors] == ["bad_row_policy"] * 3, [e.cli_lines() for e in errors]
    assert "'acount' is not an entity of 'accounts'" in errors[0].message
    assert "unknown key(s) 'fliter'" in errors[2].message


def test_an_unknown_mask_mode_in_a_contract_is_refused(tmp_path: Path) -> None:
    """customProperties tallyMask must be hash or null."""
    root = tmp_path / "defs"
    shutil.copytree(ROOT / "fixtures", root)
    path = root / "contracts" / "users.odcs.yaml"
    text = path.read_text()
    marker = "        classification: pii\n"
    path.write_text(
        text.replace(
            marker,
            marker + "        customProperties:\n          - {property: tallyMask, value: hsh}\n",
        )
    )
    errors = load_project(root).issues.errors
    assert [e.code for e in errors] == ["bad_mask"]
    assert errors[0].hint == "did you mean 'hash'?"


def test_the_fixture_policies_pass_through_dbts_jinja_rendering_unchanged() -> None:
    """dbt renders every YAML string with Jinja (StrictUndefined: Dimension and principal are
    unknown to it); a {% raw %} policy comes out as the text Tally reads, so the same files
    parse in dbt/MetricFlow and in Tally."""
    import jinja2
    import yaml

    from semantic.compiler.policy_rules import unwrap_raw
    from tests.conftest import ROOT

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    seen = 0
    for path in sorted((ROOT / "fixtures" / "semantic_models").glob("*.yml")):
        for model in yaml.safe_load(path.read_text()).get("semantic_models", []):
            meta = (model.get("config") or {}).get("meta") or {}
            for policy in (meta.get("tally") or {}).get("row_policies", []):
                text = policy["filter"]
                assert env.from_string(text).render() == unwrap_raw(text) != text
                seen += 1
    assert seen
