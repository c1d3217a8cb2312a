"""Database triggers that make versions, releases and the audit log immutable.

A bug or a hand-written UPDATE must not rewrite history, so the database refuses it.
UPDATE is refused on both vendors. DELETE is refused on PostgreSQL; SQLite's test flush deletes
rows one by one (PostgreSQL truncates, which row triggers do not see), so there the foreign
keys (PROTECT) are what stop a version that a release pins from being deleted.
"""

from __future__ import annotations

from django.db import migrations

IMMUTABLE = {
    "registry_definitionversion": "definition versions are immutable",
    "registry_release": "releases are immutable",
    "registry_releaseitem": "release items are immutable",
    "registry_auditevent": "the audit log is append-only",
}


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    for table, message in IMMUTABLE.items():
        if vendor == "sqlite":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        elif vendor == "postgresql":
            schema_editor.execute(
                f"CREATE OR REPLACE FUNCTION {table}_immutable() RETURNS trigger AS $$ "
                f"BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql"
            )
            schema_editor.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_immutable()"
            )


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    for table in IMMUTABLE:
        if vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        elif vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {table}_immutable()")


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
