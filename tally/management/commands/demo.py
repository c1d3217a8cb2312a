from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from registry.services.definitions import definitions_sync
from semantic.demo import build_demo_warehouse, demo_warehouse_exists
from semantic.demo.outage import demo_data_end, plant_outage
from tally.env import BASE_DIR
from tally.management.base import TallyCommand

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "tally-demo"
# A signed-in user in no team: sees everything, may comment, never edits or approves.
DEMO_VIEWER = "viewer"
DEFAULT_ADDR = "127.0.0.1:8000"
# The planted tracking outage is this many days before the data's last day (within the
# anomaly audit's recent window, and after the late-arrival replay's week).
OUTAGE_DAYS_BACK = 9
# The demo's data teams work for the company, not for one tenant: they read every tenant's
# rows and stored values. Team membership makes them reviewer in their domain (query,
# compile, propose, review), which row policies restrict; auditor is the smallest
# unrestricted role (it adds reading the audit log, never PII or review rights).
DEMO_TEAM_ROLE = "auditor"


def demo_roles_ensure() -> int:
    """Grants DEMO_TEAM_ROLE to every team member (idempotent); returns how many were new."""
    from registry.models import RoleGrant, TeamMembership
    from registry.services.access import role_grant

    members = get_user_model().objects.filter(
        pk__in=TeamMembership.objects.values_list("user_id", flat=True)
    )
    had = set(
        RoleGrant.objects.filter(role=DEMO_TEAM_ROLE, domain=None).values_list("user_id", flat=True)
    )
    for user in members:
        role_grant(user=user, role=DEMO_TEAM_ROLE)
    return sum(1 for user in members if user.pk not in had)


