"""Issue 18, High 3: PII through the numbers diff.

``config.meta.main_dimension: user__email`` made the numbers check group by email unmasked
(it ran with full trust), and every reader of the proposal, auditors included, saw raw
addresses. The check now runs with PII always masked, whoever the author is, and never
groups by a PII dimension: an explicit one is refused with the reason and a hint (the monthly
diff still stands), and the default pick skips PII dimensions.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from registry.services.access import role_grant
from semantic.manifests import manifest_for_release, release_resolve
from semantic.proposal_checks.numbers import (
    HINT_PII_DIMENSION,
    PII_DIMENSION_CODE,
    main_dimension,
    pii_dimension,
)
from tests.security.proposal_setup import (
    checks,
    persona,
    propose,
    reader,
    registry,
    tenants,
    warehouse_path,
)

pytestmark = pytest.mark.django_db
__all__ = ["registry", "warehouse_path"]  # fixtures

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")

SIGNUPS_BY_EMAIL = """\
metrics:
  - name: signups
    label: User signups
    description: Users who signed up in the period, guests left out.
    type: simple
    type_params:
      measure: signups
    filter: |
      {{ Dimension('user__role') }} <> 'guest'
    config:
      meta: {owner: growth-analytics, domain: growth, tier: certified, main_dimension: user__email}
"""


@pytest.mark.parametrize("role", ["governance", None])
@time_machine.travel(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC), tick=False)
def test_an_email_main_dimension_never_shows_an_address_to_a_reader(
    role: str | None,
    registry: None,
    warehouse_path: Path,
    client: Client,
    django_user_model: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Authored by governance (may view PII, unrestricted) or by a tenant-bound editor: the
    breakdown by email is refused with the reason; no address reaches an auditor."""
    attributes = {} if role else {"tenant_id": tenants(warehouse_path)[0]}
    author = persona(django_user_model, "grace", role, **attributes)
    role_grant(user=author, role="editor", domain="growth")
    proposal = propose(
        django_capture_on_commit_callbacks, author, {"signups.yml": SIGNUPS_BY_EMAIL}
    )
    numbers = checks(proposal)["numbers"]
    (signups,) = [m for m in numbers.details["metrics"] if m["metric"] == "signups"]
    assert signups["by_month"], numbers.details  # the monthly diff still stands
    assert signups["by_dimension"] == []
    refusal = signups["dimension_error"]
    assert refusal["code"] == PII_DIMENSION_CODE
    assert refusal["hint"] == HINT_PII_DIMENSION
    assert "user__email" in refusal["message"]
    assert refusal["location"] == "metric signups: config.meta.main_dimension"

    auditor = persona(django_user_model, "audrey", "auditor")
    response = reader(client, auditor).get(f"/api/v1/proposals/{proposal.pk}/checks")
    (shown,) = [c for c in response.json() if c["kind"] == "numbers"]
    assert not EMAIL.search(str(shown["details"]))


def test_the_default_main_dimension_skips_pii_dimensions(registry: None) -> None:
    """With no main_dimension, the first categorical dimension is picked; a PII one never."""
    manifest = manifest_for_release(release_resolve(None))
    assert pii_dimension(manifest, "user__email")
    assert not pii_dimension(manifest, "user__country")
    assert main_dimension(manifest, "signups") == "user__country"
