from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from semantic.sqlapi.server import ServerConfig, SqlServer, serve
from tally.management.base import TallyCommand
from tally.metrics import metrics_serve


class Command(TallyCommand):
    help = (
        "Serve the SQL API: BI tools and SQL clients connect as to PostgreSQL "
        "(user = a Tally user, password = its password or API token) and query tally.metrics."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=5433)
        parser.add_argument("--tls-cert", default=None, help="PEM certificate: enables TLS")
        parser.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")

    def handle(self, *args: Any, **opts: Any) -> None:
        if bool(opts["tls_cert"]) != bool(opts["tls_key"]):
            raise CommandError("--tls-cert and --tls-key go together")
        config = ServerConfig(
            host=opts["host"],
            port=opts["port"],
            tls_cert=opts["tls_cert"],
            tls_key=opts["tls_key"],
            row_cap=settings.TALLY_SQL_ROW_CAP,
            timeout_s=settings.TALLY_SQL_TIMEOUT_S,
            max_connections=settings.TALLY_SQL_MAX_CONNECTIONS,
            auth_timeout_s=settings.TALLY_SQL_AUTH_TIMEOUT_S,
            idle_timeout_s=settings.TALLY_SQL_IDLE_TIMEOUT_S,
            max_unauth_per_address=settings.TALLY_SQL_MAX_UNAUTH_PER_ADDRESS,
            max_unauth=settings.TALLY_SQL_MAX_UNAUTH,
            max_query_bytes=settings.TALLY_SQL_MAX_QUERY_BYTES,
            catalog_timeout_s=settings.TALLY_SQL_CATALOG_TIMEOUT_S,
            recheck_s=settings.TALLY_SQL_RECHECK_S,
            exec_slots=settings.TALLY_SQL_EXEC_SLOTS,
            exec_queue=settings.TALLY_SQL_EXEC_QUEUE,
            exec_wait_s=settings.TALLY_SQL_EXEC_WAIT_S,
            warehouse_idle_s=settings.TALLY_SQL_WAREHOUSE_IDLE_S,
        )

        def ready(server: SqlServer) -> None:
            tls = " (TLS)" if server.tls is not None else ""
            self.stdout.write(f"Tally SQL API listening on {config.host}:{server.port}{tls}")
            self.stdout.flush()
            sys.stdout.flush()

        # /metrics of this process (connections, queries) on TALLY_SQL_METRICS_PORT, if set.
        metrics_serve("TALLY_SQL_METRICS_PORT")
        try:
            serve(config, ready=ready)
        except OSError as exc:
            raise CommandError(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
        except KeyboardInterrupt:
            pass
