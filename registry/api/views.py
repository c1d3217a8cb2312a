from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.definitions.changes import classify_change
from registry.models import Kind, Status, Tier
from registry.roles import Action
from registry.selectors import (
    definition_get,
    definition_list,
    definition_version_get,
    release_get,
    release_list,
)
from tally.errors import NotFound

# URL segment → definition kind.
KIND_SEGMENTS = {
    "metrics": Kind.METRIC,
    "semantic-models": Kind.SEMANTIC_MODEL,
    "saved-queries": Kind.SAVED_QUERY,
    "contracts": Kind.CONTRACT,
}


# The URL accepts only these segments; saying so in the schema keeps clients (and the
# fuzz test) on real routes.
COLLECTION_PARAM = OpenApiParameter(
    "collection", str, OpenApiParameter.PATH, enum=list(KIND_SEGMENTS)
)


def _kind(segment: str) -> str:
    try:
        return KIND_SEGMENTS[segment]
    except KeyError:
        raise NotFound(f"unknown collection {segment!r}", code="not_found") from None


class VersionOutput(serializers.Serializer):
    version = serializers.CharField(source="semver")
    number = serializers.IntegerField()
    change_kind = serializers.CharField()
    change_summary = serializers.CharField()
    content_hash = serializers.CharField()
    source_file = serializers.CharField()
    source_line = serializers.IntegerField()
    author = serializers.CharField(source="author.username", default=None)
    certified_by = serializers.CharField(source="certified_by.username", default=None)
    certified_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


class DefinitionSummaryOutput(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    type = serializers.CharField(source="metric_type")
    owner = serializers.CharField(source="owner.slug", default=None)
    domain = serializers.CharField(source="domain.slug", default=None)
    tier = serializers.CharField()
    status = serializers.CharField()
    version = serializers.CharField(source="current_version.semver", default=None)
    # Who in data governance certified the current version, and when (null: not certified).
    certified_by = serializers.CharField(source="certified_by.username", default=None)
    certified_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DefinitionListApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema_serializer(component_name="DefinitionFilter")
    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, max_length=200)
        owner = serializers.CharField(required=False)
        domain = serializers.CharField(required=False)
        tier = serializers.ChoiceField(choices=Tier.values, required=False)
        status = serializers.ChoiceField(choices=Status.values, required=False)

    @extend_schema(
        parameters=[
            FilterSerializer,
            COLLECTION_PARAM,
        ],
        responses=DefinitionSummaryOutput(many=True),
    )
    def get(self, request: Request, collection: str) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = definition_list(kind=_kind(collection), **filters.validated_data)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(DefinitionSummaryOutput(page, many=True).data)


class DefinitionDetailApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema_serializer(component_name="DefinitionDetail")
    class OutputSerializer(DefinitionSummaryOutput):
        spec = serializers.JSONField(source="current_version.spec", default=None)
        versions = VersionOutput(many=True)

    @extend_schema(parameters=[COLLECTION_PARAM], responses=OutputSerializer)
    def get(self, request: Request, collection: str, name: str) -> Response:
        definition = definition_get(kind=_kind(collection), name=name)
        return Response(self.OutputSerializer(definition).data)


class DefinitionVersionDetailApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema_serializer(component_name="DefinitionVersionDetail")
    class OutputSerializer(VersionOutput):
        spec = serializers.JSONField()

    @extend_schema(parameters=[COLLECTION_PARAM], responses=OutputSerializer)
    def get(self, request: Request, collection: str, name: str, version: str) -> Response:
        definition = definition_get(kind=_kind(collection), name=name)
        found = definition_version_get(definition=definition, ref=version)
        return Response(self.OutputSerializer(found).data)


class DefinitionDiffApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema_serializer(component_name="DefinitionDiffInput")
    class InputSerializer(serializers.Serializer):
        from_version = serializers.CharField(
            help_text="semver such as 1.0 (default: previous)", required=False
        )
        to_version = serializers.CharField(
            help_text="semver such as 2.1 (default: current)", required=False
        )

    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        from_version = serializers.CharField()
        to_version = serializers.CharField()
        level = serializers.CharField()
        reasons = serializers.ListField(child=serializers.CharField())
        changes = serializers.ListField(child=serializers.DictField())

    OutputSerializer = extend_schema_serializer(component_name="DefinitionDiff")(OutputSerializer)

    @extend_schema(parameters=[InputSerializer, COLLECTION_PARAM], responses=OutputSerializer)
    def get(self, request: Request, collection: str, name: str) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        kind = _kind(collection)
        definition = definition_get(kind=kind, name=name)
        versions = list(definition.versions.all())  # newest first
        to_ref = params.validated_data.get("to_version", versions[0].semver)
        new = definition_version_get(definition=definition, ref=to_ref)
        if "from_version" in params.validated_data:
            old = definition_version_get(
                definition=definition, ref=params.validated_data["from_version"]
            )
        else:
            older = [v for v in versions if v.number < new.number]
            old = older[0] if older else new
        bump = classify_change(kind, old.spec, new.spec)
        body: dict[str, Any] = {
            "name": definition.name,
            "from_version": old.semver,
            "to_version": new.semver,
            "level": bump.level if bump.changes else "none",
            "reasons": list(bump.reasons),
            "changes": [c.as_dict() for c in bump.changes],
        }
        return Response(self.OutputSerializer(body).data)


class ReleaseOutput(serializers.Serializer):
    name = serializers.CharField()
    number = serializers.IntegerField()
    source = serializers.CharField()
    note = serializers.CharField()
    summary = serializers.JSONField()
    created_by = serializers.CharField(source="created_by.username", default=None)
    created_at = serializers.DateTimeField()


class ReleaseListApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema(responses=ReleaseOutput(many=True))
    def get(self, request: Request) -> Response:
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(release_list(), request, view=self)
        return paginator.get_paginated_response(ReleaseOutput(page, many=True).data)


class ReleaseDetailApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema_serializer(component_name="ReleaseDetail")
    class OutputSerializer(ReleaseOutput):
        versions = serializers.SerializerMethodField()

        def get_versions(self, release: Any) -> dict[str, dict[str, str]]:
            out: dict[str, dict[str, str]] = {}
            rows = release.items.values_list(
                "definition__kind", "definition__name", "version__major", "version__minor"
            )
            for kind, name, major, minor in rows.order_by("definition__kind", "definition__name"):
                out.setdefault(kind, {})[name] = f"{major}.{minor}"
            return out

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, ref: str) -> Response:
        return Response(self.OutputSerializer(release_get(ref)).data)
