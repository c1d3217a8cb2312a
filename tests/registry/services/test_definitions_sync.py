"""definitions_sync / definitions_apply: plan, release, semver, idempotence, atomicity."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from registry.models import AuditEvent, Definition, DefinitionVersion, Release, ReleaseItem, Status
from registry.services.definitions import definitions_apply, definitions_sync
from semantic.compiler.definition_checks import load_project
from tally.errors import DefinitionError
from tests.registry.defs import CONTRACT_YAML, METRICS_YAML, SEMANTIC_MODEL_YAML, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write(
        tmp_path / "defs",
        {
            "semantic_models/events.yml": SEMANTIC_MODEL_YAML,
            "metrics/product.yml": METRICS_YAML,
            "contracts/events.odcs.yaml": CONTRACT_YAML,
        },
    )


def _version(kind: str, name: str) -> DefinitionVersion:
    definition = Definition.objects.get(kind=kind, name=name)
    assert definition.current_version is not None
    return definition.current_version


def test_first_sync_publishes_release_one_with_every_object(folder: Path) -> None:
    """An empty registry plus a folder gives r1 pinning version 1.0 of everything."""
    result = definitions_sync(root=folder, acting_user=None)
    assert result.release is not None and result.release.number == 1
    assert result.plan.counts()["add"] == 4
    assert ReleaseItem.objects.filter(release=result.release).count() == 4
    assert {v.semver for v in DefinitionVersion.objects.all()} == {"1.0"}
    metric = Definition.objects.get(kind="metric", name="revenue")
    assert (metric.owner.slug, metric.domain.slug, metric.tier) == (
        "product-analytics",
        "product",
        "standard",
    )
    assert AuditEvent.objects.filter(action="release.publish", release=result.release).exists()


def test_second_sync_of_the_same_folder_changes_nothing(folder: Path) -> None:
    """Sync is idempotent: no release, no version, and the plan says so."""
    definitions_sync(root=folder, acting_user=None)
    counts = (Release.objects.count(), DefinitionVersion.objects.count())
    again = definitions_sync(root=folder, acting_user=None)
    assert again.release is None
    assert again.plan.is_empty and again.plan.unchanged == 4
    assert (Release.objects.count(), DefinitionVersion.objects.count()) == counts


def test_metadata_change_bumps_minor_and_meaning_change_bumps_major(folder: Path) -> None:
    """A label edit is 1.1; an aggregation change is 2.0; each is shown in the plan."""
    definitions_sync(root=folder, acting_user=None)
    write(folder, {"metrics/product.yml": METRICS_YAML.replace("label: Revenue", "label: Sales")})
    write(
        folder,
        {"semantic_models/events.yml": SEMANTIC_MODEL_YAML.replace("agg: sum", "agg: max")},
    )
    result = definitions_sync(root=folder, acting_user=None)
    assert result.release is not None and result.release.number == 2
    described = [c.describe() for c in result.plan.changes]
    assert described == [
        "~ metric revenue (minor)",
        "~ semantic model events (major: measures[revenue].agg)",
    ]
    assert _version("metric", "revenue").semver == "1.1"
    assert _version("semantic_model", "events").semver == "2.0"
    # Unchanged objects stay pinned at their old versions in the new release.
    assert result.release.items.get(definition__name="events_tracked").version.semver == "1.0"


def test_removed_object_is_retired_not_deleted_and_restore_bumps_major(folder: Path) -> None:
    """Retiring is a state; bringing it back is a new major version."""
    definitions_sync(root=folder, acting_user=None)
    without = METRICS_YAML.split("  - name: events_tracked")[0]
    write(folder, {"metrics/product.yml": without})
    retired = definitions_sync(root=folder, acting_user=None)
    assert [c.describe() for c in retired.plan.changes] == ["- metric events_tracked"]
    head = Definition.objects.get(name="events_tracked", kind="metric")
    assert head.status == Status.RETIRED
    assert not retired.release.items.filter(definition=head).exists()
    write(folder, {"metrics/product.yml": METRICS_YAML})
    restored = definitions_sync(root=folder, acting_user=None)
    assert [c.describe() for c in restored.plan.changes] == ["+ metric events_tracked (restored)"]
    assert _version("metric", "events_tracked").semver == "2.0"


def test_breaking_contract_change_lists_the_models_and_metrics_that_read_it(folder: Path) -> None:
    """Removing a column another object reads is flagged breaking with its consumers."""
    definitions_sync(root=folder, acting_user=None)
    # Drop revenue from the contract *and* stop reading it, so the folder stays valid, but
    # the column removal is still breaking for anyone outside reading events.revenue.
    contract = CONTRACT_YAML.replace(
        "      - name: revenue\n        logicalType: number\n", ""
    ).replace("logicalType: integer", "logicalType: number")
    write(folder, {"contracts/events.odcs.yaml": contract})
    project = load_project(folder)
    errors = project.issues.errors
    assert [e.code for e in errors] == ["contract_missing_column"]  # events.revenue is read
    write(
        folder,
        {
            "contracts/events.odcs.yaml": CONTRACT_YAML.replace(
                "logicalType: integer", "logicalType: string"
            )
        },
    )
    result = definitions_sync(root=folder, acting_user=None)
    (change,) = result.plan.changes
    assert (
        change.describe()
        == "~ contract events (major: events.account_id: type integer → string) [breaking]"
    )
    assert change.affected == (
        "semantic_model:events",
        "metric:events_tracked",
        "metric:revenue",
    )


def test_compatible_contract_change_is_minor(folder: Path) -> None:
    """Adding an optional column is compatible and bumps the minor version."""
    definitions_sync(root=folder, acting_user=None)
    added = CONTRACT_YAML + "      - name: country\n        logicalType: string\n"
    write(folder, {"contracts/events.odcs.yaml": added})
    result = definitions_sync(root=folder, acting_user=None)
    (change,) = result.plan.changes
    assert change.describe() == "~ contract events (minor) [compatible]"
    assert _version("contract", "events").semver == "1.1"


def test_invalid_folder_writes_nothing(folder: Path) -> None:
    """Any error refuses the whole sync before a row is written."""
    write(folder, {"metrics/bad.yml": "metrics:\n  - name: oops\n    type: simple\n"})
    with pytest.raises(DefinitionError) as info:
        definitions_sync(root=folder, acting_user=None)
    assert info.value.code == "invalid_definitions"
    assert info.value.location == "defs/metrics/bad.yml:2"
    assert Definition.objects.count() == 0 and Release.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_apply_is_atomic_when_the_database_fails_midway(folder: Path) -> None:
    """A failure while pinning release items rolls back versions, heads and the release."""
    project = load_project(folder)
    trigger_sql = {
        "sqlite": (
            "CREATE TRIGGER fail_items BEFORE INSERT ON registry_releaseitem "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ),
        "postgresql": (
            "CREATE FUNCTION fail_items() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
            "'injected failure'; END; $$ LANGUAGE plpgsql; CREATE TRIGGER fail_items BEFORE "
            "INSERT ON registry_releaseitem FOR EACH ROW EXECUTE FUNCTION fail_items()"
        ),
    }[connection.vendor]
    with connection.cursor() as cur:
        cur.execute(trigger_sql)
    try:
        with pytest.raises(DatabaseError):
            definitions_apply(project=project, acting_user=None)
        assert Definition.objects.count() == 0
        assert DefinitionVersion.objects.count() == 0
        assert Release.objects.count() == 0
        assert AuditEvent.objects.count() == 0
    finally:
        with connection.cursor() as cur:
            cur.execute(
                "DROP TRIGGER IF EXISTS fail_items"
                + (" ON registry_releaseitem" if connection.vendor == "postgresql" else "")
            )
            if connection.vendor == "postgresql":
                cur.execute("DROP FUNCTION IF EXISTS fail_items()")


def test_versions_cannot_be_updated_even_by_raw_sql(folder: Path) -> None:
    """The database itself refuses to rewrite a version (immutability trigger)."""
    definitions_sync(root=folder, acting_user=None)
    version = DefinitionVersion.objects.first()
    with (
        pytest.raises(DatabaseError) as info,
        transaction.atomic(),
    ):
        DefinitionVersion.objects.filter(pk=version.pk).update(change_summary="rewritten")
    assert "immutable" in str(info.value)


def test_export_then_sync_round_trips_with_no_change(folder: Path, tmp_path: Path) -> None:
    """tally export writes files that sync back as 'no changes'."""
    from django.core.management import call_command

    definitions_sync(root=folder, acting_user=None)
    out = tmp_path / "exported"
    call_command("export", str(out))
    again = definitions_sync(root=out, acting_user=None)
    assert again.release is None, [c.describe() for c in again.plan.changes]
    assert again.plan.is_empty


ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("folder_path", "objects"),
    [
        (ROOT / "tests" / "registry" / "data" / "jaffle_sl", 15),  # 11 metrics, 2 models, …
        (ROOT / "fixtures", 84),  # every metric type of the spec
        # A dbt project root with non-dbt YAML beside it (issue 16): 3 metrics (one made
        # by create_metric), 1 model, the time spine.
        (ROOT / "tests" / "registry" / "data" / "dbt_root", 5),
        # dbt's own output for that project (dbt parse).
        (ROOT / "tests" / "registry" / "data" / "dbt_root_manifest" / "semantic_manifest.json", 5),
    ],
)
def test_a_project_syncs_and_round_trips_unchanged(
    tmp_path: Path, folder_path: Path, objects: int
) -> None:
    """A Semantic Layer project syncs as it is, and its export syncs back as 'no changes'."""
    from django.core.management import call_command

    first = definitions_sync(root=folder_path, acting_user=None)
    assert first.release is not None
    assert first.plan.counts()["add"] == objects
    out = tmp_path / "exported"
    call_command("export", str(out))
    assert definitions_sync(root=out, acting_user=None).plan.is_empty


def test_deprecating_a_metric_records_its_replacement(folder: Path) -> None:
    """meta.deprecated marks the head deprecated (a minor change) with a Deprecation row."""
    from registry.models import Deprecation

    definitions_sync(root=folder, acting_user=None)
    text = METRICS_YAML.replace(
        "meta: {owner: product-analytics}",
        "meta: {owner: product-analytics, deprecated: {replacement: revenue, reason: merged}}",
    )
    write(folder, {"metrics/product.yml": text})
    result = definitions_sync(root=folder, acting_user=None)
    head = Definition.objects.get(kind="metric", name="events_tracked")
    assert head.status == Status.DEPRECATED
    assert head.current_version.semver == "1.1"
    deprecation = Deprecation.objects.get(definition=head)
    assert (deprecation.replacement.name, deprecation.reason) == ("revenue", "merged")
    assert deprecation.release == result.release


def test_third_change_of_a_definition_gets_the_next_version_number(folder: Path) -> None:
    """Bug: the newest-version lookup kept the oldest row, so a third version of one
    definition reused number 2 and the sync failed on the unique constraint."""
    definitions_sync(root=folder, acting_user=None)
    for label in ("Sales", "Turnover"):
        write(
            folder,
            {"metrics/product.yml": METRICS_YAML.replace("label: Revenue", f"label: {label}")},
        )
        definitions_sync(root=folder, acting_user=None)
    assert _version("metric", "revenue").semver == "1.2"
    assert _version("metric", "revenue").number == 3
