"""Releases: one consistent set of definition versions, pinned like a commit; deprecations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from registry.models.definitions import Definition, DefinitionVersion


class Release(models.Model):
    """One consistent, approved set of definition versions; BI tools and jobs pin one."""

    class Source(models.TextChoices):
        SYNC = "sync"
        PROPOSAL = "proposal"

    number = models.PositiveIntegerField(unique=True)
    parent = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="child"
    )
    source = models.CharField(max_length=20, choices=Source.choices)
    note = models.TextField(blank=True)
    summary = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    versions = models.ManyToManyField(
        DefinitionVersion, through="ReleaseItem", related_name="releases"
    )

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.CheckConstraint(condition=Q(number__gte=1), name="release_number_positive")
        ]

    @property
    def name(self) -> str:
        return f"r{self.number}"

    def __str__(self) -> str:
        return self.name


class ReleaseItem(models.Model):
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="items")
    definition = models.ForeignKey(Definition, on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey(DefinitionVersion, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            # A release pins exactly one version of each definition.
            models.UniqueConstraint(fields=["release", "definition"], name="release_item_unique")
        ]


class Deprecation(models.Model):
    definition = models.ForeignKey(
        Definition, on_delete=models.PROTECT, related_name="deprecations"
    )
    replacement = models.ForeignKey(
        Definition, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.PROTECT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)
