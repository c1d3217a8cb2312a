"""Issue 18, Low: the compile cache collapsed whitespace inside string literals, so a query
for ``'a  b'`` was served (and audited) with the SQL compiled for ``'a b'``."""

from __future__ import annotations

import pytest

from registry.services.definitions import definitions_sync
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from semantic.services import compile_metric_query
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

FILTER = "{{{{ Dimension('account__name') }}}} = '{name}'"


def _query(name: str, *, padded: bool = False) -> MetricQuery:
    text = FILTER.format(name=name)
    return MetricQuery(metrics=("revenue",), where=(f"  {text}\n" if padded else text,))


@pytest.mark.parametrize("principal", [None, Principal("t", {"tenant_id": "t1"})])
def test_queries_differing_only_inside_a_literal_compile_separately(
    principal: Principal | None,
) -> None:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    one = compile_metric_query(query=_query("Acme  Corp"), principal=principal)
    other = compile_metric_query(query=_query("Acme Corp"), principal=principal)
    assert "'Acme  Corp'" in one.sql
    assert "'Acme Corp'" in other.sql and "'Acme  Corp'" not in other.sql


def test_whitespace_around_a_filter_still_shares_one_compile() -> None:
    """The cache still folds what cannot change the SQL: blanks around the filter text."""
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    first = compile_metric_query(query=_query("Acme Corp"))
    assert compile_metric_query(query=_query("Acme Corp", padded=True)) is first


def test_the_cache_key_keeps_literals_and_case_inside_them() -> None:
    assert _query("a  b").cache_key() != _query("a b").cache_key()
    assert _query("A").cache_key() != _query("a").cache_key()
