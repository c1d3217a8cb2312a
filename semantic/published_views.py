"""Published views: one warehouse view per saved query of a release.

``tally publish-views --schema tally`` (and, when ``TALLY_PUBLISHED_VIEWS_SCHEMA`` is set,
every new release) runs ``CREATE OR REPLACE VIEW <schema>.<saved query> AS <compiled SQL>``
for each saved query, with a comment naming the release and the metric versions, so tools
that only read tables (spreadsheets, dbt sources, reverse ETL) read governed numbers.
Idempotent: the same release gives the same statements, and a view is replaced in place.
All views of one run are written in one transaction (PostgreSQL, DuckDB).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from sqlglot import exp

from registry.models import Release
from semantic.compiler.spec import MetricQuery
from semantic.services import compile_metric_query, manifest_for_release, release_resolve
from semantic.time_spine import time_spine_ensure
from semantic.warehouse.time_spine import _create_schema, _transaction, _Writer
from tally.errors import UserError

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MSG_BAD_SCHEMA = "schema name {schema!r} is not a plain identifier"
HINT_BAD_SCHEMA = "use letters, digits and underscores, starting with a letter (e.g. tally)"


@dataclass(frozen=True)
class PublishedView:
    name: str
    saved_query: str
    comment: str
    sql: str


def _comment(view: exp.Table, text: str, engine: str) -> exp.Expr | None:
    # MySQL/MariaDB keep no comment on a view; the compiled SQL's header comment stays.
    if engine == "mysql":
        return None
    return exp.Comment(this=view, kind="VIEW", expression=exp.Literal.string(text))


def views_publish(*, schema: str, release_ref: str | None = None) -> list[PublishedView]:
    """Creates or replaces one view per saved query of the release in ``schema`` (one
    transaction); returns what it wrote."""
    if not _IDENTIFIER.match(schema):
        raise UserError(
            MSG_BAD_SCHEMA.format(schema=schema), code="bad_schema", hint=HINT_BAD_SCHEMA
        )
    warehouse = settings.WAREHOUSE
    release = release_resolve(release_ref)
    manifest = manifest_for_release(release)
    statements: list[exp.Expr] = [_create_schema(schema)]
    published: list[PublishedView] = []
    for name in sorted(manifest.saved_queries):
        if not _IDENTIFIER.match(name):
            logger.warning("saved query %r is not a plain identifier; no view", name)
            continue
        from semantic.compiler.saved import saved_query_to_query

        query = saved_query_to_query(
            manifest, name, MetricQuery(metrics=(), dialect=warehouse.dialect)
        )
        compiled = compile_metric_query(query=query, release_ref=release.name)
        time_spine_ensure(sql=compiled.sql, release_ref=release.name)
        body = sqlglot.parse_one(compiled.sql, read=warehouse.dialect)
        view = exp.table_(name, db=schema, quoted=True)
        versions = ", ".join(f"{m}@{v}" for m, v in sorted(compiled.versions.items()))
        text = f"tally saved query {name}, release {compiled.release}: {versions}"
        statements.append(exp.Create(this=view, kind="VIEW", replace=True, expression=body))
        comment = _comment(view.copy(), text, warehouse.engine)
        if comment is not None:
            statements.append(comment)
        published.append(PublishedView(f"{schema}.{name}", name, text, compiled.sql))
    writer = _Writer(warehouse)
    try:
        _transaction(writer, statements)
    finally:
        writer.close()
    return published


@receiver(post_save, sender=Release)
def _release_published(sender: Any, instance: Release, created: bool, **kwargs: Any) -> None:
    # Opt-in: rewriting warehouse views on every merge needs write access to the warehouse
    # (a DuckDB file must not be held open by a reader at that moment).
    schema = getattr(settings, "TALLY_PUBLISHED_VIEWS_SCHEMA", "")
    if created and schema and not kwargs.get("raw"):
        release_name = instance.name
        transaction.on_commit(lambda: _refresh_after_publish(schema, release_name))


def _refresh_after_publish(schema: str, release_name: str) -> None:
    from semantic.tasks import publish_views

    try:
        publish_views.delay(schema, release_name)
    except Exception:  # views must never fail a publish; the next one rewrites them all
        logger.exception("publishing views of %s failed", release_name)
