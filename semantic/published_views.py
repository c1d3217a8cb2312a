"""Published views: one warehouse view per saved query of a release.

``tally publish-views --schema tally`` (and, when ``TALLY_PUBLISHED_VIEWS_SCHEMA`` is set,
every new release) runs ``CREATE OR REPLACE VIEW <schema>.<saved query> AS <compiled SQL>``
for each saved query, with a comment naming the release and the metric versions, so tools
that only read tables (spreadsheets, dbt sources, reverse ETL) read governed numbers.
Idempotent: the same release gives the same statements, and a view is replaced in place.
All views of one run are written in one transaction (PostgreSQL, DuckDB); on ClickHouse and
Spark, which have no such transactions, each view is replaced atomically by itself.
ClickHouse and Spark take the comment as a clause of the ``CREATE`` (no ``COMMENT ON VIEW``).
On Spark local the views live in the process's catalog (a cluster keeps them in its
metastore): publish them again after a restart.
The refresh on a new release is wired in semantic.tasks (a job), next to its task.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import sqlglot
from django.conf import settings
from sqlglot import exp

from semantic.compiler.spec import MetricQuery
from semantic.services import compile_metric_query, manifest_for_release, release_resolve
from semantic.time_spine import time_spine_ensure
from semantic.warehouse.writer import Writer, create_schema, statements_apply
from tally.errors import UserError

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MSG_BAD_SCHEMA = "schema name {schema!r} is not a plain identifier"
HINT_BAD_SCHEMA = "use letters, digits and underscores, starting with a letter (e.g. tally)"


_COMMENT_CLAUSE = ("chdb", "clickhouse", "spark")


def _create(view: exp.Table, body: exp.Expr, text: str, engine: str) -> exp.Create:
    properties = None
    if engine in _COMMENT_CLAUSE:
        comment = exp.SchemaCommentProperty(this=exp.Literal.string(text))
        properties = exp.Properties(expressions=[comment])
    return exp.Create(this=view, kind="VIEW", replace=True, expression=body, properties=properties)


@dataclass(frozen=True)
class PublishedView:
    name: str
    saved_query: str
    comment: str
    sql: str


def _comment(view: exp.Table, text: str, engine: str) -> exp.Expr | None:
    # MySQL/MariaDB keep no comment on a view; the compiled SQL's header comment stays.
    # ClickHouse and Spark have no COMMENT ON VIEW: the comment is a clause of the CREATE.
    if engine in ("mysql", *_COMMENT_CLAUSE):
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
    statements: list[exp.Expr] = [create_schema(schema)]
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
        statements.append(_create(view, body, text, warehouse.engine))
        comment = _comment(view.copy(), text, warehouse.engine)
        if comment is not None:
            statements.append(comment)
        published.append(PublishedView(f"{schema}.{name}", name, text, compiled.sql))
    writer = Writer(warehouse)
    try:
        statements_apply(writer, statements)
    finally:
        writer.close()
    return published
