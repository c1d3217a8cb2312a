# The access generation (issue #19): one counter that database triggers bump in the same
# transaction as every write that can change a principal, so that authentication may reuse a
# derived principal until the next such write (registry/access_cache.py).

from django.conf import settings
from django.db import migrations, models

FUNCTION = "tally_access_generation_bump"
# Table -> the columns whose UPDATE changes a principal (None: any column). Inserts and
# deletes always count. A token's last_used_at and a user's last_login change on use and do
# not: they would empty every cache once a minute per token, at every sign-in.
WATCHED = {
    "registry_apitoken": (
        "prefix", "digest", "name", "user_id", "service", "scopes", "tenant", "attributes",
        "expires_at", "revoked_at",
    ),
    "registry_rolegrant": None,
    "registry_accessprofile": None,
    "registry_teammembership": None,
    "registry_team": ("slug",),
    "registry_domain": ("slug", "owner_id"),
    "<user>": ("username", "is_active", "is_superuser"),
}
# The counter starts at (and after a lost row, e.g. a test's flush, restarts from) the
# clock in microseconds, so a restarted counter never repeats a value a cache may hold.
SEED = {
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
    "postgresql": "CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS BIGINT)",
}
BUMP = (
    "INSERT INTO registry_accessgeneration (id, value) VALUES (1, {seed}) "
    "ON CONFLICT (id) DO UPDATE SET value = registry_accessgeneration.value + 1"
)


def _tables(apps):  # type: ignore[no-untyped-def]
    user_table = apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table
    return {user_table if t == "<user>" else t: cols for t, cols in WATCHED.items()}


def _events(columns):  # type: ignore[no-untyped-def]
    update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
    return {"ins": "INSERT", "del": "DELETE", "upd": update}


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor not in SEED:
        return
    bump = BUMP.format(seed=SEED[vendor])
    schema_editor.execute(bump)
    if vendor == "postgresql":
        schema_editor.execute(
            f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger AS $$ "
            f"BEGIN {bump}; RETURN NULL; END; $$ LANGUAGE plpgsql"
        )
    for table, columns in _tables(apps).items():
        if vendor == "postgresql":
            # One bump per statement, whatever it touched; TRUNCATE (a test's flush) too.
            events = " OR ".join([*_events(columns).values(), "TRUNCATE"])
            schema_editor.execute(
                f"CREATE TRIGGER {table}_access_gen AFTER {events} ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
            )
            continue
        # SQLite triggers are per row and per event.
        for suffix, event in _events(columns).items():
            schema_editor.execute(
                f"CREATE TRIGGER {table}_access_gen_{suffix} AFTER {event} ON {table} "
                f"BEGIN {bump}; END"
            )


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    for table in _tables(apps):
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_access_gen ON {table}")
        elif vendor == "sqlite":
            for suffix in ("ins", "del", "upd"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_access_gen_{suffix}")
    if vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0005_access_control"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AccessGeneration",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(create, drop),
    ]
