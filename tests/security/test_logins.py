"""Issue 18, principle 8: password sign-ins (web page, /admin/, SQL API) are throttled per
account and per client address, and every failure and lock-out is an audit row."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache

from registry.models import AuditEvent
from semantic.sqlapi.auth import AuthenticationFailed, authenticate_connection

PASSWORD = "correct horse battery staple"
WRONG = "not-the-password-42"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counters(settings: Any) -> Iterator[None]:
    settings.TALLY_LOGIN_MAX_FAILURES_ACCOUNT = 5
    settings.TALLY_LOGIN_MAX_FAILURES_ADDRESS = 8
    settings.TALLY_LOGIN_WINDOW_S = 900
    # Fast hashing: each attempt checks a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(
        "alice", password=PASSWORD, is_staff=True, is_superuser=True
    )


def _post(client: Any, url: str, username: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_sign_in_locks_the_account_after_five_failures_even_for_the_right_password(
    client: Any, alice: Any, url: str
) -> None:
    """Bug: web and admin sign-in took unlimited password guesses and logged none of them."""
    for _ in range(5):
        assert _post(client, url, "alice", WRONG).status_code == 200
    refused = _post(client, url, "alice", PASSWORD)
    assert refused.status_code == 429
    assert b"too many failed sign-ins" in refused.content
    assert "_auth_user_id" not in client.session
    failed = AuditEvent.objects.filter(action="login.failed", object_name="alice")
    assert failed.count() == 6
    assert AuditEvent.objects.filter(action="login.locked", object_name="alice").count() == 1
    assert {e.payload["interface"] for e in failed} == {"admin" if "admin" in url else "web"}
    assert {e.ip for e in failed} == {"10.0.0.1"}
    for event in AuditEvent.objects.all():
        assert PASSWORD not in str(event.payload) and WRONG not in str(event.payload)


def test_sign_in_locks_an_address_that_guesses_across_accounts(client: Any, alice: Any) -> None:
    """Bug: one address could spray guesses over every account name without a limit."""
    for n in range(8):
        assert _post(client, "/accounts/login/", f"user{n}", WRONG).status_code == 200
    refused = _post(client, "/accounts/login/", "alice", PASSWORD)
    assert refused.status_code == 429
    assert b"from this address" in refused.content
    # Another address still signs alice in.
    assert _post(client, "/accounts/login/", "alice", PASSWORD, ip="10.0.0.2").status_code == 302


def test_a_successful_sign_in_clears_the_account_count(
    client: Any, alice: Any, settings: Any
) -> None:
    """A person who mistypes four times and then signs in starts again from zero."""
    settings.TALLY_LOGIN_MAX_FAILURES_ADDRESS = 20
    for _ in range(4):
        _post(client, "/accounts/login/", "alice", WRONG)
    assert _post(client, "/accounts/login/", "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        _post(client, "/accounts/login/", "alice", WRONG)
    assert _post(client, "/accounts/login/", "alice", PASSWORD).status_code == 302


class _Peer:
    """A connected socket's peer address, as the SQL API server hands it over."""

    def __init__(self, ip: str) -> None:
        self.ip = ip

    def getpeername(self) -> tuple[str, int]:
        return (self.ip, 50000)


def test_sql_api_password_logins_are_throttled_and_audited(alice: Any) -> None:
    """Bug: the SQL API's password authentication took unlimited guesses, unaudited."""
    for _ in range(5):
        with pytest.raises(AuthenticationFailed, match="password authentication failed"):
            authenticate_connection("alice", WRONG, peer=_Peer("10.0.0.9"))
    with pytest.raises(AuthenticationFailed, match="too many failed sign-ins") as refused:
        authenticate_connection("alice", PASSWORD, peer=_Peer("10.0.0.9"))
    assert "wait and try again" in str(refused.value)
    failed = AuditEvent.objects.filter(action="login.failed", object_name="alice")
    assert failed.count() == 6
    assert {(e.payload["interface"], e.ip) for e in failed} == {("sql", "10.0.0.9")}
    assert AuditEvent.objects.filter(action="login.locked").count() == 1


def test_wrong_tokens_under_a_name_do_not_lock_that_names_valid_token_or_password(
    alice: Any,
) -> None:
    """Bug: a SQL API token's user name is only a label, yet its failures counted against
    that name: five wrong tokens sent as "alice" from anywhere locked out alice's valid
    token and her password sign-in for the window. Token attempts now count per address."""
    from registry.services.access import role_grant, token_create

    role_grant(user=alice, role="admin")
    token = token_create(acting_user=None, user=alice, scopes="read,query").raw
    wrong = "tly_" + token.split("_")[1] + "_" + "x" * 40
    for _ in range(7):  # the address limit is 8
        with pytest.raises(AuthenticationFailed, match="password authentication failed"):
            authenticate_connection("alice", wrong, peer=_Peer("10.0.0.66"))
    # Every failure is still audited, under the label it came with.
    failed = AuditEvent.objects.filter(action="login.failed", object_name="alice")
    assert failed.count() == 7
    assert {e.payload["account_failures"] for e in failed} == {0}
    # From another address, the valid token and alice's password both still sign in. (In a
    # context of their own, as each SQL API connection has: a token sign-in binds the token
    # to the audit context, which must not outlive this test.)
    signed_in = contextvars.copy_context().run(
        authenticate_connection, "alice", token, peer=_Peer("10.0.0.7")
    )
    assert signed_in.account == alice
    assert authenticate_connection("alice", PASSWORD, peer=_Peer("10.0.0.7")).account == alice
    # The guessing address itself is throttled as before: its eighth failure locks it.
    with pytest.raises(AuthenticationFailed, match="password authentication failed"):
        authenticate_connection("alice", wrong, peer=_Peer("10.0.0.66"))
    with pytest.raises(AuthenticationFailed, match="from this address"):
        contextvars.copy_context().run(
            authenticate_connection, "alice", token, peer=_Peer("10.0.0.66")
        )
