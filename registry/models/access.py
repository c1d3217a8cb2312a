"""Access control: role grants, access profiles (row policies, PII) and API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from registry.models.teams import Domain


class RoleGrant(models.Model):
    """A role held by a user, globally or (editor, reviewer) in one domain.

    Team membership adds implicit grants on top (see registry/permissions.py): members of a
    domain's owning team review in that domain, members of data governance hold governance.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_grants"
    )
    role = models.CharField(max_length=20)
    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.PROTECT, related_name="role_grants"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user_id", "role", "domain_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    role__in=[
                        "viewer",
                        "analyst",
                        "editor",
                        "reviewer",
                        "governance",
                        "auditor",
                        "admin",
                    ]
                ),
                name="role_grant_role_valid",
            ),
            # Domain roles name their domain; global roles never do.
            models.CheckConstraint(
                condition=(Q(role__in=["editor", "reviewer"]) & Q(domain__isnull=False))
                | (~Q(role__in=["editor", "reviewer"]) & Q(domain__isnull=True)),
                name="role_grant_domain_matches_role",
            ),
            models.UniqueConstraint(
                fields=["user", "role", "domain"], name="role_grant_unique_domain"
            ),
            models.UniqueConstraint(
                fields=["user", "role"],
                condition=Q(domain__isnull=True),
                name="role_grant_unique_global",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}@{self.domain_id}" if self.domain_id else self.role


class AccessProfile(models.Model):
    """Attributes row policies read for a user (tenant_id, regions…), keyed by name."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_profile"
    )
    attributes = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)


class ApiToken(models.Model):
    """A bearer token for a BI tool or service: stored as a lookup prefix + HMAC digest only.

    ``tly_<prefix>_<secret>``: the prefix finds the row, HMAC-SHA256(server key, whole token)
    is compared in constant time. The raw token is shown once and never stored.
    """

    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    # The identity the token acts as: a person, or the service account's own user row.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens"
    )
    # Non-empty for a service account's token: then its scopes alone decide what it may do.
    service = models.CharField(max_length=100, blank=True)
    scopes = models.JSONField(default=list)
    # Tenant binding: attributes row policies see for this token (override the user's).
    tenant = models.CharField(max_length=100, blank=True)
    attributes = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(digest=""), name="api_token_digest_set"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class AccessGeneration(models.Model):
    """One row (id 1) whose ``value`` changes with every write that can change what a token
    or a user may do or see: database triggers (migration 0006) bump it in the writing
    statement's own transaction, so no writer (service, admin, shell, raw SQL) can forget.
    Authentication reuses a derived principal only while the value it was derived at holds
    (registry/access_cache.py)."""

    value = models.BigIntegerField(default=0)
