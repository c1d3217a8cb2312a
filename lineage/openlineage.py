"""OpenLineage run events of compute runs: START when a run starts, COMPLETE or FAIL when it ends.

Each event names the job (``compute.<grain>.<metrics>`` in the configured namespace), the run
(a UUID derived from the run's id and creation time, so START and its end event share it),
the warehouse tables the run's metrics read as input datasets (with a ``schema`` facet from
the lineage graph and the contracts' logical types), and Tally's stored metric values as the
output dataset, whose ``columnLineage`` facet says where each output field comes from:

* ``value`` ← every column the metrics read: DIRECT (the measure's expression: IDENTITY,
  TRANSFORMATION or AGGREGATION) or INDIRECT (filters, join keys, group-bys), as the lineage
  graph marks them (``openlineage_column_lineage``);
* ``period_start`` ← each measure's ``agg_time_dimension`` columns (DIRECT, TRANSFORMATION:
  truncated to the grain);
* ``slice`` ← the columns of the run's slice dimensions (DIRECT, IDENTITY).

Events are built with openlineage-python's own classes and sent with its transports: HTTP
(``TALLY_OPENLINEAGE_URL`` + ``TALLY_OPENLINEAGE_ENDPOINT``) or a file with one JSON event per
line (``TALLY_OPENLINEAGE_FILE``). Sending never fails a run: ``run_event_emit`` logs errors.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import networkx as nx
from django.conf import settings
from django.utils import timezone
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    processing_engine_run,
    schema_dataset,
    sql_job,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.transport import Transport

from lineage.graph import (
    CONTAINS,
    DERIVES_FROM,
    column_id,
    expression_columns,
    metric_id,
    openlineage_column_lineage,
    resolve_node,
)
from lineage.selectors import lineage_graph_get
from semantic.compiler.drilldown import drilldown_selects, metric_measures
from semantic.compiler.manifest import Manifest
from semantic.models import ComputeRun
from tally.errors import UserError

logger = logging.getLogger("tally.lineage")

PRODUCER = "https://github.com/tally/tally"
OUTPUT_DATASET = "metric_values"
# The stored value's fields (semantic.MetricValue), as the output dataset's schema.
OUTPUT_FIELDS = (
    ("metric_name", "VARCHAR", "the metric"),
    ("metric_version", "VARCHAR", "the metric definition's version (major.minor)"),
    ("grain", "VARCHAR", "day, week, month, quarter or year"),
    ("period_start", "DATE", "first day of the period"),
    ("slice", "JSON", "group-by dimension values beyond metric_time"),
    ("value", "VARCHAR", "exact decimal text of the metric value"),
)
ENDED = {ComputeRun.Status.SUCCEEDED: RunState.COMPLETE, ComputeRun.Status.FAILED: RunState.FAIL}
# A lineage server that is down must not hold a compute run up for long: two quick retries
# (the client's default is five with backoff, ~10 s per event).
HTTP_RETRY = {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.2,
              "status_forcelist": [502, 503, 504], "allowed_methods": ["POST"]}  # fmt: skip


def openlineage_transport() -> Transport | None:
    """The configured transport (HTTP endpoint first, then file sink), None when neither is."""
    config = settings.TALLY_OPENLINEAGE
    if config["url"]:
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        return HttpTransport(
            HttpConfig(
                url=config["url"],
                endpoint=config["endpoint"],
                timeout=float(settings.TALLY_OPENLINEAGE_TIMEOUT_S),
                retry=HTTP_RETRY,
            )
        )
    if config["file"]:
        from openlineage.client.transport.file import FileConfig, FileTransport

        return FileTransport(FileConfig(log_file_path=config["file"], append=True))
    return None


def run_event_emit(*, run: ComputeRun, event_type: RunState) -> bool:
    """Sends one run event to the configured transport; never raises (a compute run must not
    fail because lineage could not be sent). True when an event was sent."""
    try:
        transport = openlineage_transport()
        if transport is None:
            return False
        transport.emit(run_event(run=run, event_type=event_type))
        return True
    except Exception:
        logger.exception("OpenLineage %s event of run %s not sent", event_type.value, run.pk)
        return False


def run_events(*, run: ComputeRun) -> list[RunEvent]:
    """The run's events so far: START once it started, then COMPLETE or FAIL once it ended."""
    events = []
    if run.started_at is not None:
        events.append(run_event(run=run, event_type=RunState.START))
    if run.status in ENDED:
        events.append(run_event(run=run, event_type=ENDED[run.status]))
    return events


def run_events_emit(*, run_id: int) -> int:
    """Sends a run's events again (a lineage server that missed them); returns how many."""
    run = ComputeRun.objects.select_related("release").get(pk=run_id)
    transport = openlineage_transport()
    if transport is None:
        return 0
    events = run_events(run=run)
    for event in events:
        transport.emit(event)
    return len(events)


