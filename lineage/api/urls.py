from __future__ import annotations

from django.urls import path

from lineage.api import views

urlpatterns = [
    path("lineage/upstream", views.LineageUpstreamApi.as_view(), name="lineage-upstream"),
    path("lineage/downstream", views.LineageDownstreamApi.as_view(), name="lineage-downstream"),
    path("lineage/impact", views.LineageDownstreamApi.as_view(), name="lineage-impact"),
    path("lineage/influences", views.LineageInfluencesApi.as_view(), name="lineage-influences"),
    path("lineage/path", views.LineagePathApi.as_view(), name="lineage-path"),
    path("lineage/nodes", views.LineageNodeListApi.as_view(), name="lineage-nodes"),
    path("lineage/openlineage", views.LineageOpenLineageApi.as_view(), name="lineage-openlineage"),
    path("values/<int:value_id>/trace", views.ValueTraceApi.as_view(), name="value-trace"),
]
