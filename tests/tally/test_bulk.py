"""rows_insert: the one executemany bulk insert (compute values, lineage graph rows)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from semantic.models import ComputeLock
from tally.bulk import rows_insert

pytestmark = pytest.mark.django_db


def test_rows_insert_writes_every_row_across_batches() -> None:
    """Rows past one batch are written too, in order, with their values as given."""
    rows = [(f"metric_{i}/day", None, None) for i in range(7)]
    count = rows_insert(ComputeLock._meta.db_table, ("key", "run_id", "expires_at"), rows, batch=3)
    assert count == 7
    assert list(ComputeLock.objects.order_by("pk").values_list("key", flat=True)) == [
        key for key, _, _ in rows
    ]


def test_rows_insert_of_nothing_runs_no_statement(
    django_assert_num_queries: object,
) -> None:
    """An empty input inserts nothing and sends no INSERT."""
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert rows_insert(ComputeLock._meta.db_table, ("key",), []) == 0


def test_rows_insert_is_atomic_inside_the_callers_transaction() -> None:
    """A failing batch (duplicate key) leaves nothing behind when the caller is atomic."""
    rows = [("a", None, None), ("b", None, None), ("a", None, None)]
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(ComputeLock._meta.db_table, ("key", "run_id", "expires_at"), rows, batch=2)
    assert not ComputeLock.objects.exists()


def test_rows_insert_refuses_an_empty_batch_size() -> None:
    """batch=0 would loop forever; it is refused."""
    with pytest.raises(ValueError, match="batch must be at least 1"):
        rows_insert(ComputeLock._meta.db_table, ("key",), [("x",)], batch=0)
