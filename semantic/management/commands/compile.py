from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from semantic.audited import metric_query_compile
from semantic.management.commands._query_args import (
    add_query_arguments,
    as_user_from_options,
    principal_from_options,
    query_from_options,
)
from semantic.services import saved_query_apply
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = "Compile a metric query to SQL for a warehouse dialect (flags as MetricFlow's mf query)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_query_arguments(parser)
        parser.add_argument(
            "--dialect", default=None, help="sqlglot dialect (default: the warehouse's)"
        )
        # `mf query --explain` prints the SQL; compile always does, so the flag is accepted
        # for scripts written against mf and changes nothing.
        parser.add_argument("--explain", action="store_true", help="accepted as in mf; no effect")

    def handle(self, *args: Any, **opts: Any) -> None:
        query = query_from_options(opts, dialect=opts["dialect"] or settings.WAREHOUSE.dialect)
        if opts["saved_query"]:
            query = saved_query_apply(
                name=opts["saved_query"], query=query, release_ref=opts["release"]
            )
        principal, user = as_user_from_options(opts)
        compiled = metric_query_compile(
            query=query,
            release_ref=opts["release"],
            principal=principal or principal_from_options(opts),
            acting_user=user,
        )
        self.stdout.write(compiled.sql)
        if opts["timings"]:
            for stage, seconds in compiled.timings.items():
                self.stderr.write(f"-- {stage}: {seconds * 1000:.3f} ms")
