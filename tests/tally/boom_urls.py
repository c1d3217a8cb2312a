"""URLs for tests/tally/test_observability.py: the real URLs plus one API view that fails
with an unexpected exception (a bug stand-in: no real endpoint should ever do it)."""

from __future__ import annotations

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tally.urls import urlpatterns as real_patterns


class BoomApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []
    authentication_classes: list[type] = []

    def get(self, request: Request) -> Response:
        raise ZeroDivisionError("a bug")


urlpatterns = [path("api/v1/boom", BoomApi.as_view()), *real_patterns]
