"""Issue 18, critical finding: a definition expression ran arbitrary SQL on the warehouse.

A proposal's derived ``expr``, a dimension's or a measure's ``expr`` accepted any SQL sqlglot
parses (subqueries, ``read_text``, ``pg_read_file``…) and the proposal's numbers check ran it
at once with full trust. Definitions are data now: the proposal service refuses such a
revision with file:line before anything exists, validation reports it, and the compiler
refuses it even when both were skipped (fail closed).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from registry.models import Proposal, ProposalCheck
from registry.services.proposals import proposal_create
from semantic.compiler.api import compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.definition_guard import (
    MSG_FUNCTION,
    MSG_SUBQUERY,
)
from semantic.compiler.manifest import build_manifest
from semantic.compiler.spec import MetricQuery
from tally.errors import DefinitionError, QueryError
from tests.conftest import ROOT
from tests.registry.proposals_setup import committed

# The exfiltration the review found: the server's environment through a cast error.
READ_ENVIRON = (
    "CAST((SELECT content FROM read_text('/proc/self/environ')) AS INT) "
    "+ mrr_started_to_date - mrr_ended_to_date"
)
MRR_READING_A_FILE = f"""\
metrics:
  - name: mrr
    label: MRR
    type: derived
    type_params:
      expr: {READ_ENVIRON}
      metrics:
        - name: mrr_started_to_date
        - name: mrr_ended_to_date
    config:
      meta: {{owner: finance-data, domain: revenue, tier: certified}}
"""
EXPR_LINE = 6  # the line of `expr:` above
INVOICES = "semantic_models/invoices.yml"


def _fixtures_with(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of fixtures/ with one line of invoices.yml replaced (first occurrence)."""
    root = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", root)
    path = root / INVOICES
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return root


def _line_of(root: Path, text: str) -> int:
    lines = (root / INVOICES).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _compile(root: Path, metric: str, *group_by: str) -> None:
    """Compiles one query over a release built without validation (the fail-closed floor)."""
    project = load_project(root, validate=False)
    rows = [(k, n, o.spec, "1.0") for (k, n), o in project.objects.items()]
    compile_query(MetricQuery(metrics=(metric,), group_by=group_by), build_manifest(rows))


def _refusals(root: Path) -> list[dict[str, Any]]:
    return [i.as_dict() for i in load_project(root).issues.errors if i.code == "bad_definition"]


