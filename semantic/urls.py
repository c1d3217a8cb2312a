"""Web UI routes of the semantic layer: explore, metric chart/SQL fragments, runs, audits, values."""

from __future__ import annotations

from django.urls import path, re_path

from semantic import views

NAME = r"(?P<name>[A-Za-z0-9_.\-]+)"

urlpatterns = [
    re_path(rf"^metrics/{NAME}/chart$", views.metric_chart, name="metric-chart"),
    re_path(rf"^metrics/{NAME}/sql$", views.metric_sql, name="metric-sql"),
    re_path(rf"^metrics/{NAME}/recompute$", views.metric_recompute, name="metric-recompute"),
    path("explore", views.explore, name="explore"),
    path("explore/options", views.explore_options, name="explore-options"),
    path("explore/save", views.explore_save, name="explore-save"),
    path("explore.csv", views.explore_csv, name="explore-csv"),
    path("runs", views.run_list, name="run-list"),
    path("runs/<int:run_id>", views.run_detail, name="run-detail"),
    path("audits", views.audit_list, name="audit-list"),
    path("values/<int:value_id>/trace", views.value_trace, name="value-trace"),
]
