from __future__ import annotations

from django.urls import path, re_path

from registry.api import views

COLLECTION = r"(?P<collection>metrics|semantic-models|saved-queries|contracts)"
NAME = r"(?P<name>[A-Za-z0-9_.\-]+)"

urlpatterns = [
    re_path(rf"^{COLLECTION}$", views.DefinitionListApi.as_view(), name="definition-list"),
    re_path(
        rf"^{COLLECTION}/{NAME}$", views.DefinitionDetailApi.as_view(), name="definition-detail"
    ),
    re_path(
        rf"^{COLLECTION}/{NAME}/diff$", views.DefinitionDiffApi.as_view(), name="definition-diff"
    ),
    re_path(
        rf"^{COLLECTION}/{NAME}/versions/(?P<version>[0-9.#]+)$",
        views.DefinitionVersionDetailApi.as_view(),
        name="definition-version",
    ),
    path("releases", views.ReleaseListApi.as_view(), name="release-list"),
    path("releases/<str:ref>", views.ReleaseDetailApi.as_view(), name="release-detail"),
]