@pytest.mark.django_db
def test_a_derived_expr_reading_a_server_file_is_refused_by_the_proposal_service(
    analyst: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The revision is refused with file:line; no proposal, so no check runs the SQL."""
    with pytest.raises(DefinitionError) as raised:
        committed(
            django_capture_on_commit_callbacks,
            proposal_create,
            acting_user=analyst,
            title="MRR",
            files={"mrr.yml": MRR_READING_A_FILE},
        )
    assert raised.value.code == "invalid_definitions"
    assert raised.value.location == f"mrr.yml:{EXPR_LINE}"
    (issue,) = raised.value.details
    assert issue["code"] == "bad_definition"
    assert MSG_SUBQUERY.split(":")[0] in issue["message"]
    assert issue["hint"]
    assert not Proposal.objects.exists()
    assert not ProposalCheck.objects.exists()


@pytest.mark.django_db
def test_a_derived_expr_reading_a_server_file_is_refused_by_the_api(
    client: Client, analyst: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/proposals",
            {"title": "MRR", "files": {"mrr.yml": MRR_READING_A_FILE}},
            content_type="application/json",
        )
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid_definitions"
    assert error["location"] == f"mrr.yml:{EXPR_LINE}"
    assert "subqueries are not allowed" in error["message"]
    assert not Proposal.objects.exists()
    assert not ProposalCheck.objects.exists()


def test_the_compiler_refuses_a_derived_expr_that_reads_a_file(tmp_path: Path) -> None:
    """Fail closed: a release that skipped validation still never compiles it."""
    root = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", root)
    (root / "metrics" / "mrr_override.yml").write_text(
        MRR_READING_A_FILE.replace("name: mrr\n", "name: mrr_leak\n")
    )
    with pytest.raises(QueryError) as raised:
        _compile(root, "mrr_leak", "metric_time__month")
    assert raised.value.code == "bad_definition"
    assert raised.value.location == "mrr_leak.type_params.expr"


def test_a_dimension_with_a_scalar_subquery_is_refused(tmp_path: Path) -> None:
    """A dimension reading another table (the users' emails) through a scalar subquery."""
    leak = "expr: (SELECT max(email) FROM main.users) > ''"
    root = _fixtures_with(tmp_path, "expr: paid_at > due_at", leak)
    (issue,) = _refusals(root)
    assert issue["file"].endswith(INVOICES)
    assert issue["line"] == _line_of(root, leak)
    assert "subqueries are not allowed" in issue["message"]
    with pytest.raises(QueryError) as raised:
        _compile(root, "revenue", "invoice__is_paid_late")
    assert raised.value.code == "bad_definition"


@pytest.mark.parametrize(
    ("expr", "function"),
    [
        ("(SELECT count(*) FROM read_csv('/etc/passwd'))", "READ_CSV"),
        ("CAST(pg_read_file('/etc/passwd') AS INT)", "pg_read_file"),
        ("length(read_blob('/var/lib/tally/registry.sqlite3'))", "read_blob"),
        ("CAST(getenv('SECRET_KEY') AS INT)", "getenv"),
    ],
)
def test_a_measure_reading_files_or_the_environment_is_refused(
    tmp_path: Path, expr: str, function: str
) -> None:
    root = _fixtures_with(tmp_path, "expr: amount\n", f'expr: "{expr}"\n')
    (issue,) = _refusals(root)
    assert issue["line"] == _line_of(root, expr)
    assert issue["message"].endswith(
        MSG_FUNCTION.format(name=function)
        if "SELECT" not in expr
        else "subqueries are not allowed in definition expressions: "
        f"(SELECT COUNT(*) FROM {function}('/etc/passwd'))"
    )
    with pytest.raises(QueryError) as raised:
        _compile(root, "revenue", "metric_time__month")
    assert raised.value.code == "bad_definition"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "oracle",
    [
        # Raises (a failed check) exactly when another table holds a matching row.
        "CASE WHEN (SELECT count(*) FROM main.users WHERE email LIKE 'a%') > 0 "
        "THEN CAST('x' AS INT) ELSE 0 END",
        # Raises by name when the environment holds a value.
        "CASE WHEN getenv('SECRET_KEY') LIKE 'a%' THEN error('yes') ELSE amount END",
    ],
)
def test_the_case_error_oracle_is_refused_before_any_check_runs(
    analyst: Any, django_capture_on_commit_callbacks: Any, oracle: str
) -> None:
    """A CASE that raises or not turned the numbers check's status into a yes/no answer."""
    text = (ROOT / "fixtures" / INVOICES).read_text()
    old = "expr: CASE WHEN status = 'open' THEN amount ELSE 0 END"
    assert old in text
    files = {"invoices.yml": text.replace(old, f'expr: "{oracle}"')}
    line = next(i for i, row in enumerate(files["invoices.yml"].splitlines(), 1) if oracle in row)
    with pytest.raises(DefinitionError) as raised:
        committed(
            django_capture_on_commit_callbacks,
            proposal_create,
            acting_user=analyst,
            title="Open invoices",
            files=files,
        )
    assert raised.value.location == f"invoices.yml:{line}"
    assert raised.value.details[0]["code"] == "bad_definition"
    assert not Proposal.objects.exists()
    assert not ProposalCheck.objects.exists()


def test_a_saved_query_filter_reading_files_is_refused_at_validation(tmp_path: Path) -> None:
    """Adversarial pass: a saved query's `where` with read_text() passed validation (and a
    proposal's validation check); only running it refused it. It is now an error with
    file:line, as for metric filters."""
    root = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", root)
    path = root / "saved_queries.yml"
    clean = "{{ Dimension('account__plan') }} <> 'free'"
    text = path.read_text()
    assert clean in text
    path.write_text(text.replace(clean, "read_text('/etc/passwd') IS NOT NULL", 1))
    errors = [i.as_dict() for i in load_project(root).issues.errors]
    assert [e["code"] for e in errors] == ["bad_filter"]
    assert errors[0]["file"].endswith("saved_queries.yml")
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "read_text" in t)
    assert errors[0]["line"] == line
    assert "read_text is not allowed" in errors[0]["message"]
