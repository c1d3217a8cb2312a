"""The query-time fan-out guard (issue 16): never a silently multiplied number.

A compiled metric query joins models on their declared primary, unique or natural keys
(``CompiledQuery.key_uses``); data that repeats such a key would multiply every measure the
join reaches. Before the query runs, ``keys_check`` runs each key's probe (one aggregate,
semantic.compiler.warehouse_probes.key_repeats_sql) and refuses the query with ``fan_out``
when the key repeats, naming the entity, the model, the table and how many values repeat.
Key values are never shown: the caller may not be allowed to see those rows.

Probe answers are remembered per (warehouse, table, probe SQL, data version), the data
version being the result cache's (semantic.result_cache.data_version_detail: row counts and
newest times of the release's sources and, on DuckDB, PostgreSQL and MariaDB, a mark of every
write to them, looked up at most once per TALLY_RESULT_CACHE_VERSION_S), so a repeated query
pays no probe and a data change probes again. Counts and times alone miss an UPDATE that
repeats a key and keeps both; where the engine shows no write mark (ClickHouse, Spark,
Snowflake, BigQuery, Trino, or a source that is a view) an answer is therefore kept only
TALLY_KEY_PROBE_UNVERSIONED_S (60 s), elsewhere up to PROBE_TTL_S. The probe reads the whole
table, whatever the caller's row policies: a key the data breaks is refused for all.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from semantic.compiler.key_uses import KeyUse
from semantic.compiler.principal import Principal
from semantic.manifests import release_resolve
from semantic.result_cache import data_version_detail, unversioned_ttl
from semantic.warehouse.execute import execute
from tally.errors import NotFound, QueryError
from tally.lru import LRU
from tally.metrics import KEY_PROBES

MSG_KEY_REPEATS = (
    "{item!r} is joined through entity {entity!r} of {model!r} (table {table}), declared "
    "{type}, but the data repeats that key{counts}; the join would multiply every measure "
    "it reaches (a fan-out), so the query is refused"
)
# The counts are of the whole table: shown to whom row policies do not restrict only.
COUNTS = ": {keys} key value(s) are held by several rows{when}, up to {rows} rows each"
HINT_KEY_REPEATS = (
    "fix the data of {table} so that each {entity} is one row{when}, or declare {entity!r} "
    "foreign in {model!r}; `tally validate --warehouse` lists the keys the data repeats"
)
PROBE_CACHE_SIZE = 4096
# Where the data version marks every write, a bound on an answer's age all the same (a
# statistics reset, a write PostgreSQL has not reported yet); where it does not, an UPDATE
# that repeats a key and keeps row counts and newest times is seen only when the answer
# expires: TALLY_KEY_PROBE_UNVERSIONED_S, 60 s by default (0: probe every query).
PROBE_TTL_S = 3600.0

# (warehouse, table, probe SQL, data version) → (expiry, repeated key values, most rows).
_probed = LRU(PROBE_CACHE_SIZE)


def keys_check(
    compiled: Any, *, release_ref: str | None = None, principal: Principal | None = None
) -> None:
    """Refuses a compiled query whose joins rely on a key the warehouse data repeats.

    The probe reads the whole table, so its counts are named only to an unrestricted
    principal (or a trusted caller, ``None``); others are told the key repeats.

    Raises:
        QueryError: ``fan_out``, naming the entity, model, table and the counts.
    """
    uses: tuple[KeyUse, ...] = getattr(compiled, "key_uses", ())
    if not uses:
        return
    warehouse = settings.WAREHOUSE
    # The release the query was compiled against names the sources whose data is versioned.
    release = release_for(getattr(compiled, "release", ""), release_ref)
    version = data_version_detail(release)
    ttl = PROBE_TTL_S if version.writes_seen else unversioned_ttl()
    for use in uses:
        key = (warehouse.display_url, use.table, use.probe_sql, version.digest)
        known = _probed.get(key)
        if known is None or known[0] <= time.monotonic():
            row = execute(warehouse, use.probe_sql, timeout_s=60, row_cap=1).rows[0]
            known = (time.monotonic() + ttl, int(row[0] or 0), int(row[1] or 0))
            KEY_PROBES.labels("repeated" if known[1] else "unique").inc()
            _probed.put(key, known)
        if known[1]:
            counts = principal is None or principal.unrestricted
            raise _refusal(use, known[1] if counts else None, known[2])


def release_for(compiled_ref: str, release_ref: str | None = None) -> Any:
    """The release whose sources version the data a compiled query reads: its own, or, for a
    proposal's definitions (``'proposal #3'``, no release yet), ``release_ref`` or the latest.
    """
    if compiled_ref:
        try:
            return release_resolve(compiled_ref)
        except NotFound:
            pass
    return release_resolve(release_ref)


def _refusal(use: KeyUse, keys: int | None, rows: int) -> QueryError:
    when = " at the same time" if use.scd else ""
    counts = "" if keys is None else COUNTS.format(keys=keys, rows=rows, when=when)
    if keys is None and when:
        counts = when
    return QueryError(
        MSG_KEY_REPEATS.format(
            item=use.item, entity=use.entity, model=use.model, table=use.table, type=use.type,
            counts=counts,
        ),
        code="fan_out",
        hint=HINT_KEY_REPEATS.format(
            table=use.table, entity=use.entity, model=use.model, when=when
        ),
        location="group_by",
    )  # fmt: skip


def key_probes_forget() -> None:
    """Forgets every probe answer (tests rebuild warehouses between cases)."""
    _probed.clear()
