from __future__ import annotations

from django.urls import path

from semantic.api import jobs, views

urlpatterns = [
    path("compile", views.CompileApi.as_view(), name="compile"),
    path("query", views.QueryApi.as_view(), name="query"),
    path("time-spine", views.TimeSpineApi.as_view(), name="time-spine"),
    path("runs", jobs.RunListApi.as_view(), name="runs"),
    path("runs/<int:run_id>", jobs.RunDetailApi.as_view(), name="run-detail"),
    path("values", jobs.ValueListApi.as_view(), name="values"),
    path("audits", jobs.AuditListApi.as_view(), name="audits"),
    path(
        "values/<int:value_id>/revisions",
        jobs.ValueRevisionListApi.as_view(),
        name="value-revisions",
    ),
    path(
        "metrics/<str:name>/dimensions",
        views.MetricDimensionsApi.as_view(),
        name="metric-dimensions",
    ),
    path(
        "metrics/<str:name>/dimensions/<str:dimension>/values",
        views.DimensionValuesApi.as_view(),
        name="metric-dimension-values",
    ),
]
