"""Parsing and validating a folder of definitions: every bad input gets file:line and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.definitions.issues import Issue
from registry.definitions.project import CONTRACT, METRIC, SAVED_QUERY, SEMANTIC_MODEL
from registry.definitions.yaml_source import MAX_FILE_BYTES
from semantic.compiler.definition_checks import load_project
from tests.registry.defs import CONTRACT_YAML, METRICS_YAML, SEMANTIC_MODEL_YAML, write


def only_error(root: Path) -> Issue:
    errors = load_project(root).issues.errors
    assert len(errors) == 1, [e.cli_lines() for e in errors]
    return errors[0]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(
        tmp_path / "defs",
        {
            "semantic_models/events.yml": SEMANTIC_MODEL_YAML,
            "metrics/product.yml": METRICS_YAML,
            "contracts/events.odcs.yaml": CONTRACT_YAML,
        },
    )


def test_a_valid_dbt_project_folder_parses_into_objects(good: Path) -> None:
    """dbt-layout YAML and an ODCS contract give one object each, and no issue."""
    project = load_project(good)
    assert project.issues.errors == []
    assert sorted(project.objects) == [
        (CONTRACT, "events"),
        (METRIC, "events_tracked"),
        (METRIC, "revenue"),
        (SEMANTIC_MODEL, "events"),
    ]
    assert project.get(SEMANTIC_MODEL, "events").spec["model"] == "ref('events')"
    assert project.manifest is not None


def test_metricflow_one_document_per_object_layout_is_accepted(tmp_path: Path) -> None:
    """MetricFlow's own layout (semantic_model: documents with node_relation) parses too."""
    root = write(
        tmp_path,
        {
            "mf.yml": """\
            semantic_model:
              name: orders
              node_relation: {alias: orders, schema_name: shop}
              defaults: {agg_time_dimension: ordered_at}
              entities: [{name: order, type: primary, expr: id}]
              dimensions:
                - {name: ordered_at, type: time, type_params: {time_granularity: day}}
              measures: [{name: order_total, agg: sum, expr: amount}]
            ---
            metric:
              name: order_total
              type: simple
              type_params: {measure: order_total}
            """
        },
    )
    project = load_project(root)
    assert project.issues.errors == []
    assert project.get(SEMANTIC_MODEL, "orders").spec["node_relation"]["schema_name"] == "shop"


def test_malformed_yaml_reports_its_line(good: Path) -> None:
    """A YAML syntax error names the file and the line of the problem."""
    write(good, {"metrics/broken.yml": "metrics:\n  - name: x\n    type: [simple\n"})
    issue = only_error(good)
    assert issue.code == "yaml_syntax"
    assert issue.file == "defs/metrics/broken.yml"
    assert issue.line == 4


def test_unknown_key_names_key_line_and_suggests_the_right_one(good: Path) -> None:
    """A misspelt key inside a metric is an error at its line with a did-you-mean hint."""
    write(
        good,
        {
            "metrics/extra.yml": """\
            metrics:
              - name: revenue_two
                type: simple
                type_parms:
                  measure: revenue
            """
        },
    )
    issue = only_error(good)
    assert (issue.code, issue.line) == ("schema", 4)
    assert issue.message == "unknown key 'type_parms' in revenue_two"
    assert issue.hint == "did you mean 'type_params'?"


def test_wrong_type_is_reported_at_the_value(good: Path) -> None:
    """A value of the wrong type points at the offending key's line."""
    write(
        good,
        {
            "metrics/bad.yml": """\
            metrics:
              - name: revenue_two
                type: simple
                type_params:
                  measure: revenue
                label: 42
            """
        },
    )
    issue = only_error(good)
    assert (issue.code, issue.line) == ("schema", 6)
    assert "label: expected string, got int" in issue.message


def test_duplicate_names_across_files_name_both_places(good: Path) -> None:
    """The same metric in two files is an error pointing at both."""
    write(
        good,
        {
            "metrics/dupe.yml": """\
            metrics:
              - name: revenue
                type: simple
                type_params: {measure: revenue}
            """
        },
    )
    issue = only_error(good)
    assert issue.code == "duplicate_name"
    assert issue.message == ("metric 'revenue' is defined twice (also at defs/metrics/dupe.yml:2)")
    assert (issue.file, issue.line) == ("defs/metrics/product.yml", 2)


def test_duplicate_key_in_one_mapping_is_an_error(good: Path) -> None:
    """PyYAML would silently keep the last of two equal keys; Tally refuses them."""
    write(good, {"metrics/twice.yml": "metrics:\n  - name: a_b\n    name: c_d\n"})
    issue = only_error(good)
    assert issue.code == "yaml_syntax"
    assert "duplicate key 'name'" in issue.message
    assert issue.line == 3


