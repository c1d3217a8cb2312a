from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from lineage.sql_lineage import DIALECTS, dbt_schema, models_from_dbt_manifest, models_from_dir
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = (
        "Column-level lineage: import upstream SQL models or a dbt manifest, show the upstream "
        "tree of a node, or the path between two nodes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser(
            "import-sql", help="derive column lineage from a folder of .sql models"
        )
        imp.add_argument("path", type=Path)
        imp.add_argument("--dialect", default="duckdb", choices=DIALECTS)
        dbt = sub.add_parser("import-dbt", help="derive column lineage from a dbt manifest.json")
        dbt.add_argument("path", type=Path, help="target/manifest.json after `dbt compile`")
        dbt.add_argument("--dialect", default="duckdb", choices=DIALECTS)
        dbt.add_argument(
            "--catalog",
            type=Path,
            default=None,
            help="catalog.json of `dbt docs generate` (default: beside the manifest, if there)",
        )
        up = sub.add_parser("upstream", help="the upstream tree of a node, with expressions")
        up.add_argument("node")
        up.add_argument("--depth", type=int, default=12)
        infl = sub.add_parser(
            "influences", help="every column that influenced a node, as one set (one per line)"
        )
        infl.add_argument("node")
        infl.add_argument(
            "--direct-only",
            action="store_true",
            help="only the columns its value is computed from (no filters, joins, grouping)",
        )
        path = sub.add_parser("path", help="the lineage path between two nodes")
        path.add_argument("a")
        path.add_argument("b")
        nodes = sub.add_parser("nodes", help="list nodes whose id contains TEXT")
        nodes.add_argument("q", nargs="?", default="")
        nodes.add_argument("--kind", default="")
        nodes.add_argument("--limit", type=int, default=100)
        ol = sub.add_parser(
            "openlineage",
            help="OpenLineage column-lineage facet of a node, or a compute run's run events "
            "(NODE = compute_run:ID or ID; one JSON event per line)",
        )
        ol.add_argument("node")
        ol.add_argument(
            "--emit",
            action="store_true",
            help="also send a run's events to TALLY_OPENLINEAGE_URL / TALLY_OPENLINEAGE_FILE",
        )
        export = sub.add_parser("export", help="write the release graph as JSON or GraphML")
        export.add_argument("out", type=Path)
        export.add_argument("--as", dest="as_format", choices=["json", "graphml"], default="json")
        for p in (up, infl, path, nodes, ol, export):
            p.add_argument("--release", default=None, help="rN or latest (default)")
        for p in (imp, dbt, up, infl, path, nodes):
            p.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **opts: Any) -> None:
        getattr(self, "_" + opts["action"].replace("-", "_"))(opts)

    def _import_sql(
        self, opts: dict[str, Any], models: Any = None, schema: dict[str, list[str]] | None = None
    ) -> None:
        from lineage.services import lineage_sql_import

        models = models if models is not None else models_from_dir(opts["path"])
        result = lineage_sql_import(models=models, dialect=opts["dialect"], schema=schema)
        if opts["format"] == "json":
            self.stdout.write(json.dumps(result.__dict__))
            return
        for issue in result.issues:
            self.stderr.write(
                f"{issue['file']}:{issue['line']}: warning[statement_skipped]: {issue['reason']}"
            )
        self.stdout.write(
            f"{result.models} model(s): {result.edges} column edge(s) "
            f"({result.direct} direct, {result.indirect} indirect) into {result.columns} column(s)"
            + (f"; {len(result.issues)} statement(s) skipped" if result.issues else "")
        )

    def _import_dbt(self, opts: dict[str, Any]) -> None:
        models = models_from_dbt_manifest(opts["path"])
        self._import_sql(opts, models, dbt_schema(opts["path"], opts["catalog"]))

    def _upstream(self, opts: dict[str, Any]) -> None:
        from lineage.selectors import lineage_upstream

        tree = lineage_upstream(node=opts["node"], release_ref=opts["release"], depth=opts["depth"])
        if opts["format"] == "json":
            self.stdout.write(json.dumps(tree.as_dict(), indent=2))
            return
        for line in tree.lines():
            self.stdout.write(line)

    def _influences(self, opts: dict[str, Any]) -> None:
        from lineage.selectors import lineage_influences

        columns = lineage_influences(
            node=opts["node"], release_ref=opts["release"], direct_only=opts["direct_only"]
        )
        if opts["format"] == "json":
            self.stdout.write(json.dumps(columns, indent=2))
            return
        for column in columns:
            self.stdout.write(column)

    def _path(self, opts: dict[str, Any]) -> None:
        from lineage.selectors import lineage_path

        hops = lineage_path(a=opts["a"], b=opts["b"], release_ref=opts["release"])
        if opts["format"] == "json":
            self.stdout.write(json.dumps([h.__dict__ for h in hops], indent=2))
            return
        for hop in hops:
            via = f"  → [{hop.edge_type}] " if hop.edge_type else ""
            expr = f"  ({hop.expr})" if hop.expr else ""
            self.stdout.write(f"{via}{hop.node}{expr}")

    def _nodes(self, opts: dict[str, Any]) -> None:
        from lineage.selectors import lineage_node_list

        nodes = lineage_node_list(
            q=opts["q"], kind=opts["kind"], release_ref=opts["release"], limit=opts["limit"]
        )
        if opts["format"] == "json":
            self.stdout.write(json.dumps(nodes, indent=2))
            return
        for node in nodes:
            self.stdout.write(node["id"])

    def _openlineage(self, opts: dict[str, Any]) -> None:
        from lineage.openlineage import lineage_openlineage, run_id_of

        run_id = run_id_of(opts["node"])
        if run_id is not None:
            found = lineage_openlineage(node=opts["node"])
            for event in found["events"]:
                self.stdout.write(json.dumps(event, sort_keys=True))
            if opts["emit"]:
                from lineage.openlineage import run_events_emit

                sent = run_events_emit(run_id=run_id)
                self.stderr.write(f"sent {sent} event(s)" if sent else "no transport configured "
                                  "(set TALLY_OPENLINEAGE_URL or TALLY_OPENLINEAGE_FILE)")  # fmt: skip
            return
        self.stdout.write(
            json.dumps(
                lineage_openlineage(node=opts["node"], release_ref=opts["release"]), indent=2
            )
        )

    def _export(self, opts: dict[str, Any]) -> None:
        from lineage.graph import graph_to_json, write_graphml
        from lineage.selectors import lineage_graph_get

        release, graph = lineage_graph_get(release_ref=opts["release"])
        if opts["as_format"] == "graphml":
            write_graphml(graph, opts["out"])
        else:
            opts["out"].write_text(json.dumps(graph_to_json(graph), indent=1, default=str))
        self.stdout.write(
            f"{release.name}: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges "
            f"→ {opts['out']}"
        )
