"""The demo's value sets and sizes, and the SQL literals the build inlines from them.

Django-free. See :mod:`semantic.demo` for what the data looks like.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta

DEFAULT_END_DATE: date = date(2026, 10, 31)
"""Last day of history (inclusive) unless the caller picks another."""

HISTORY_DAYS = 730
"""Length of the history window in days; it ends at the end of ``end_date``."""

TABLES: tuple[str, ...] = ("accounts", "users", "events", "subscriptions", "invoices")
# Built alongside TABLES but independent of the seed, so kept out of the seeded set.
"""The demo tables, in build order."""

MAX_EVENTS = 2_000_000_000
"""Upper bound on ``events``; far above what one machine builds in reasonable time."""

MIN_ACCOUNTS = 20
MIN_USERS = 50

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
_EPOCH = datetime(1970, 1, 1)

# Value sets. They are fixed code, never user text, so they are safe to inline as literals.
PLANS: tuple[str, ...] = ("free", "starter", "pro", "enterprise")
"""Every ``plan`` value, cheapest first (accounts, subscriptions, properties.plan)."""
_PLAN_CHURN = (0.35, 0.25, 0.15, 0.07)  # share of accounts per plan that churn at some point
_PLAN_ENGAGEMENT = (0.6, 0.9, 1.2, 1.5)  # per-user event rate multiplier
_PLAN_SEAT_PRICE = (0.0, 12.0, 29.0, 49.0)  # list price per seat per month
_PLAN_SEATS = ((1, 5), (3, 25), (10, 150), (50, 2000))
_REGIONS = (("NA", 0.45), ("EMEA", 0.30), ("APAC", 0.15), ("LATAM", 0.10))
_COUNTRIES = (
    ("US", "US", "US", "US", "CA", "CA", "MX"),
    ("GB", "DE", "FR", "NL", "ES", "SE", "IE", "PL", "ZA", "AE"),
    ("JP", "AU", "IN", "SG", "KR", "NZ"),
    ("BR", "MX", "AR", "CO", "CL"),
)
_INDUSTRIES = (
    "software", "fintech", "healthcare", "retail", "education",
    "manufacturing", "media", "logistics", "real_estate", "nonprofit",
)  # fmt: skip
_ADJECTIVES = (
    "Acme", "Blue", "Bright", "Cedar", "Copper", "Crimson", "Delta", "Eastern", "Granite",
    "Harbor", "Iron", "Juniper", "Lunar", "Maple", "Northern", "Oak", "Pioneer", "Quantum",
    "Silver", "Summit", "Swift", "Vertex", "Willow", "Zenith",
)  # fmt: skip
_NOUNS = (
    "Analytics", "Bay", "Bridge", "Cloud", "Dynamics", "Forge", "Works", "Grid", "Harvest",
    "Hub", "Insights", "Labs", "Logic", "Metrics", "Nexus", "Orbit", "Peak", "Pulse", "Ridge",
    "Signal", "Stack", "Stream", "Vector", "Wave",
)  # fmt: skip
_SUFFIXES = ("Inc", "LLC", "Ltd", "GmbH", "Group", "Co", "SA", "BV", "AB", "Pty", "KK", "Corp")
_FIRST_NAMES = (
    "ada", "alan", "amara", "ana", "ben", "chen", "dana", "diego", "elena", "farah", "grace",
    "hiro", "ines", "ivan", "jamal", "julia", "kai", "lea", "luis", "maya", "nia", "omar",
    "priya", "raj", "sara", "sven", "tom", "uma", "yara", "zoe",
)  # fmt: skip
_LAST_NAMES = (
    "adams", "berg", "costa", "diaz", "evans", "fischer", "garcia", "hansen", "ito", "jones",
    "kim", "lopez", "meyer", "nakamura", "okafor", "patel", "quinn", "rossi", "silva", "smith",
    "tanaka", "umar", "varga", "wang", "xu", "young", "zhang", "novak", "dubois", "murphy",
)  # fmt: skip
_EVENT_TYPES = (
    ("page_view", 0.39),
    ("login", 0.14),
    ("feature_used", 0.20),
    ("dashboard_viewed", 0.10),
    ("report_created", 0.06),
    ("invite_sent", 0.03),
    ("invite_accepted", 0.02),
    ("trial_started", 0.01),
    ("purchase", 0.03),
    ("plan_upgraded", 0.01),
    ("plan_downgraded", 0.005),
    ("subscription_cancelled", 0.005),
)
EVENT_TYPES: tuple[str, ...] = ("signup", *(name for name, _ in _EVENT_TYPES))
"""Every ``events.event_type`` value."""
_FEATURES = (
    "dashboards", "reports", "alerts", "exports", "sql_editor", "api", "sso",
    "integrations", "comments", "scheduling", "ai_assistant", "permissions",
)  # fmt: skip
_SOURCES = (("web", 0.60), ("ios", 0.15), ("android", 0.10), ("api", 0.15))
_LATE_SHARE = 0.03  # share of events delivered 1 hour to 3 days late
_WEEKEND_MOVED = 0.65  # share of weekend draws moved to a weekday (weekends ~1/3 of weekdays)


def epoch_us(day: date) -> int:
    """Midnight UTC of ``day`` in microseconds since the Unix epoch."""
    return (datetime(day.year, day.month, day.day) - _EPOCH) // timedelta(microseconds=1)


# --- SQL literals built from the value sets above ----------------------------------------


def _sql_list(values: Sequence[str]) -> str:
    """A DuckDB list literal of our own constant strings."""
    assert all("'" not in v for v in values)
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _pick_index(u: str, weights: Sequence[float]) -> str:
    """CASE expression mapping a uniform draw ``u`` to a 1-based index with these weights."""
    cases, cumulative = [], 0.0
    for i, weight in enumerate(weights[:-1], start=1):
        cumulative += weight
        cases.append(f"WHEN {u} < {cumulative!r} THEN {i}")
    return f"CASE {' '.join(cases)} ELSE {len(weights)} END"


def _properties_literal() -> str:
    """Every possible ``properties`` value as a constant JSON list, indexed arithmetically.

    Parsing JSON per row is the slowest part of a naive build; there are only
    13 × 4 × 4 distinct payloads, so the events query indexes into this list instead.
    Index (0-based) = feature × 16 + source × 4 + plan, with feature 0 meaning "no feature".
    """
    payloads = []
    for feature in (None, *_FEATURES):
        for source, _ in _SOURCES:
            for plan in PLANS:
                body = {"source": source, "plan": plan}
                if feature is not None:
                    body = {"feature": feature, **body}
                payloads.append(json.dumps(body, separators=(",", ":")))
    return "(" + _sql_list(payloads) + "::JSON[])"


LITERALS: dict[str, str] = {
    "plans": _sql_list(PLANS),
    "plan_churn": repr(list(_PLAN_CHURN)),
    "plan_engagement": repr(list(_PLAN_ENGAGEMENT)),
    "plan_seat_price": repr(list(_PLAN_SEAT_PRICE)),
    "plan_seats_lo": repr([lo for lo, _ in _PLAN_SEATS]),
    "plan_seats_hi": repr([hi for _, hi in _PLAN_SEATS]),
    "regions": _sql_list([r for r, _ in _REGIONS]),
    "region_pick": _pick_index("u_region", [w for _, w in _REGIONS]),
    "countries": "[" + ", ".join(_sql_list(c) for c in _COUNTRIES) + "]",
    "industries": _sql_list(_INDUSTRIES),
    "n_industries": str(len(_INDUSTRIES)),
    "adjectives": _sql_list(_ADJECTIVES),
    "nouns": _sql_list(_NOUNS),
    "suffixes": _sql_list(_SUFFIXES),
    "n_adjectives": str(len(_ADJECTIVES)),
    "n_nouns": str(len(_NOUNS)),
    "n_names": str(len(_ADJECTIVES) * len(_NOUNS) * len(_SUFFIXES)),
    "first_names": _sql_list(_FIRST_NAMES),
    "last_names": _sql_list(_LAST_NAMES),
    "n_first_names": str(len(_FIRST_NAMES)),
    "n_last_names": str(len(_LAST_NAMES)),
    "event_types": _sql_list([e for e, _ in _EVENT_TYPES]),
    "event_type_pick": _pick_index("u_type", [w for _, w in _EVENT_TYPES]),
    "purchase_code": str(1 + [e for e, _ in _EVENT_TYPES].index("purchase")),
    "upgrade_code": str(1 + [e for e, _ in _EVENT_TYPES].index("plan_upgraded")),
    "feature_code": str(1 + [e for e, _ in _EVENT_TYPES].index("feature_used")),
    "n_features": str(len(_FEATURES)),
    "source_pick": _pick_index("u_source", [w for _, w in _SOURCES]),
    "properties": _properties_literal(),
    "late_share": repr(_LATE_SHARE),
    "weekend_moved": repr(_WEEKEND_MOVED),
}