def run_events_json(*, run_id: int) -> list[dict[str, Any]]:
    """The run's events as OpenLineage JSON (what the transports send)."""
    from lineage.graph import NodeNotFound

    run = ComputeRun.objects.select_related("release").filter(pk=run_id).first()
    if run is None:
        raise NodeNotFound(
            f"no compute run {run_id}",
            code="unknown_run",
            hint="list runs with `tally runs` or GET /api/v1/runs",
            location="node",
        )
    return [Serde.to_dict(event) for event in run_events(run=run)]


def run_id_of(node: str) -> int | None:
    """The compute run a node names (``compute_run:42`` or ``42``), else None."""
    text = node.strip().removeprefix("compute_run:")
    return int(text) if text.isdigit() else None


def lineage_openlineage(*, node: str, release_ref: str | None = None) -> dict[str, Any]:
    """The OpenLineage view of a node: a compute run's run events (``{"events": [...]}``,
    as they are sent), or any other node's column-lineage facet wrapped as a dataset."""
    run_id = run_id_of(node)
    if run_id is not None:
        return {"run": run_id, "events": run_events_json(run_id=run_id)}

    release, graph = lineage_graph_get(release_ref=release_ref)
    resolved = resolve_node(graph, node)
    return {
        "namespace": "tally",
        "name": resolved,
        "release": release.name,
        "facets": {"columnLineage": openlineage_column_lineage(graph, resolved)},
    }


