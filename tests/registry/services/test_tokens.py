"""API tokens: shown once and stored hashed, scopes, expiry, revocation, last use, principal."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

import pytest
import time_machine
from django.conf import LazySettings
from django.test import Client

from registry.models import ApiToken, AuditEvent
from registry.permissions import principal_for
from registry.services.access import (
    access_profile_set,
    parse_attributes,
    parse_duration,
    role_grant,
    token_create,
    token_revoke,
)
from tally.errors import PermissionDenied, UserError

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def me(client: Client, raw: str) -> Any:
    return client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def analyst(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("ana")
    role_grant(user=user, role="analyst")
    return user


def test_the_raw_token_is_never_stored(analyst: Any, settings: LazySettings) -> None:
    """Only the prefix and HMAC-SHA256(server key, token) are kept; no column of the token
    row or of its audit row holds the secret."""
    created = token_create(acting_user=None, scopes="read,compile", user=analyst)
    raw = created.raw
    assert raw.startswith(f"tly_{created.token.prefix}_")
    secret = raw.removeprefix(f"tly_{created.token.prefix}_")
    assert len(secret) >= 40
    row = ApiToken.objects.filter(pk=created.token.pk).values().get()
    for value in row.values():
        assert secret not in str(value)
    for event in AuditEvent.objects.values():
        assert secret not in str(event)
    expected = hmac.new(settings.TALLY_TOKEN_KEY.encode(), raw.encode(), hashlib.sha256)
    assert row["digest"] == expected.hexdigest()


def test_a_token_authenticates_with_its_scopes(client: Client, analyst: Any) -> None:
    created = token_create(acting_user=None, scopes=["compile"], user=analyst, name="looker")
    response = me(client, created.raw)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["username"] == "ana" and body["token"]["name"] == "looker"
    assert body["actions"] == ["compile", "read"]
    assert body["principal"]["name"] == "token:looker"


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"), "invalid token"),
        (lambda raw: "tly_000000000000_" + raw[len("tly_000000000000_") :], "invalid token"),
        (lambda raw: raw.replace("tly_", "xyz_"), "malformed token"),
        (lambda raw: raw + " extra", "malformed Authorization header"),
    ],
    ids=["wrong-secret", "unknown-prefix", "malformed", "two-words"],
)
def test_a_wrong_token_is_401(client: Client, analyst: Any, mangle: Any, message: str) -> None:
    created = token_create(acting_user=None, scopes=["read"], user=analyst)
    response = me(client, mangle(created.raw))
    assert response.status_code == 401
    assert message in response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_revoked_token_is_refused(client: Client, analyst: Any) -> None:
    created = token_create(acting_user=None, scopes=["read"], user=analyst)
    assert me(client, created.raw).status_code == 200
    token_revoke(token=created.token, acting_user=None)
    response = me(client, created.raw)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "token revoked"
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


def test_a_token_expires(client: Client, analyst: Any) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        created = token_create(
            acting_user=None, scopes=["read"], user=analyst, expires_in=parse_duration("1d")
        )
        clock.move_to(T0 + dt.timedelta(hours=23, minutes=59))
        assert me(client, created.raw).status_code == 200
        clock.move_to(T0 + dt.timedelta(days=1))
        response = me(client, created.raw)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "token expired"


def test_a_new_server_key_invalidates_tokens(
    client: Client, analyst: Any, settings: LazySettings
) -> None:
    created = token_create(acting_user=None, scopes=["read"], user=analyst)
    settings.TALLY_TOKEN_KEY = "another-server-key-of-at-least-32-characters"
    assert me(client, created.raw).status_code == 401


def test_last_use_is_written_at_most_once_a_minute(client: Client, analyst: Any) -> None:
    """Each write also appends one token.use audit row; requests in between write nothing."""
    created = token_create(acting_user=None, scopes=["read"], user=analyst)
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(3):
            assert me(client, created.raw).status_code == 200
        clock.move_to(T0 + dt.timedelta(seconds=59))
        assert me(client, created.raw).status_code == 200
        assert AuditEvent.objects.filter(action="token.use").count() == 1
        clock.move_to(T0 + dt.timedelta(seconds=61))
        assert me(client, created.raw).status_code == 200
    created.token.refresh_from_db()
    assert created.token.last_used_at == T0 + dt.timedelta(seconds=61)
    uses = AuditEvent.objects.filter(action="token.use")
    assert uses.count() == 2 and {e.token_id for e in uses} == {created.token.pk}


def test_bad_scopes_durations_and_attributes_name_their_field(analyst: Any) -> None:
    with pytest.raises(UserError) as bad_scope:
        token_create(acting_user=None, scopes="read,write", user=analyst)
    assert (bad_scope.value.code, bad_scope.value.location) == ("invalid_scope", "scopes")
    assert "read, compile, query, propose, audit" in (bad_scope.value.hint or "")
    with pytest.raises(UserError) as bad_duration:
        parse_duration("30 days")
    assert (bad_duration.value.code, bad_duration.value.location) == (
        "invalid_duration",
        "expires",
    )
    with pytest.raises(UserError) as bad_attr:
        parse_attributes(["regions"])
    assert bad_attr.value.location == "attr"
    assert parse_attributes(["regions=EU,US", "tier=gold"]) == {
        "regions": ["EU", "US"],
        "tier": "gold",
    }


def test_a_person_creates_tokens_only_within_their_own_actions(analyst: Any) -> None:
    token_create(acting_user=analyst, scopes=["compile", "query"], user=analyst)
    with pytest.raises(PermissionDenied) as wider:
        token_create(acting_user=analyst, scopes=["propose"], user=analyst)
    assert "propose" in wider.value.message
    with pytest.raises(PermissionDenied):
        token_create(acting_user=analyst, scopes=["read"], service="powerbi")


def test_tokens_api_creates_once_lists_and_revokes(client: Client, analyst: Any) -> None:
    client.force_login(analyst)
    response = client.post(
        "/api/v1/tokens",
        {"scopes": ["query"], "name": "tableau", "expires": "30d"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    raw = response.json()["token"]
    listed = client.get("/api/v1/tokens").json()["results"]
    assert [t["name"] for t in listed] == ["tableau"]
    assert "token" not in listed[0] and raw not in str(listed)
    token_id = response.json()["id"]
    assert client.delete(f"/api/v1/tokens/{token_id}").json()["revoked_at"]
    assert client.get("/api/v1/tokens").json()["results"] == []
    assert me(Client(), raw).status_code == 401


def test_a_token_cannot_mint_tokens(client: Client, analyst: Any) -> None:
    """A leaked token must not extend itself: the tokens API wants a session."""
    created = token_create(acting_user=None, scopes=["read"], user=analyst)
    response = client.post(
        "/api/v1/tokens",
        {"scopes": ["read"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {created.raw}",
    )
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "an API token cannot manage tokens"


def test_another_users_token_is_not_found(
    client: Client, analyst: Any, django_user_model: Any
) -> None:
    other = django_user_model.objects.create_user("bob")
    created = token_create(acting_user=None, scopes=["read"], user=other)
    client.force_login(analyst)
    assert client.delete(f"/api/v1/tokens/{created.token.pk}").status_code == 404
    created.token.refresh_from_db()
    assert created.token.revoked_at is None


# --------------------------------------------------------------------------- principal


def test_principal_of_a_person_carries_profile_attributes(analyst: Any) -> None:
    access_profile_set(user=analyst, attributes={"regions": ["EU"], "tenant_id": "t0"})
    principal = principal_for(analyst)
    assert principal.name == "user:ana"
    assert dict(principal.attributes) == {"regions": ["EU"], "tenant_id": "t0"}
    assert (principal.view_pii, principal.unrestricted) == (False, False)


def test_a_tenant_token_overrides_attributes_and_is_restricted(django_user_model: Any) -> None:
    """Even an admin's token is row-restricted once it is bound to a tenant."""
    admin = django_user_model.objects.create_superuser("root", password="x" * 12)
    assert principal_for(admin).unrestricted and principal_for(admin).view_pii
    access_profile_set(user=admin, attributes={"regions": ["EU", "US"]})
    created = token_create(
        acting_user=None,
        scopes=["query"],
        user=admin,
        tenant="t1",
        attributes={"regions": ["EU"]},
    )
    principal = principal_for(admin, token=created.token)
    assert dict(principal.attributes) == {"regions": ["EU"], "tenant_id": "t1"}
    assert (principal.view_pii, principal.unrestricted) == (False, False)


