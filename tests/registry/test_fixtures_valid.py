"""The example registry in fixtures/ is valid dbt Semantic Layer YAML and ODCS v3.

The definitions are parsed by Tally's loader (registry.definitions.project), which does what
dbt does before dbt-semantic-interfaces (DSI) sees a project: `model: ref('x')` becomes a
`node_relation` and time-spine models become the project configuration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import sqlglot
import yaml
from dbt_semantic_interfaces.implementations.metric import PydanticMetric
from dbt_semantic_interfaces.implementations.semantic_manifest import PydanticSemanticManifest
from dbt_semantic_interfaces.implementations.semantic_model import PydanticSemanticModel
from dbt_semantic_interfaces.parsing.where_filter.jinja_object_parser import (
    JinjaObjectParser,
    QueryItemLocation,
)
from dbt_semantic_interfaces.transformations.semantic_manifest_transformer import (
    PydanticSemanticManifestTransformer,
)
from dbt_semantic_interfaces.type_enums import AggregationType, MetricType
from dbt_semantic_interfaces.validations.semantic_manifest_validator import (
    SemanticManifestValidator,
)
from open_data_contract_standard.model import OpenDataContractStandard
from sqlglot import exp

from registry.definitions.project import Project
from registry.definitions.rules import build_manifest
from semantic.compiler.definition_checks import load_project

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CONTRACTS = FIXTURES / "contracts"
WAREHOUSE_SCHEMA = "main"
DOMAIN_OWNERS = {
    "product": "product-analytics",
    "revenue": "finance-data",
    "growth": "growth-analytics",
}
TIERS = {"certified", "standard", "experimental"}
PII_COLUMNS = {("users", "email"), ("events", "anonymous_id")}
# ref('name') or ref('package', 'name'); the relation is the last argument.
REF = re.compile(r"""^\s*ref\(\s*(?:['"][^'"]+['"]\s*,\s*)?['"]([^'"]+)['"]\s*\)\s*$""")


# --- the fixtures, parsed by Tally's own loader (dbt layout → DSI objects) ---------------


@cache
def project() -> Project:
    """fixtures/ loaded and checked once by registry.definitions (DSI + ODCS underneath)."""
    return load_project(FIXTURES)


@cache
def build(*, transformed: bool) -> PydanticSemanticManifest:
    """The manifest as written, or after DSI's standard rewrites (what validation sees)."""
    manifest = build_manifest(project())
    return PydanticSemanticManifestTransformer.transform(manifest) if transformed else manifest


def authored_manifest() -> PydanticSemanticManifest:
    """The manifest as written, before DSI adds its generated (private) metrics."""
    return build(transformed=False)


def contracts() -> dict[str, OpenDataContractStandard]:
    """Every contract, keyed by file name without the .odcs.yaml suffix."""
    return {
        path.name.removesuffix(".odcs.yaml"): OpenDataContractStandard.from_file(str(path))
        for path in sorted(CONTRACTS.glob("*.odcs.yaml"))
    }


def contract_columns() -> dict[str, set[str]]:
    """Column names per table, as declared by the contracts' schema objects."""
    columns: dict[str, set[str]] = {}
    for contract in contracts().values():
        for schema_object in contract.schema_ or []:
            columns[schema_object.name] = {prop.name for prop in schema_object.properties or []}
    return columns


def expr_columns(sql: str) -> set[str]:
    """Column names an expression reads; DuckDB is the fixtures' reference dialect."""
    return {column.name for column in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Column)}


def element_reads(semantic_model: PydanticSemanticModel) -> Iterator[tuple[str, str]]:
    """(element name, SQL) for every entity, dimension and measure; expr defaults to the name."""
    for element in [
        *semantic_model.entities,
        *semantic_model.dimensions,
        *semantic_model.measures,
    ]:
        yield element.name, str(element.expr if element.expr is not None else element.name)


def models_by_measure(manifest: PydanticSemanticManifest) -> dict[str, PydanticSemanticModel]:
    """The semantic model that defines each measure."""
    return {m.name: sm for sm in manifest.semantic_models for m in sm.measures}


def measures_of(metric: PydanticMetric, manifest: PydanticSemanticManifest) -> set[str]:
    """Measures a metric reads, following ratio and derived inputs down to simple metrics."""
    params = metric.type_params
    if params.measure is not None:
        return {params.measure.name}
    if params.conversion_type_params is not None:
        conversion = params.conversion_type_params
        return {m.name for m in (conversion.base_measure, conversion.conversion_measure) if m}
    metrics = {m.name: m for m in manifest.metrics}
    return {
        measure
        for metric_input in metric.input_metrics
        for measure in measures_of(metrics[metric_input.name], manifest)
    }


