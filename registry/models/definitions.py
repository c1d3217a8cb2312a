"""Definitions: the mutable head of each named definition and its immutable versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from registry.models.teams import Domain, Team


class Tier(models.TextChoices):
    CERTIFIED = "certified"
    STANDARD = "standard"
    EXPERIMENTAL = "experimental"


class Kind(models.TextChoices):
    SEMANTIC_MODEL = "semantic_model", "semantic model"
    METRIC = "metric", "metric"
    SAVED_QUERY = "saved_query", "saved query"
    CONTRACT = "contract", "data contract"
    PROJECT = "project", "project configuration"


class Status(models.TextChoices):
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class ChangeKind(models.TextChoices):
    ADDED = "added"
    MAJOR = "major"
    MINOR = "minor"
    RESTORED = "restored"


class Definition(models.Model):
    """The mutable head of one named definition; its meaning lives in its versions."""

    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    # Denormalised from the newest released version so that search is one indexed query.
    label = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    metric_type = models.CharField(max_length=30, blank=True)
    # Lower-cased "name label description" for catalog search: a plain LIKE on pre-lowered
    # text avoids UPPER() per row, and PostgreSQL serves it from a trigram index (0003).
    search_text = models.TextField(blank=True, default="")
    owner = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT)
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.PROTECT)
    tier = models.CharField(max_length=20, choices=Tier.choices, blank=True)
    current_version = models.ForeignKey(
        "DefinitionVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Certification of the current version (denormalised from it for the catalog).
    certified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    certified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at", "current_version", "search_text"])

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="definition_kind_name_unique"),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="definition_kind_valid"),
            models.CheckConstraint(
                condition=Q(tier__in=[*Tier.values, ""]), name="definition_tier_valid"
            ),
        ]
        indexes = [
            # The catalog lists one kind filtered by owner/domain/tier/status.
            models.Index(fields=["kind", "status", "name"], name="definition_kind_status"),
            models.Index(fields=["kind", "owner", "domain", "tier"], name="definition_facets"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class DefinitionVersion(models.Model):
    """An immutable version of a definition (normalised spec, content hash, semver)."""

    definition = models.ForeignKey(Definition, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    change_kind = models.CharField(max_length=20, choices=ChangeKind.choices)
    change_summary = models.TextField(blank=True)
    spec = models.JSONField()
    content_hash = models.CharField(max_length=64)
    source_file = models.CharField(max_length=500, blank=True)
    source_line = models.PositiveIntegerField(default=0)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    # Who (in data governance) certified this version and when; set when the version is
    # created by a merge, since versions are immutable. Empty = not certified.
    certified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    certified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["definition_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "number"], name="version_number_unique"),
            models.UniqueConstraint(
                fields=["definition", "major", "minor"], name="version_semver_unique"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="version_number_positive"),
            models.CheckConstraint(condition=Q(major__gte=1), name="version_major_positive"),
        ]

    @property
    def semver(self) -> str:
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.definition_id}@{self.semver}"
