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
    # Review policy of the domain (a definition may override it in config.meta.review).
    min_approvals = models.PositiveSmallIntegerField(default=1)
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


# --------------------------------------------------------------------------- access control


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


# --------------------------------------------------------------------------- review workflow


class Proposal(models.Model):
    """A reviewed change set of definitions against a base release (merged ⇒ immutable)."""

    class State(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        CHANGES_REQUESTED = "changes_requested"
        APPROVED = "approved"
        MERGED = "merged"
        CLOSED = "closed"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="proposals"
    )
    base_release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Bumped by every update or rebase; reviews, comments and checks name the one they saw.
    revision = models.PositiveIntegerField(default=1)
    merged_release = models.OneToOneField(
        Release, null=True, blank=True, on_delete=models.PROTECT, related_name="proposal"
    )
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    merged_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    state__in=["draft", "open", "changes_requested", "approved", "merged", "closed"]
                ),
                name="proposal_state_valid",
            ),
            models.CheckConstraint(condition=Q(revision__gte=1), name="proposal_revision_positive"),
            # A merged proposal always names the release it produced.
            models.CheckConstraint(
                condition=~Q(state="merged") | Q(merged_release__isnull=False),
                name="proposal_merged_has_release",
            ),
        ]
        indexes = [models.Index(fields=["state", "-id"], name="proposal_state_id")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class ProposalChange(models.Model):
    """One definition as a revision of a proposal proposes it (``spec`` None = retire it)."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="changes")
    revision = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=255)
    spec = models.JSONField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    source_file = models.CharField(max_length=500, blank=True)
    source_line = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["proposal_id", "revision", "kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["proposal", "revision", "kind", "name"], name="proposal_change_unique"
            )
        ]

    @property
    def is_deletion(self) -> bool:
        return self.spec is None


class Review(models.Model):
    class Verdict(models.TextChoices):
        APPROVE = "approve"
        REQUEST_CHANGES = "request_changes"

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    body = models.TextField(blank=True)
    revision = models.PositiveIntegerField()
    # Set when the proposal changed after this review (it no longer counts).
    dismissed = models.BooleanField(default=False)
    # An approval by data governance certifies the certified-tier definitions it covers.
    certifies = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["proposal_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(verdict__in=["approve", "request_changes"]), name="review_verdict_valid"
            )
        ]


class Comment(models.Model):
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    body = models.TextField()
    revision = models.PositiveIntegerField()
    # Optional anchor: one field of one changed definition (``metric:mrr`` + ``type_params.expr``).
    definition_kind = models.CharField(max_length=20, blank=True)
    definition_name = models.CharField(max_length=255, blank=True)
    field_path = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["proposal_id", "id"]


class ProposalCheck(models.Model):
    """The result of one check kind on one revision (unique: checks are idempotent)."""

    class CheckKind(models.TextChoices):
        VALIDATION = "validation"
        CONTRACTS = "contracts"
        COMPILE = "compile"
        IMPACT = "impact"
        NUMBERS = "numbers"

    class CheckStatus(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"
        ERROR = "error"

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="checks")
    revision = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=CheckKind.choices)
    status = models.CharField(
        max_length=20, choices=CheckStatus.choices, default=CheckStatus.PENDING
    )
    summary = models.TextField(blank=True)
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["proposal_id", "revision", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["proposal", "revision", "kind"], name="proposal_check_unique"
            )
        ]