def filter_sql_by_metric(manifest: PydanticSemanticManifest) -> Iterator[tuple[str, str]]:
    """(metric whose models the filter applies to, where-SQL template) for every filter."""
    for metric in manifest.metrics:
        params = metric.type_params
        owned = [metric.filter, params.measure and params.measure.filter]
        conversion = params.conversion_type_params
        if conversion is not None:
            owned += [
                m.filter for m in (conversion.base_measure, conversion.conversion_measure) if m
            ]
        for intersection in owned:
            for where in intersection.where_filters if intersection else []:
                yield metric.name, where.where_sql_template
        for metric_input in metric.input_metrics:
            for where in metric_input.filter.where_filters if metric_input.filter else []:
                yield metric_input.name, where.where_sql_template


def linkable_pairs(manifest: PydanticSemanticManifest) -> set[tuple[str, str]]:
    """(entity, dimension) pairs a filter can name as `entity__dimension`."""
    pairs = set()
    for semantic_model in manifest.semantic_models:
        primary = semantic_model.primary_entity or next(
            entity.name for entity in semantic_model.entities if entity.type.value == "primary"
        )
        pairs |= {(primary, dimension.name) for dimension in semantic_model.dimensions}
    return pairs


def referenced_names(template: str) -> set[tuple[str, ...]]:
    """Entity path + element name of every Dimension/TimeDimension call in a Jinja template."""
    sets = JinjaObjectParser.parse_call_parameter_sets(
        template,
        custom_granularity_names=(),
        query_item_location=QueryItemLocation.NON_ORDER_BY,
    )
    dimensions = [
        (*(e.element_name for e in s.entity_path), s.dimension_reference.element_name)
        for s in sets.dimension_call_parameter_sets
    ]
    time_dimensions = [
        (*(e.element_name for e in s.entity_path), s.time_dimension_reference.element_name)
        for s in sets.time_dimension_call_parameter_sets
    ]
    return {*dimensions, *time_dimensions}


# --- tests -------------------------------------------------------------------------------


def test_fixtures_parse_as_a_dbt_project_with_dbt_semantic_interfaces() -> None:
    """Every definition file parses through DSI's YAML schema and pydantic models."""
    issues = project().issues
    assert not issues.errors and not issues.warnings, [i.cli_lines() for i in issues.issues]
    manifest = authored_manifest()
    assert {sm.name for sm in manifest.semantic_models} == {
        "accounts",
        "users",
        "events",
        "subscriptions",
        "invoices",
        "plan_history",
    }
    assert len(manifest.saved_queries) >= 2
    assert [
        spine.node_relation.relation_name for spine in manifest.project_configuration.time_spines
    ] == ["main.time_spine"]


def test_fixtures_pass_every_default_semantic_validation() -> None:
    """DSI's default rules report no errors on the authored or the transformed manifest."""
    validator = SemanticManifestValidator[PydanticSemanticManifest]()
    for transformed in (False, True):
        results = validator.validate_semantic_manifest(build(transformed=transformed))
        for issue in [*results.warnings, *results.future_errors]:
            print(f"transformed={transformed}: {issue.as_readable_str()}")
        assert not results.errors, [issue.as_readable_str() for issue in results.errors]


def test_every_contract_parses_as_odcs_v3_0_without_losing_keys() -> None:
    """Contracts pass the package's ODCS JSON schema and parse with no key silently dropped."""

    def lost_keys(raw: Any, parsed: Any, path: str = "") -> Iterator[str]:
        if isinstance(raw, dict):
            for key, value in raw.items():
                if key not in parsed:
                    yield f"{path}.{key}"
                else:
                    yield from lost_keys(value, parsed[key], f"{path}.{key}")
        elif isinstance(raw, list):
            for index, (raw_item, parsed_item) in enumerate(zip(raw, parsed, strict=True)):
                yield from lost_keys(raw_item, parsed_item, f"{path}[{index}]")

    assert set(contracts()) == {
        "accounts",
        "users",
        "events",
        "subscriptions",
        "invoices",
        "time_spine",
    }
    schema_text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    schema = jsonschema.Draft201909Validator(json.loads(schema_text))
    for name, contract in contracts().items():
        assert contract.apiVersion is not None and contract.apiVersion.startswith("v3.0."), name
        assert contract.kind == "DataContract"
        assert [schema_object.name for schema_object in contract.schema_ or []] == [name]
        raw = yaml.safe_load((CONTRACTS / f"{name}.odcs.yaml").read_text())
        assert not [error.message for error in schema.iter_errors(raw)], name
        parsed = contract.model_dump(by_alias=True, exclude_none=True)
        assert not list(lost_keys(raw, parsed)), name


