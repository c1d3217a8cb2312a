"""Who a SQL API connection is: ``authenticate(user, password) -> Principal``.

The server calls this once, at the startup message, with the user name and the password
the client sent (cleartext inside the connection; use TLS outside localhost).

Today the password is the Django user's own password (``django.contrib.auth.authenticate``):
the API-token service of access control is not merged yet. When it is, a password of the
form ``tly_<prefix>_<secret>`` is verified as an API token here, and only here.
"""

from __future__ import annotations

from django.contrib.auth import authenticate as django_authenticate

from semantic.compiler.principal import Principal

MSG_AUTH_FAILED = 'password authentication failed for user "{user}"'


class AuthenticationFailed(Exception):
    """Wrong user name or password (rendered as FATAL 28P01)."""


def authenticate(user: str, password: str) -> Principal:
    """The principal of a user name and password, or AuthenticationFailed."""
    account = django_authenticate(username=user, password=password) if password else None
    if account is None or not account.is_active:
        raise AuthenticationFailed(MSG_AUTH_FAILED.format(user=user))
    return Principal(name=f"user:{account.get_username()}", unrestricted=account.is_superuser)