def test_unknown_measure_suggests_the_closest_name(good: Path) -> None:
    """A metric reading a measure that does not exist gets 'did you mean'."""
    write(
        good,
        {
            "metrics/typo.yml": """\
            metrics:
              - name: revenue_typo
                type: simple
                type_params:
                  measure: revnue
            """
        },
    )
    issue = only_error(good)
    assert issue.code == "unknown_measure"
    assert issue.message == "metric 'revenue_typo' reads unknown measure 'revnue'"
    assert issue.hint == "did you mean 'revenue'?"
    assert issue.line == 5


def test_unknown_metric_in_a_ratio_is_reported(good: Path) -> None:
    """Ratio inputs must be metrics that exist."""
    write(
        good,
        {
            "metrics/ratio.yml": """\
            metrics:
              - name: revenue_per_event
                type: ratio
                type_params:
                  numerator: revenue
                  denominator: event_tracked
            """
        },
    )
    issue = only_error(good)
    assert issue.code == "unknown_metric"
    assert issue.hint == "did you mean 'events_tracked'?"
    assert issue.line == 6


def test_unknown_contract_reference_is_reported(good: Path) -> None:
    """config.meta.contract must name a contract that exists."""
    text = SEMANTIC_MODEL_YAML.replace("tier: certified}", "tier: certified, contract: event}")
    write(good, {"semantic_models/events.yml": text})
    issue = only_error(good)
    assert issue.code == "unknown_contract"
    assert issue.hint == "did you mean 'events'?"


def test_contract_that_does_not_cover_a_read_column_is_an_error(good: Path) -> None:
    """A semantic model reading a column its table's contract lacks is refused."""
    text = SEMANTIC_MODEL_YAML.replace("expr: event_id", "expr: evnt_id")
    write(good, {"semantic_models/events.yml": text})
    issue = only_error(good)
    assert issue.code == "contract_missing_column"
    assert issue.message == (
        "semantic model 'events' reads events.evnt_id, which contract 'events' does not cover"
    )
    assert issue.hint == "did you mean 'event_id'?"
    assert issue.line == 25


def test_cycles_among_derived_metrics_name_the_cycle(good: Path) -> None:
    """Derived metrics that depend on each other are one error naming the whole cycle."""
    write(
        good,
        {
            "metrics/cycle.yml": """\
            metrics:
              - name: metric_a
                type: derived
                type_params: {expr: metric_b + 1, metrics: [metric_b]}
              - name: metric_b
                type: derived
                type_params: {expr: metric_c * 2, metrics: [metric_c]}
              - name: metric_c
                type: derived
                type_params: {expr: metric_a - 1, metrics: [metric_a]}
            """
        },
    )
    issue = only_error(good)
    assert issue.code == "metric_cycle"
    assert issue.message == "metrics form a cycle: metric_a → metric_b → metric_c → metric_a"


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    """A folder with no YAML says so instead of syncing an empty registry."""
    (tmp_path / "empty").mkdir()
    issue = only_error(tmp_path / "empty")
    assert issue.code == "empty_folder"
    assert issue.hint is not None


