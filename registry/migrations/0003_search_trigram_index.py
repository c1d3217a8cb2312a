"""A trigram index for catalog search on PostgreSQL (LIKE '%text%' on search_text).

pg_trgm ships with PostgreSQL's contrib modules. Where the role may not create the extension,
the index is skipped and search falls back to a scan (correct, only slower); SQLite scans.
"""

from __future__ import annotations

from django.db import migrations


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cur.fetchone() is None:
            return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS definition_search_trgm ON registry_definition "
        "USING gin (search_text gin_trgm_ops)"
    )


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS definition_search_trgm")


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_immutable_triggers")]
    operations = [migrations.RunPython(create, drop)]
