"""``tally doctor``: checks a deployment and fails on what is unsafe.

Each check answers ok, warn (works, but know it) or fail (unsafe or broken: the command exits
non-zero). Checks: secret keys, DEBUG, the shared cache behind rate limits and sign-in
lockouts, the broker, the registry (reachable, migrated), the warehouse (reachable, not a
privileged role: connecting refuses one unless TALLY_WAREHOUSE_ALLOW_PRIVILEGED) and the time
spine (covers the data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from tally.env import DEV_SECRET_KEY
from tally.health import health_check_all

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Finding:
    check: str
    level: str  # ok | warn | fail
    detail: str
    hint: str = ""


def _secrets() -> Finding:
    if settings.SECRET_KEY == DEV_SECRET_KEY:
        level = WARN if settings.TALLY_DEMO else FAIL
        return Finding("secret_key", level, "SECRET_KEY is the development key in the source",
                       "set SECRET_KEY to a long random value")  # fmt: skip
    if settings.DEBUG:
        return Finding("secret_key", FAIL if not settings.TALLY_DEMO else WARN,
                       "DEBUG is on: tracebacks and settings reach clients", "unset DEBUG")  # fmt: skip
    return Finding("secret_key", OK, "SECRET_KEY set; DEBUG off")


def _shared_cache() -> Finding:
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith("LocMemCache"):
        return Finding(
            "rate_limit_cache",
            WARN if settings.TALLY_DEMO else FAIL,
            "rate limits and sign-in lockouts count per process (no shared cache): with N web "
            "processes a client gets N times its limit",
            "set TALLY_CACHE_URL=redis://host:6379/1",
        )
    try:
        from django.core.cache import cache

        cache.set("tally:doctor", "1", 5)
        if cache.get("tally:doctor") != "1":
            raise RuntimeError("a value written was not read back")
    except Exception as exc:
        return Finding("rate_limit_cache", FAIL, f"shared cache unusable: {exc}",
                       "check TALLY_CACHE_URL")  # fmt: skip
    return Finding("rate_limit_cache", OK, f"shared cache {backend.rsplit('.', 1)[-1]}")


def _services() -> list[Finding]:
    findings = []
    for result in health_check_all():
        if result.name == "broker" and settings.CELERY_TASK_ALWAYS_EAGER:
            findings.append(Finding("broker", WARN if settings.TALLY_DEMO else FAIL,
                                    "no broker: compute runs execute inside web requests",
                                    "set CELERY_BROKER_URL and run a worker and beat"))  # fmt: skip
            continue
        hint = {
            "warehouse": "check WAREHOUSE_URL; a superuser or file-reading role is refused",
            "registry": "check DATABASE_URL",
            "broker": "check CELERY_BROKER_URL",
        }.get(result.name, "")
        findings.append(
            Finding(
                result.name, OK if result.ok else FAIL, result.detail, "" if result.ok else hint
            )
        )
    return findings


def _migrations() -> Finding:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return Finding("migrations", FAIL, f"cannot read migrations: {exc}")
    if pending:
        return Finding("migrations", FAIL, f"{len(pending)} migration(s) not applied",
                       "run `tally migrate`")  # fmt: skip
    return Finding("migrations", OK, "registry schema up to date")


def _spine() -> Finding:
    try:
        from semantic.time_spine import time_spine_status

        status = time_spine_status()
    except Exception as exc:
        return Finding("time_spine", WARN, f"cannot check the time spine: {exc}",
                       "publish a release, then run `tally time-spine`")  # fmt: skip
    if not status.covers_data:
        return Finding("time_spine", FAIL, f"{status.table} does not cover the data",
                       "run `tally time-spine` (beat or cron)")  # fmt: skip
    return Finding("time_spine", OK, f"{status.table} covers the data")


CHECKS: tuple[Callable[[], Finding | list[Finding]], ...] = (
    _secrets, _shared_cache, _services, _migrations, _spine,
)  # fmt: skip


def doctor_run() -> list[Finding]:
    """Every finding, in a fixed order; never raises."""
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            found = check()
        except Exception as exc:  # a broken check is a failed check, not a traceback
            found = Finding(check.__name__.strip("_"), FAIL, f"{type(exc).__name__}: {exc}")
        findings.extend(found if isinstance(found, list) else [found])
    return findings
