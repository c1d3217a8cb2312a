from __future__ import annotations

from django.urls import path

from semantic.api import views

urlpatterns = [
    path("compile", views.CompileApi.as_view(), name="compile"),
    path("query", views.QueryApi.as_view(), name="query"),
    path("time-spine", views.TimeSpineApi.as_view(), name="time-spine"),
    path(
        "metrics/<str:name>/dimensions",
        views.MetricDimensionsApi.as_view(),
        name="metric-dimensions",
    ),
]
