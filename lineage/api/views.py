from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lineage.selectors import (
    lineage_impact,
    lineage_influences,
    lineage_node_list,
    lineage_path,
    lineage_upstream,
)
from lineage.trace import value_trace
from registry.api.permissions import request_token
from registry.permissions import access_require, principal_for
from registry.roles import Action
from semantic.compiler.spec import DIALECTS
from tally.throttling import rate_limit_check


class NodeInput(serializers.Serializer):
    node = serializers.CharField(max_length=500)
    release = serializers.CharField(required=False, allow_null=True, max_length=40)


def _input(serializer: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    data = serializer(data=request.query_params)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


class LineageUpstreamApi(APIView):
    access = {"GET": Action.READ}

    class InputSerializer(NodeInput):
        depth = serializers.IntegerField(required=False, min_value=1, max_value=50, default=12)

    @extend_schema(parameters=[InputSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        data = _input(self.InputSerializer, request)
        tree = lineage_upstream(
            node=data["node"], release_ref=data.get("release"), depth=data["depth"]
        )
        return Response(tree.as_dict())


class LineageDownstreamApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema(parameters=[NodeInput], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        data = _input(NodeInput, request)
        return Response(
            lineage_impact(node=data["node"], release_ref=data.get("release")).as_dict()
        )


class LineageInfluencesApi(APIView):
    access = {"GET": Action.READ}

    class InputSerializer(NodeInput):
        direct_only = serializers.BooleanField(required=False, default=False)

    @extend_schema(parameters=[InputSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        data = _input(self.InputSerializer, request)
        columns = lineage_influences(
            node=data["node"], release_ref=data.get("release"), direct_only=data["direct_only"]
        )
        return Response({"node": data["node"], "direct_only": data["direct_only"],
                         "columns": columns})  # fmt: skip


class LineagePathApi(APIView):
    access = {"GET": Action.READ}

    class InputSerializer(serializers.Serializer):
        source = serializers.CharField(max_length=500)
        target = serializers.CharField(max_length=500)
        release = serializers.CharField(required=False, allow_null=True, max_length=40)

    class OutputSerializer(serializers.Serializer):
        node = serializers.CharField()
        edge_type = serializers.CharField(allow_null=True)
        expr = serializers.CharField(allow_blank=True)

    @extend_schema(parameters=[InputSerializer], responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        data = _input(self.InputSerializer, request)
        hops = lineage_path(a=data["source"], b=data["target"], release_ref=data.get("release"))
        return Response({"path": self.OutputSerializer(hops, many=True).data})


class LineageNodeListApi(APIView):
    access = {"GET": Action.READ}

    class InputSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        kind = serializers.ChoiceField(
            required=False,
            default="",
            choices=[
                "", "table", "column", "sql_model", "contract", "contract_column", "semantic_model",
                "entity", "dimension", "measure", "metric", "release",
            ],
        )  # fmt: skip
        release = serializers.CharField(required=False, allow_null=True, max_length=40)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)

    @extend_schema(parameters=[InputSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        data = _input(self.InputSerializer, request)
        nodes = lineage_node_list(
            q=data["q"], kind=data["kind"], release_ref=data.get("release"), limit=data["limit"]
        )
        return Response({"nodes": nodes})


class LineageOpenLineageApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema(parameters=[NodeInput], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        # Imported here: the OpenLineage client loads only when an OpenLineage view is asked.
        from lineage.openlineage import lineage_openlineage

        data = _input(NodeInput, request)
        return Response(lineage_openlineage(node=data["node"], release_ref=data.get("release")))


class ValueTraceApi(APIView):
    class InputSerializer(serializers.Serializer):
        dialect = serializers.ChoiceField(choices=list(DIALECTS), required=False, allow_null=True)
        rows = serializers.IntegerField(required=False, min_value=1, max_value=10_000)

    access = {"GET": Action.VIEW_VALUES}

    @extend_schema(parameters=[InputSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, value_id: int) -> Response:
        data = _input(self.InputSerializer, request)
        token = request_token(request)
        if data.get("rows"):
            # Reading source rows is a query: it needs the query right, and row policies
            # and masks of the caller apply to the drill-down.
            access_require(request.user, Action.QUERY, token=token)
            rate_limit_check(request, "query")  # issue 18: reading rows is a query
        trace = value_trace(
            value_id=value_id,
            dialect=data.get("dialect"),
            rows=data.get("rows"),
            principal=principal_for(request.user, token=token),
        )
        return Response(trace.as_dict())