class Command(TallyCommand):
    help = (
        "Run the embedded demo: migrate the registry, build the demo warehouse if missing, "
        "load fixtures/, create a demo admin and serve the UI on 127.0.0.1:8000."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events", type=int, default=200_000, help="demo size (events)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--addr", default=DEFAULT_ADDR, help="host:port to serve on")
        parser.add_argument("--rebuild", action="store_true", help="rebuild the warehouse")
        parser.add_argument(
            "--end",
            type=dt.date.fromisoformat,
            default=None,
            help="last day of the demo's data, YYYY-MM-DD (default: yesterday, so freshness "
            "checks pass)",
        )
        parser.add_argument(
            "--definitions",
            type=Path,
            default=BASE_DIR / "fixtures",
            help="folder of definitions to load (default: fixtures/)",
        )
        parser.add_argument(
            "--no-serve", action="store_true", help="set everything up, then exit without serving"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        started = time.perf_counter()
        self._step("registry", lambda: call_command("migrate", interactive=False, verbosity=0))
        self._step("warehouse", lambda: self._warehouse(opts))
        self._step("definitions", lambda: self._definitions(opts["definitions"]))
        self._step("values", lambda: self._values(opts))
        self._step("audits", self._audits)
        self._step("demo admin", self._admin)
        self._step("demo users", self._users)
        self.stdout.write(f"ready in {time.perf_counter() - started:.1f}s")
        self.stdout.write(f"  login: {DEMO_USERNAME} / {DEMO_PASSWORD}")
        self.stdout.write(
            f"  also (password {DEMO_PASSWORD}): {DEMO_VIEWER} (viewer: reads, comments, no "
            "queries), and the team members of fixtures/governance.yml (reviewer in their "
            f"domain, {DEMO_TEAM_ROLE} everywhere), e.g. sara.okafor@tally.example "
            "(finance-data) proposes, tomas.silva@tally.example reviews, "
            "ada.nwosu@tally.example certifies"
        )
        self.stdout.write(
            f"  API token: tally token create --user {DEMO_USERNAME} --scope read,compile,query"
        )
        if opts["no_serve"]:
            return
        self.stdout.write(f"  open http://{opts['addr']}/  (Ctrl-C to stop)")
        # runserver without the autoreloader: the reloader forks a child that re-runs the
        # whole setup, and a demo has no code edits to watch for.
        call_command("runserver", opts["addr"], use_reloader=False, use_threading=True)

    def _step(self, name: str, fn: Any) -> None:
        started = time.perf_counter()
        detail = fn()
        took = time.perf_counter() - started
        self.stdout.write(f"{name:<11} {detail or 'ok'} ({took:.1f}s)")

    def _warehouse(self, opts: dict[str, Any]) -> str:
        wh = settings.WAREHOUSE
        if wh.engine != "duckdb":
            return f"using {wh.display_url} as it is (the demo builds only DuckDB warehouses)"
        if wh.path == ":memory:":
            raise CommandError("the demo needs a DuckDB file, not :memory: (WAREHOUSE_URL)")
        if demo_warehouse_exists(wh.path) and not opts["rebuild"]:
            return f"reusing {wh.path}"
        end = opts["end"] or timezone.localdate() - dt.timedelta(days=1)
        summary = build_demo_warehouse(
            wh.path, events=opts["events"], seed=opts["seed"], end_date=end
        )
        counts = ", ".join(f"{n} {t}" for t, n in dict(summary.tables).items())
        # A tracking outage a few days back: the audit flags it and the charts mark it.
        outage = end - dt.timedelta(days=OUTAGE_DAYS_BACK)
        lost = plant_outage(wh.path, day=outage)
        return f"built {wh.path} up to {end}: {counts}; outage on {outage} ({lost} events lost)"

    def _definitions(self, root: Path) -> str:
        result = definitions_sync(root=root, acting_user=None, note="tally demo")
        if result.release is None:
            return f"up to date ({result.plan.unchanged} definitions)"
        counts = result.plan.counts()
        return (
            f"release {result.release.name}: {counts['add'] + counts['restore']} added, "
            f"{counts['change']} changed, {counts['retire']} retired"
        )

    def _values(self, opts: dict[str, Any]) -> str:
        from semantic.jobs.compute import demo_values_ensure

        wh = settings.WAREHOUSE
        end = demo_data_end(wh.path) if wh.engine == "duckdb" else None
        end = end or opts["end"] or timezone.localdate() - dt.timedelta(days=1)
        self._data_end = end
        return demo_values_ensure(end=end, acting_user=None)

    def _audits(self) -> str:
        # One audit batch (contracts, anomalies, reconciliation), so that health shows at once.
        from semantic.jobs.audits import audit_run
        from semantic.models import AuditResult

        if AuditResult.objects.exists():
            return f"reusing {AuditResult.objects.count():,} audit results"
        # As of the end of the data's last day: the demo's data is not loaded live, so a
        # freshness SLA of an hour is judged against the moment its last load ended.
        now = dt.datetime.combine(self._data_end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        results = audit_run(now=now)
        failing = [r for r in results if r.status == "fail"]
        anomalies = sorted({r.target for r in failing if r.check_name == "anomaly"})
        shown = ", ".join(anomalies[:3]) + (" …" if len(anomalies) > 3 else "")
        return f"{len(results)} checks, {len(failing)} failing" + (
            f"; anomalies: {shown}" if anomalies else ""
        )

    def _admin(self) -> str:
        user_model = get_user_model()
        with transaction.atomic():
            user, created = user_model.objects.get_or_create(
                username=DEMO_USERNAME,
                defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
        return "created" if created else "exists"

    def _users(self) -> str:
        # The governance sync creates team members without a password; the demo lets you sign
        # in as them to try the review flow. Only users without a usable password are touched;
        # an empty password field counts as none (Django calls "" usable, yet nothing matches it).
        from registry.models import TeamMembership

        user_model = get_user_model()
        changed = 0
        with transaction.atomic():
            viewer, _ = user_model.objects.get_or_create(
                username=DEMO_VIEWER, defaults={"email": "viewer@example.com"}
            )
            members = user_model.objects.filter(
                pk__in=TeamMembership.objects.values_list("user_id", flat=True)
            )
            for user in [viewer, *members]:
                if not user.password or not user.has_usable_password():
                    user.set_password(DEMO_PASSWORD)
                    user.save(update_fields=["password"])
                    changed += 1
        granted = demo_roles_ensure()  # its own transactions (role_grant is durable)
        done = [f"{changed} password(s) set"] if changed else []
        done += [f"{granted} {DEMO_TEAM_ROLE} grant(s)"] if granted else []
        return ", ".join(done) or "exist"
