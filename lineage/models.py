"""Lineage persisted: nodes and edges with the range of releases in which they hold.

A metric version, a semantic field or a contract column usually stays the same across many
releases, so a row is not copied per release: it carries ``valid_from`` (the release number
that introduced it) and ``valid_to`` (the last release it held in; NULL while it still holds).
The graph of release N is every row with ``valid_from <= N AND (valid_to IS NULL OR valid_to >=
N)``; publishing a release closes the rows that changed and inserts their replacements, which
is what keeps an incremental update small. Release nodes and ``pinned_in`` edges are not
stored: a metric version row's range *is* the set of releases pinning it.

Upstream SQL lineage (``tally lineage import-sql``) is not versioned by release: its rows have
``origin = sql`` and no range, and re-importing a model replaces its rows.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Origin(models.TextChoices):
    REGISTRY = "registry"
    SQL = "sql"


class LineageNode(models.Model):
    node_id = models.CharField(max_length=500)
    kind = models.CharField(max_length=30)
    label = models.CharField(max_length=500, blank=True)
    src = models.CharField(max_length=300)
    attrs = models.JSONField(default=dict)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.REGISTRY)
    valid_from = models.PositiveIntegerField(null=True)
    valid_to = models.PositiveIntegerField(null=True)

    class Meta:
        indexes = [
            # Lookup by id within the open (current) graph, and the range scan of one release.
            models.Index(fields=["node_id", "valid_to"], name="lineage_node_id_open"),
            models.Index(fields=["valid_to", "valid_from"], name="lineage_node_range"),
            models.Index(fields=["kind"], name="lineage_node_kind"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="lineage_node_range_ordered",
            ),
            models.CheckConstraint(
                condition=Q(origin="sql") | Q(valid_from__isnull=False),
                name="lineage_node_registry_has_range",
            ),
        ]

    def __str__(self) -> str:
        return self.node_id


class LineageEdge(models.Model):
    source = models.CharField(max_length=500)
    target = models.CharField(max_length=500)
    key = models.CharField(max_length=1000)
    type = models.CharField(max_length=30)
    subtype = models.CharField(max_length=10)
    transformation = models.CharField(max_length=30)
    expr = models.TextField(blank=True)
    src = models.CharField(max_length=300)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.REGISTRY)
    valid_from = models.PositiveIntegerField(null=True)
    valid_to = models.PositiveIntegerField(null=True)

    class Meta:
        indexes = [
            # Impact walks down from a node, upstream walks up to it (SQL recursive CTEs too).
            models.Index(fields=["source", "valid_to"], name="lineage_edge_source"),
            models.Index(fields=["target", "valid_to"], name="lineage_edge_target"),
            models.Index(fields=["valid_to", "valid_from"], name="lineage_edge_range"),
            models.Index(fields=["src"], name="lineage_edge_src"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(subtype__in=["direct", "indirect"]), name="lineage_edge_subtype"
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="lineage_edge_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} -[{self.type}]-> {self.target}"


class LineageBuild(models.Model):
    """One write of a release's lineage (what the stored ranges are up to date with)."""

    class Mode(models.TextChoices):
        FULL = "full"
        INCREMENTAL = "incremental"

    release_number = models.PositiveIntegerField(unique=True)
    mode = models.CharField(max_length=20, choices=Mode.choices)
    nodes_changed = models.PositiveIntegerField(default=0)
    edges_changed = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-release_number"]
