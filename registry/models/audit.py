"""The append-only audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from registry.models.releases import Release


class AuditLogImmutable(Exception):
    """Raised by any attempt to change or delete an audit row through the ORM."""


class AppendOnlyQuerySet(models.QuerySet):
    """A queryset that refuses bulk UPDATE and DELETE (the audit log is append-only)."""

    def update(self, **kwargs: object) -> int:
        raise AuditLogImmutable("the audit log is append-only: audit rows cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogImmutable("the audit log is append-only: audit rows cannot be deleted")


class AuditEvent(models.Model):
    """Append-only log of every state change, token use, compile and query.

    The model refuses save() of an existing row, delete() and queryset update()/delete();
    database triggers refuse UPDATE (SQLite, PostgreSQL) and DELETE (PostgreSQL).
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    action = models.CharField(max_length=60)
    object_kind = models.CharField(max_length=30, blank=True)
    object_name = models.CharField(max_length=255, blank=True)
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.PROTECT)
    payload = models.JSONField(default=dict)
    # Access control (0005). Nullable without defaults: SQLite adds them in place, so the
    # table (and its no-update trigger) is not rebuilt.
    token = models.ForeignKey(
        "ApiToken", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    principal = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    sql_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    row_count = models.BigIntegerField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The audit-log API filters by action or actor within a time range.
            models.Index(fields=["action", "at"], name="auditevent_action_at"),
            models.Index(fields=["actor", "at"], name="auditevent_actor_at"),
        ]

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AuditLogImmutable("the audit log is append-only: audit rows cannot be updated")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditLogImmutable("the audit log is append-only: audit rows cannot be deleted")
