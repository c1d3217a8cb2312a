"""Proposals: reviewed change sets, their changes per revision, reviews, comments, checks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from registry.models.definitions import Kind
from registry.models.releases import Release


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