def test_a_50_mb_file_is_refused_with_the_limit(good: Path) -> None:
    """Huge files are refused before parsing, naming the limit."""
    big = good / "metrics" / "huge.yml"
    with big.open("wb") as fh:
        fh.write(b"metrics:\n")
        fh.write(b"# padding\n" * (50 * 1024 * 1024 // 10))
    assert big.stat().st_size > MAX_FILE_BYTES
    issue = only_error(good)
    assert issue.code == "file_too_large"
    assert issue.message == "file is 50.0 MB; the limit for one definitions file is 5 MB"


def test_non_utf8_bytes_are_reported_with_their_line(good: Path) -> None:
    """Latin-1 bytes give an encoding error at the right line, not a crash."""
    write(good, {"metrics/latin1.yml": b"metrics:\n  - name: caf\xe9\n"})
    issue = only_error(good)
    assert issue.code == "not_utf8"
    assert issue.line == 2
    assert issue.message == "byte 0xe9 at offset 22 is not valid UTF-8"


def test_bad_tier_and_unknown_team_are_governance_errors(good: Path) -> None:
    """config.meta.tier must be a tier; owners must be declared teams when teams exist."""
    write(
        good,
        {
            "governance.yml": """\
            teams:
              - slug: product-analytics
                name: Product analytics
            domains:
              - slug: product
                name: Product
                owner: product-analytics
            """,
            "metrics/gov.yml": """\
            metrics:
              - name: revenue_gov
                type: simple
                type_params: {measure: revenue}
                config:
                  meta: {owner: product-analytic, tier: gold}
            """,
        },
    )
    errors = load_project(good).issues.errors
    assert [(e.code, e.hint) for e in errors] == [
        ("bad_tier", "use certified, standard, experimental"),
        ("unknown_team", "did you mean 'product-analytics'?"),
    ]


def test_dsi_semantic_validation_runs_on_the_whole_manifest(good: Path) -> None:
    """Rules only dbt-semantic-interfaces knows (here: agg_time_dimension) are reported."""
    text = SEMANTIC_MODEL_YAML.replace("agg_time_dimension: occurred_at", "agg_time_dimension: ts")
    write(good, {"semantic_models/events.yml": text})
    errors = load_project(good).issues.errors
    assert errors and all(e.code == "semantic" for e in errors)
    assert any("ts" in e.message for e in errors)


def test_cli_line_format_snapshot() -> None:
    """The exact CLI rendering of an issue (snapshot)."""
    issue = Issue(
        "defs/m.yml",
        12,
        "unknown_measure",
        "metric 'x' reads unknown measure 'revnue'",
        "did you mean 'revenue'?",
    )
    assert issue.cli_lines() == [
        "defs/m.yml:12: error[unknown_measure]: metric 'x' reads unknown measure 'revnue'",
        "  hint: did you mean 'revenue'?",
    ]


JAFFLE = Path(__file__).resolve().parents[1] / "data" / "jaffle_sl"


def test_a_metricflow_dbt_project_folder_loads_as_it_is() -> None:
    """A dbt project (dbt_project.yml, sources, schema.yml, .sql spine) loads unchanged."""
    project = load_project(JAFFLE)
    assert project.issues.errors == []
    # Metrics without owner; saved queries without owner or domain (proposable from anywhere).
    assert {i.code for i in project.issues.warnings} == {"no_owner", "no_domain"}
    assert len(project.of_kind(METRIC)) == 11
    config = project.get("project", "default")
    assert config is not None
    assert config.spec["time_spine_table_configurations"] == [
        {"location": "main.metricflow_time_spine", "column_name": "date_day", "grain": "day"}
    ]


def test_table_resolves_through_contract_then_node_relation_then_default_schema(
    good: Path,
) -> None:
    """ref('events') finds the contract's table and its server schema; else main.<ref>."""
    from registry.definitions.project import resolve_relation

    write(
        good,
        {
            "contracts/events.odcs.yaml": CONTRACT_YAML
            + "servers:\n  - server: wh\n    type: duckdb\n    database: wh.duckdb\n"
            + "    schema: analytics\n"
        },
    )
    project = load_project(good)
    assert project.issues.errors == []
    contracts = project.of_kind(CONTRACT)
    events = project.get(SEMANTIC_MODEL, "events")
    assert resolve_relation(events, contracts).qualified == "analytics.events"
    assert resolve_relation(events, contracts).via == "contract"
    assert resolve_relation(events, []).qualified == "main.events"
    orders = load_project(JAFFLE).get(SEMANTIC_MODEL, "orders")
    assert resolve_relation(orders, [], default_schema="shop").qualified == "shop.orders"


def test_deprecation_must_name_an_existing_replacement(good: Path) -> None:
    """config.meta.deprecated.replacement is checked like any reference."""
    text = METRICS_YAML.replace(
        "meta: {owner: product-analytics}",
        "meta: {owner: product-analytics, deprecated: {replacement: revenu}}",
    )
    write(good, {"metrics/product.yml": text})
    issue = only_error(good)
    assert issue.code == "unknown_metric"
    assert issue.hint == "did you mean 'revenue'?"


@pytest.mark.parametrize("root", [Path(__file__).resolve().parents[3] / "fixtures", JAFFLE])
def test_stored_specs_are_valid_input_so_exports_parse_back(root: Path) -> None:
    """Every canonical spec passes DSI's own input schema (where filters as strings, windows
    as '7 days', export schema keys), which is what makes export → sync a no-op."""
    from registry.definitions.schema_errors import dsi_validators as _dsi_validators

    project = load_project(root)
    assert project.issues.errors == []
    for (kind, name), obj in project.objects.items():
        if kind == CONTRACT:
            continue
        spec = dict(obj.spec)
        if "model" in spec:
            spec.pop("model")
            spec["node_relation"] = {"alias": "t", "schema_name": "s"}
        if kind == SAVED_QUERY:
            # dbt's saved-query config.meta (owner, domain) is Tally's, not DSI's: the loader
            # reads it beside the DSI object (tested in test_saved_query_meta_round_trips).
            spec.pop("config", None)
        errors = [e.message for e in _dsi_validators()[kind].iter_errors(spec)]
        assert errors == [], (kind, name)


def test_metric_filter_names_must_be_reachable(good: Path) -> None:
    """A typo in a metric's filter is a validation error with did-you-mean, not a query-time
    surprise (DSI does not check filter names)."""
    write(
        good,
        {
            "metrics/filtered.yml": """\
            metrics:
              - name: purchases_only
                type: simple
                type_params: {measure: revenue}
                filter: |
                  {{ Dimension('event__event_typ') }} = 'purchase'
            """
        },
    )
    issue = only_error(good)
    assert issue.code == "unknown_dimension"
    assert issue.message == (
        "filter of metric 'purchases_only' reads 'event__event_typ', which 'purchases_only' "
        "cannot reach"
    )
    assert issue.hint == "did you mean 'event__event_type' or 'event__account'?"
    assert issue.line == 5


def test_metric_filter_may_filter_by_another_metric(good: Path) -> None:
    """{{ Metric('m', group_by=['entity']) }} in a metric's filter is valid when m exists and
    the filtered metric's model has the entity (MetricFlow's rule)."""
    write(
        good,
        {
            "metrics/filtered.yml": """\
            metrics:
              - name: revenue_of_busy_accounts
                type: simple
                type_params: {measure: revenue}
                filter: |
                  {{ Metric('events_tracked', group_by=['account']) }} > 100
            """
        },
    )
    assert load_project(good).issues.errors == []


@pytest.mark.parametrize(
    ("item", "code", "message", "hint"),
    [
        (
            "Metric('events_trackd', group_by=['account'])",
            "unknown_metric",
            "unknown metric 'events_trackd'",
            "did you mean 'events_tracked'?",
        ),
        (
            "Metric('events_tracked', group_by=['event_type'])",
            "unknown_dimension",
            "group_by 'event_type' of Metric('events_tracked', group_by=['event_type']) is not "
            "an entity",
            None,
        ),
    ],
)
def test_metric_filter_naming_a_bad_metric_or_entity_is_a_validation_error(
    good: Path, item: str, code: str, message: str, hint: str | None
) -> None:
    """A Metric() filter item is checked at validate time with did-you-mean."""
    write(
        good,
        {
            "metrics/filtered.yml": f"""\
            metrics:
              - name: revenue_of_busy_accounts
                type: simple
                type_params: {{measure: revenue}}
                filter: |
                  {{{{ {item} }}}} > 100
            """
        },
    )
    issue = only_error(good)
    assert issue.code == code
    assert issue.message == f"filter of metric 'revenue_of_busy_accounts': {message}"
    assert issue.line == 5
    if hint is not None:
        assert issue.hint == hint


def test_malformed_metric_filter_is_a_validation_error(good: Path) -> None:
    """An unsafe or malformed filter in a definition is refused at validate time."""
    write(
        good,
        {
            "metrics/filtered.yml": """\
            metrics:
              - name: purchases_only
                type: simple
                type_params: {measure: revenue}
                filter: "{{ Dimension('event__event_type') }} = 'x'; DROP TABLE events"
            """
        },
    )
    issue = only_error(good)
    assert issue.code == "bad_filter"


def test_saved_query_meta_round_trips(tmp_path: Path) -> None:
    """A saved query's config.meta (dbt's; DSI has no config) is kept in the spec, exported
    and read back unchanged; other config keys are refused with file:line."""
    from registry.definitions.export import ExportItem, export_files

    project = load_project(Path(__file__).resolve().parents[3] / "fixtures")
    saved = project.of_kind(SAVED_QUERY)
    assert saved[0].spec["config"] == {"meta": {"owner": "finance-data", "domain": "revenue"}}
    files = export_files([ExportItem(o.kind, o.name, o.spec) for o in saved])
    write(tmp_path / "back", files)
    again = {o.name: o.spec for o in load_project(tmp_path / "back").of_kind(SAVED_QUERY)}
    assert again == {o.name: o.spec for o in saved}
    text = files["saved_queries.yml"].replace("    meta:", "    colour: red\n    meta:", 1)
    write(tmp_path / "bad", {"saved_queries.yml": text})
    errors = load_project(tmp_path / "bad").issues.errors
    assert [(e.code, e.line > 0) for e in errors] == [("schema", True)]
    assert "unknown key 'colour'" in errors[0].message
