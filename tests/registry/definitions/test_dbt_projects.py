"""dbt projects as they are (issue 16): ``create_metric: true`` makes the simple metric dbt
makes, a project root is read as dbt reads it, and dbt's ``semantic_manifest.json`` loads."""

from __future__ import annotations

from pathlib import Path

from registry.definitions.project import METRIC
from semantic.compiler.definition_checks import load_project
from tests.registry.defs import write

ORDERS = """\
semantic_models:
  - name: orders
    model: ref('orders')
    defaults: {agg_time_dimension: ordered_at}
    entities: [{name: order, type: primary, expr: id}]
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
    measures:
      - name: order_total
        description: Sum of order amounts.
        label: Order total
        agg: sum
        expr: amount
        create_metric: true
      - {name: order_count, agg: count, expr: id, create_metric: true}
      - {name: order_max, agg: max, expr: amount}
"""


def test_create_metric_makes_the_simple_metric_dbt_makes(tmp_path: Path) -> None:
    """A measure with create_metric: true becomes a simple metric of the same name (it was
    silently dropped, so MetricFlow's simple_manifest lost its metrics)."""
    project = load_project(write(tmp_path, {"models/orders.yml": ORDERS}))
    assert project.issues.errors == [], [e.cli_lines() for e in project.issues.errors]
    total = project.get(METRIC, "order_total")
    assert total is not None
    assert total.spec["type"] == "simple"
    assert total.spec["type_params"]["measure"]["name"] == "order_total"
    assert (total.spec["label"], total.spec["description"]) == (
        "Order total",
        "Sum of order amounts.",
    )
    assert total.file.endswith("orders.yml") and total.line == 9
    assert project.get(METRIC, "order_count") is not None
    assert project.get(METRIC, "order_max") is None


def test_create_metric_keeps_a_written_simple_metric_of_the_same_name(tmp_path: Path) -> None:
    metrics = """\
    metrics:
      - name: order_total
        label: Revenue (written)
        type: simple
        type_params: {measure: order_total}
    """
    project = load_project(write(tmp_path, {"models/orders.yml": ORDERS, "m.yml": metrics}))
    assert project.issues.errors == []
    assert project.get(METRIC, "order_total").spec["label"] == "Revenue (written)"


def test_create_metric_refuses_a_metric_of_another_kind_with_that_name(tmp_path: Path) -> None:
    """dbt refuses the same clash (CreateProxyMeasureRule)."""
    metrics = """\
    metrics:
      - name: order_count
        type: derived
        type_params: {expr: order_total * 2, metrics: [order_total]}
    """
    project = load_project(write(tmp_path, {"models/orders.yml": ORDERS, "m.yml": metrics}))
    codes = [e.code for e in project.issues.errors]
    assert "create_metric_conflict" in codes
    error = project.issues.errors[codes.index("create_metric_conflict")]
    assert "order_count" in error.message and "derived" in error.message
    assert error.file.endswith("orders.yml")


DBT_ROOT = Path(__file__).resolve().parents[1] / "data" / "dbt_root"


def test_a_dbt_project_root_reads_only_its_model_paths() -> None:
    """Taskfile.yml, .pre-commit-config.yaml, meltano.yml, .user.yml, target/, dbt_packages/
    and analyses/ beside the models are not definitions (each was an unknown_key error)."""
    project = load_project(DBT_ROOT)
    assert project.issues.errors == [], [e.cli_lines() for e in project.issues.errors]
    assert sorted(project.objects) == [
        ("metric", "food_orders"),
        ("metric", "order_total"),
        ("metric", "orders"),
        ("project", "default"),
        ("semantic_model", "orders"),
    ]
    assert {o.file for o in project.objects.values()} == {"dbt_root/transform/marts/orders.yml"}


def test_model_paths_default_to_models(tmp_path: Path) -> None:
    root = write(
        tmp_path / "proj",
        {
            "dbt_project.yml": "name: p\nversion: '1'\n",
            "models/orders.yml": ORDERS,
            "Taskfile.yml": "tasks: {}\n",
        },
    )
    project = load_project(root)
    assert project.issues.errors == []
    assert project.get(METRIC, "order_total") is not None


def test_a_bad_model_paths_entry_is_named_with_its_file(tmp_path: Path) -> None:
    root = write(
        tmp_path / "proj",
        {"dbt_project.yml": "name: p\nmodel-paths: ../elsewhere\n", "models/o.yml": ORDERS},
    )
    errors = load_project(root).issues.errors
    assert [e.code for e in errors] == ["dbt_project"]
    assert errors[0].file.endswith("dbt_project.yml") and "model-paths" in errors[0].message


def test_an_empty_model_path_says_which_folders_were_read(tmp_path: Path) -> None:
    root = write(tmp_path / "proj", {"dbt_project.yml": "name: p\n", "other/o.yml": ORDERS})
    errors = load_project(root).issues.errors
    assert [e.code for e in errors] == ["empty_folder"]
    assert "models/" in errors[0].message and "model-paths" in errors[0].message


MANIFEST_JSON = DBT_ROOT.parent / "dbt_root_manifest" / "semantic_manifest.json"


def test_dbts_semantic_manifest_json_loads_as_the_same_objects() -> None:
    """target/semantic_manifest.json (written by `dbt parse` for tests/registry/data/dbt_root)
    gives the objects the project's YAML gives; its relations are the ones dbt resolved."""
    from_json = load_project(MANIFEST_JSON)
    assert from_json.issues.errors == [], [e.cli_lines() for e in from_json.issues.errors]
    assert sorted(from_json.objects) == sorted(load_project(DBT_ROOT).objects)
    model = from_json.get("semantic_model", "orders")
    assert model.spec["node_relation"]["schema_name"] == "main"
    food = from_json.get(METRIC, "food_orders")
    assert food.spec["filter"] == "{{ Dimension('order__is_food_order') }}"
    assert "input_measures" not in food.spec["type_params"]
    # JSON has no positions: an object's line is where its name stands in the file.
    text = MANIFEST_JSON.read_text().splitlines()
    assert '"name": "food_orders"' in text[food.line - 1]


def test_a_json_file_that_is_not_a_semantic_manifest_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "semantic_manifest.json"
    bad.write_text('{"nodes": {}}')
    assert [e.code for e in load_project(bad).issues.errors] == ["not_a_semantic_manifest"]
    bad.write_text('{"metrics": [\n}')
    errors = load_project(bad).issues.errors
    assert [e.code for e in errors] == ["json_syntax"] and errors[0].line == 2
