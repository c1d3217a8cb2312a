"""Registry models: teams, domains, definitions with immutable versions, releases, audit log.

Every kind of definition (semantic model, metric, saved query, data contract, project
configuration) shares one pair of tables: ``Definition`` is the mutable head (status and the
denormalised fields search needs) and ``DefinitionVersion`` the immutable history. A
``Release`` pins exactly one version of each live definition, like a commit. Immutability is
enforced by database triggers (see migration 0002), not only by offering no update service.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


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


class Team(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    webhook_url = models.URLField(blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TeamMembership", related_name="teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class TeamMembership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member"
        LEAD = "lead"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="team_membership_unique")
        ]


class Domain(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


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


class AuditEvent(models.Model):
    """Append-only log of every state change (a trigger refuses UPDATE and DELETE)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    action = models.CharField(max_length=60)
    object_kind = models.CharField(max_length=30, blank=True)
    object_name = models.CharField(max_length=255, blank=True)
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.PROTECT)
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-id"]
