"""Issue 18, Low: ``{{ Entity('user__email') }}`` in a filter (a dimension named as an entity)
raised a KeyError inside the compiler: a 500. It is a 400 ``unknown_entity`` with a hint."""

from __future__ import annotations

import pytest
from django.test import Client

from registry.services.access import token_create
from registry.services.definitions import definitions_sync
from semantic.compiler.joins import MSG_NOT_AN_ENTITY
from semantic.compiler.spec import MetricQuery
from semantic.services import compile_metric_query
from tally.errors import QueryError
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("item", "model"), [("user__email", "users"), ("account__tenant_id", "accounts")]
)
def test_entity_naming_a_dimension_is_a_400_with_a_hint(
    client: Client, item: str, model: str
) -> None:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    token = token_create(acting_user=None, service="bi-t1", scopes="compile", tenant="t1")
    body = {"metrics": ["signups"], "where": [f"{{{{ Entity('{item}') }}}} = 'x'"]}
    response = client.post(
        "/api/v1/compile", body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token.raw}",
    )  # fmt: skip
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "unknown_entity"
    assert error["location"] == "where[0]" and error["hint"].startswith("entities: ")


def test_the_message_names_the_item_and_its_model() -> None:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    query = MetricQuery(metrics=("signups",), where=("{{ Entity('user__email') }} = 'x'",))
    with pytest.raises(QueryError) as raised:
        compile_metric_query(query=query)
    assert raised.value.message == MSG_NOT_AN_ENTITY.format(
        name="{{ Entity('user__email') }}", model="users"
    )