def run_uuid(run: ComputeRun) -> str:
    """A stable UUID per run (OpenLineage wants UUIDs; ids restart in a rebuilt registry)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tally:compute_run:{run.pk}:{run.created_at}"))


def run_event(*, run: ComputeRun, event_type: RunState) -> RunEvent:
    """One OpenLineage run event of a compute run, with inputs, output and column lineage."""
    from semantic.services import manifest_for_release

    namespace = settings.TALLY_OPENLINEAGE["namespace"]
    manifest = manifest_for_release(run.release)
    _, graph = lineage_graph_get(release_ref=run.release.name)
    warehouse_ns = warehouse_namespace()
    metrics = [m for m in run.metrics if m in manifest.metrics]
    metric_nodes = [
        node for m in metrics if (node := metric_id(m, manifest.metrics[m].version)) in graph
    ]

    value_inputs: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for node in metric_nodes:
        facet = openlineage_column_lineage(graph, node, namespace=warehouse_ns)
        for field in facet["fields"].values():
            for item in field["inputFields"]:
                kind = item["transformations"][0]
                key = (item["name"], item["field"], kind["type"], kind["subtype"])
                value_inputs.setdefault(key, item)
    time_columns = _time_columns(manifest, metrics)
    slice_columns = _slice_columns(manifest, graph, metrics, run)
    fields = {
        "value": _fields(
            [
                _input_field(warehouse_ns, name, col, kind, subtype)
                for (name, col, kind, subtype) in sorted(value_inputs)
            ],
            "the metrics' measures, filters, joins and grouping",
        ),
        "period_start": _fields(
            [_input_field(warehouse_ns, t, c, "DIRECT", "TRANSFORMATION") for t, c in time_columns],
            f"agg_time_dimension truncated to {run.grain}",
        ),
    }
    if slice_columns:
        fields["slice"] = _fields(
            [_input_field(warehouse_ns, t, c, "DIRECT", "IDENTITY") for t, c in slice_columns],
            "group-by dimension values",
        )
    tables = sorted(
        {name for name, *_ in value_inputs}
        | {t for t, _ in time_columns}
        | {t for t, _ in slice_columns}
    )
    output = OutputDataset(
        namespace=namespace,
        name=OUTPUT_DATASET,
        facets={
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=n, type=t, description=d)
                    for n, t, d in OUTPUT_FIELDS
                ],
                producer=PRODUCER,
            ),
            "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                fields=fields, producer=PRODUCER
            ),
        },
    )
    inputs = [
        InputDataset(
            namespace=warehouse_ns,
            name=table,
            facets={"schema": _schema_facet(graph, table)},
        )
        for table in tables
    ]
    run_facets: dict[str, Any] = {
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=_utc(dt.datetime.combine(run.start, dt.time())),
            nominalEndTime=_utc(dt.datetime.combine(run.end + dt.timedelta(days=1), dt.time())),
            producer=PRODUCER,
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=_tally_version(), name="tally", producer=PRODUCER
        ),
    }
    if event_type == RunState.FAIL:
        error = run.error or {}
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=f"[{error.get('code', 'error')}] {error.get('message', run.status)}",
            programmingLanguage="python",
            producer=PRODUCER,
        )
    job_facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="TALLY", jobType="COMPUTE_RUN", producer=PRODUCER
        )
    }
    sql = _first_chunk_sql(run, manifest)
    if sql:
        job_facets["sql"] = sql_job.SQLJobFacet(query=sql, dialect=_dialect(), producer=PRODUCER)
    when = run.started_at if event_type == RunState.START else run.finished_at
    return RunEvent(
        eventType=event_type,
        eventTime=_utc(when or timezone.now()),
        run=Run(runId=run_uuid(run), facets=run_facets),
        job=Job(
            namespace=namespace,
            name=f"compute.{run.grain}.{'+'.join(run.metrics)}"[:500],
            facets=job_facets,
        ),
        inputs=inputs,
        outputs=[output],
        producer=PRODUCER,
    )


def warehouse_namespace() -> str:
    """The warehouse as an OpenLineage dataset namespace (``postgres://host:5432`` …)."""
    wh = settings.WAREHOUSE
    if wh.host is None:  # embedded: DuckDB, chdb, Spark local
        return f"{wh.engine}://{wh.path}"
    scheme = {"postgresql": "postgres"}.get(wh.engine, wh.engine)
    return f"{scheme}://{wh.host}:{wh.port}"


def _dialect() -> str:
    return str(settings.WAREHOUSE.dialect)


def _tally_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tally")
    except PackageNotFoundError:
        return "0"


def _utc(moment: dt.datetime) -> str:
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _input_field(
    namespace: str, table: str, column: str, kind: str, subtype: str
) -> column_lineage_dataset.InputField:
    return column_lineage_dataset.InputField(
        namespace=namespace,
        name=table,
        field=column,
        transformations=[column_lineage_dataset.Transformation(type=kind, subtype=subtype)],
    )


def _fields(
    inputs: list[column_lineage_dataset.InputField], description: str
) -> column_lineage_dataset.Fields:
    return column_lineage_dataset.Fields(inputFields=inputs, transformationDescription=description)


def _time_columns(manifest: Manifest, metrics: list[str]) -> list[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for metric in metrics:
        for measure in metric_measures(manifest, metric):
            model = manifest.semantic_models[measure.semantic_model]
            dim = model.dimensions.get(measure.agg_time_dimension)
            if dim is None:
                continue
            table = column_id(model.relation, "x")[len("column:") : -2]
            found |= {(table, c.lower()) for c in expression_columns(dim.expr)}
    return sorted(found)


def _slice_columns(
    manifest: Manifest, graph: nx.MultiDiGraph, metrics: list[str], run: ComputeRun
) -> list[tuple[str, str]]:
    """Warehouse columns of the run's slice dimensions, reached as the compiler reaches them."""
    if not run.slices or not metrics:
        return []
    found: set[tuple[str, str]] = set()
    try:
        parts = drilldown_selects(
            manifest,
            metric=metrics[0],
            grain=run.grain,
            period_start=run.start,
            slice_values=dict.fromkeys(run.slices),
        )
    except UserError:
        return []  # a slice the compiler refuses (the run's FAIL event says why)
    for dimension in {d for p in parts for d in p.slice_dimensions}:
        node = f"dimension:{dimension}"
        if node not in graph:
            continue
        for column in nx.ancestors(graph, node):
            if graph.nodes[column].get("kind") == "column":
                table, _, name = column[len("column:") :].rpartition(".")
                found.add((table, name))
    return sorted(found)


def _schema_facet(graph: nx.MultiDiGraph, table: str) -> schema_dataset.SchemaDatasetFacet:
    """A table's columns from the lineage graph, typed by their contract's logical type."""
    node = f"table:{table}"
    columns = sorted(
        c for _, c, d in graph.out_edges(node, data=True) if d.get("type") == CONTAINS
    ) if node in graph else []  # fmt: skip
    fields = []
    for column in columns:
        logical = next(
            (
                graph.nodes[cc].get("logical_type")
                for _, cc, d in graph.out_edges(column, data=True)
                if d.get("type") == DERIVES_FROM
                and graph.nodes[cc].get("kind") == "contract_column"
            ),
            None,
        )
        fields.append(
            schema_dataset.SchemaDatasetFacetFields(
                name=column.rsplit(".", 1)[-1], type=str(logical) if logical else None
            )
        )
    return schema_dataset.SchemaDatasetFacet(fields=fields, producer=PRODUCER)


def _first_chunk_sql(run: ComputeRun, manifest: Manifest) -> str:
    """The SQL of the run's first chunk, one statement per source group (later chunks differ
    only in their time range)."""
    from semantic.jobs.queries import metric_groups, run_chunk_query, run_chunks, run_load_filters
    from semantic.services import compile_metric_query

    first = run_chunks(run)[0]
    loads = run_load_filters(run)
    statements = []
    for group in metric_groups(manifest, [m for m in run.metrics if m in manifest.metrics]):
        query = run_chunk_query(run=run, manifest=manifest, group=group, first=first[0],
                                last=first[1], loads=loads, dialect=_dialect())  # fmt: skip
        try:
            compiled = compile_metric_query(query=query, release_ref=run.release.name)
        except UserError:
            return ""  # the query the run could not compile (its FAIL event says why)
        statements.append(compiled.sql)
    return ";\n".join(statements)