def test_contracts_name_an_owner_team_and_freshness_slas() -> None:
    """Each contract names its owning team slug and states frequency/freshness/latency SLAs."""
    teams = set(DOMAIN_OWNERS.values())
    for name, contract in contracts().items():
        custom = {prop.property: prop.value for prop in contract.customProperties or []}
        assert custom.get("owner") in teams, name
        assert any(member.role == "owner" for member in contract.team or []), name
        sla = {prop.property for prop in contract.slaProperties or []}
        if name != "time_spine":
            assert {"frequency", "freshness", "latency"} <= sla, name


def test_events_contract_tolerates_duplicates_and_three_days_of_late_arrivals() -> None:
    """event_id is not declared unique, and the events latency SLA is 3 days."""
    events = contracts()["events"]
    event_id = next(p for p in events.schema_[0].properties if p.name == "event_id")
    assert not event_id.unique and not event_id.primaryKey
    assert all(rule.mustBe != 0 for rule in event_id.quality or [])
    latency = next(p for p in events.slaProperties if p.property == "latency")
    assert (latency.value, latency.unit) == (3, "d")


def test_pii_columns_are_classified_tagged_and_masked_wherever_a_semantic_model_reads_them() -> (
    None
):
    """users.email and events.anonymous_id are marked pii; a semantic model reads a PII column
    only as a whole column (users.email, a dimension), which the compiler then masks for
    anyone without view_pii (its manifest lists the column among the model's PII columns)."""
    from tests.semantic.conftest import fixtures_manifest

    marked = set()
    for contract in contracts().values():
        for schema_object in contract.schema_ or []:
            for prop in schema_object.properties or []:
                if prop.classification == "pii":
                    assert "pii" in (prop.tags or []), (schema_object.name, prop.name)
                    marked.add((schema_object.name, prop.name))
    assert marked == PII_COLUMNS
    manifest = fixtures_manifest()
    read = set()
    for semantic_model in authored_manifest().semantic_models:
        table = semantic_model.node_relation.alias
        masked = set(manifest.semantic_models[semantic_model.name].pii_columns)
        for _, sql in element_reads(semantic_model):
            for column in {(table, c) for c in expr_columns(sql)} & PII_COLUMNS:
                assert column[1] in masked and sql.strip() == column[1], (semantic_model.name, sql)
                read.add(column)
    assert read == {("users", "email")}


def test_semantic_model_expressions_read_only_columns_their_contract_declares() -> None:
    """Every column an entity, dimension or measure expr reads exists in the table's contract."""
    columns = contract_columns()
    for semantic_model in authored_manifest().semantic_models:
        table = semantic_model.node_relation.alias
        assert table in columns, f"no contract for table {table}"
        for element, sql in element_reads(semantic_model):
            unknown = expr_columns(sql) - columns[table]
            assert not unknown, f"{semantic_model.name}.{element} reads {unknown} not in contract"
    for spine in authored_manifest().project_configuration.time_spines:
        assert spine.primary_column.name in columns[spine.node_relation.alias]


def test_expressions_and_contract_sql_checks_run_on_duckdb() -> None:
    """Every element expr and contract SQL check runs on tables built from the contracts."""
    connection = duckdb.connect()
    for contract in contracts().values():
        for schema_object in contract.schema_ or []:
            columns = ", ".join(
                f"{p.name} {p.physicalType}" for p in schema_object.properties or []
            )
            connection.execute(f"CREATE TABLE {schema_object.physicalName} ({columns})")
    for semantic_model in authored_manifest().semantic_models:
        for _, sql in element_reads(semantic_model):
            connection.execute(f"SELECT {sql} FROM {semantic_model.node_relation.alias}")
    for contract in contracts().values():
        for schema_object in contract.schema_ or []:
            rules = [*(schema_object.quality or [])]
            rules += [rule for p in schema_object.properties or [] for rule in p.quality or []]
            for rule in rules:
                if rule.type == "sql":
                    # Empty tables violate nothing, so every check must come back as 0.
                    assert connection.execute(rule.query).fetchone() == (0,), rule.query


