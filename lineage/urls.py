"""Web UI routes of lineage: the explorer and the impact view."""

from __future__ import annotations

from django.urls import path

from lineage import views

urlpatterns = [
    path("lineage", views.lineage, name="lineage"),
    path("lineage/impact", views.lineage_impact, name="lineage-impact"),
    path("lineage/nodes", views.lineage_nodes, name="lineage-nodes"),
]