@pytest.mark.parametrize(
    ("role", "view_pii", "unrestricted"),
    [
        ("viewer", False, False),
        ("analyst", False, False),
        ("governance", True, True),
        ("auditor", False, True),
        ("admin", True, True),
    ],
)
def test_pii_and_row_policies_follow_the_role(
    django_user_model: Any, role: str, view_pii: bool, unrestricted: bool
) -> None:
    user = django_user_model.objects.create_user(f"u-{role}")
    role_grant(user=user, role=role)
    principal = principal_for(user)
    assert (principal.view_pii, principal.unrestricted) == (view_pii, unrestricted)


def test_a_service_token_has_only_its_own_attributes(django_user_model: Any) -> None:
    created = token_create(acting_user=None, scopes=["query"], service="powerbi-eu", tenant="t7")
    principal = principal_for(created.token.user, token=created.token)
    assert principal.name == "token:powerbi-eu"
    assert dict(principal.attributes) == {"tenant_id": "t7"}
    assert not principal.unrestricted and not principal.view_pii
    assert created.token.user.username == "svc.powerbi-eu"
    assert not created.token.user.has_usable_password()


def test_a_persons_own_token_may_narrow_but_never_widen_their_binding(
    client: Client, analyst: Any, django_user_model: Any
) -> None:
    """A tenant-bound analyst cannot mint a token for another tenant (or other attribute
    values) to read rows her profile does not allow; her own tenant is fine; an unrestricted
    user may bind a token to any tenant, which only narrows what it sees."""
    from registry.services.access import MSG_WIDER_BINDING, access_profile_set

    access_profile_set(user=analyst, attributes={"tenant_id": "t1", "regions": ["EU"]})
    for binding in ({"tenant": "t2"}, {"attributes": {"regions": ["EU", "US"]}}):
        with pytest.raises(PermissionDenied) as refused:
            token_create(acting_user=analyst, user=analyst, scopes="query", **binding)
        assert refused.value.message.startswith(MSG_WIDER_BINDING.split("{")[0])
    assert not ApiToken.objects.filter(user=analyst).exists()
    same = token_create(acting_user=analyst, user=analyst, scopes="query", tenant="t1")
    assert principal_for(analyst, token=same.token).attributes["tenant_id"] == "t1"
    governor = django_user_model.objects.create_user("gov")
    role_grant(user=governor, role="governance")
    narrowed = token_create(acting_user=governor, user=governor, scopes="query", tenant="t2")
    principal = principal_for(governor, token=narrowed.token)
    assert principal.attributes["tenant_id"] == "t2" and not principal.unrestricted