def test_filters_and_saved_queries_name_dimensions_that_exist_and_join() -> None:
    """Every `entity__dimension` in a filter or saved query exists and joins to its metrics.

    DSI only checks that filters parse, so a misspelt `Dimension('event__event_typ')`
    would otherwise pass validation.
    """
    manifest = authored_manifest()
    pairs = linkable_pairs(manifest)
    metrics = {metric.name: metric for metric in manifest.metrics}
    model_of = models_by_measure(manifest)

    def assert_resolves(template: str, metric_names: Iterable[str]) -> None:
        for *entity_path, element in referenced_names(template):
            if not entity_path and element == "metric_time":
                continue
            assert entity_path and (entity_path[-1], element) in pairs, template
            for metric_name in metric_names:
                for measure in measures_of(metrics[metric_name], manifest):
                    semantic_model = model_of[measure]
                    joinable = {entity.name for entity in semantic_model.entities}
                    joinable.add(str(semantic_model.primary_entity))
                    assert entity_path[0] in joinable, (metric_name, measure, template)

    for metric_name, template in filter_sql_by_metric(manifest):
        assert_resolves(template, [metric_name])
    for saved_query in manifest.saved_queries:
        params = saved_query.query_params
        assert set(params.metrics) <= set(metrics), saved_query.name
        wheres = params.where.where_filters if params.where else []
        for template in [
            *("{{ " + item + " }}" for item in params.group_by),
            *(where.where_sql_template for where in wheres),
        ]:
            assert_resolves(template, params.metrics)


def test_registry_has_enough_governed_metrics_across_three_domains_and_owners() -> None:
    """At least 28 metrics, each labelled, described and governed; 3 domains, 3 owners."""
    governance = yaml.safe_load((FIXTURES / "governance.yml").read_text())
    assert {d["slug"]: d["owner"] for d in governance["domains"]} == DOMAIN_OWNERS
    # data-governance owns no domain: it certifies definitions in all of them.
    assert {team["slug"] for team in governance["teams"]} == {
        *DOMAIN_OWNERS.values(),
        "data-governance",
    }
    metrics = authored_manifest().metrics
    assert len(metrics) >= 28
    for metric in metrics:
        assert metric.label and metric.description, metric.name
        meta = metric.config.meta if metric.config else {}
        assert meta.get("tier") in TIERS, metric.name
        assert DOMAIN_OWNERS.get(meta.get("domain")) == meta.get("owner"), metric.name
    assert {metric.config.meta["domain"] for metric in metrics} == set(DOMAIN_OWNERS)
    for semantic_model in authored_manifest().semantic_models:
        meta = semantic_model.config.meta if semantic_model.config else {}
        assert meta.get("owner") in DOMAIN_OWNERS.values() and meta.get("tier") in TIERS


def test_registry_uses_every_metric_type_variant_and_aggregation() -> None:
    """Every metric type, cumulative/derived/conversion variant and measure agg is exercised."""
    manifest = authored_manifest()
    metrics = manifest.metrics
    params = [metric.type_params for metric in metrics]
    assert {metric.type for metric in metrics} == set(MetricType)
    cumulative = [p.cumulative_type_params for p in params if p.cumulative_type_params]
    assert any(c.window for c in cumulative)
    assert any(c.grain_to_date == "month" for c in cumulative)
    assert any(not c.window and not c.grain_to_date for c in cumulative), "all-time"
    derived_inputs = [i for m in metrics if m.type is MetricType.DERIVED for i in m.input_metrics]
    assert any(i.offset_window for i in derived_inputs)
    assert any(i.offset_to_grain for i in derived_inputs)
    conversions = {
        p.conversion_type_params.calculation.value for p in params if p.conversion_type_params
    }
    assert conversions == {"conversion_rate", "conversions"}
    assert any(p.measure and p.measure.fill_nulls_with is not None for p in params)
    assert any(p.measure and p.measure.join_to_timespine for p in params)
    assert any(metric.filter for metric in metrics)
    assert any(p.numerator and p.numerator.filter and p.denominator.filter for p in params)
    measures = [m for sm in manifest.semantic_models for m in sm.measures]
    assert {m.agg for m in measures} == set(AggregationType)
    assert any(m.non_additive_dimension for m in measures)
    used = {name for metric in metrics for name in measures_of(metric, manifest)}
    assert used == {m.name for m in measures}, "every measure backs at least one metric"
