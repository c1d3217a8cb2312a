"""The decisions the UI uses: the tally_actions context and rules' {% has_perm %}."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import engines
from django.test import RequestFactory

from registry.models import Domain, Release
from registry.services.access import role_grant

pytestmark = pytest.mark.django_db

TEMPLATE = (
    "{% load rules %}"
    "{% if 'compile' in tally_actions %}compile {% endif %}"
    "{% if 'view_audit_log' in tally_actions %}audit {% endif %}"
    "{% has_perm 'registry.review' user domain as may_review %}review={{ may_review }}"
)


def render(user: Any, domain: Domain) -> str:
    request = RequestFactory().get("/")
    request.user = user
    template = engines["django"].from_string(TEMPLATE)
    return template.render({"domain": domain, "user": user}, request)


def test_templates_see_what_the_user_may_do(
    owner: Any, registry_r1: Release, django_user_model: Any
) -> None:
    product = Domain.objects.get(slug="product")
    # The owner persona reviews product through its team (reviewers also compile).
    assert render(owner, product) == "compile review=True"
    auditor = django_user_model.objects.create_user("audrey")
    role_grant(user=auditor, role="auditor")
    assert render(auditor, product) == "compile audit review=False"
    assert render(AnonymousUser(), product) == "review=False"
