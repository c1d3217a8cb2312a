from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.selectors import release_get
from semantic.compiler.compile import queryable_items
from semantic.compiler.spec import DIALECTS, MAX_LIMIT, MetricQuery
from semantic.services import (
    compile_metric_query,
    manifest_for_release,
    query_execute,
    saved_query_apply,
)

MAX_ITEMS = 100
MAX_FILTER_CHARS = 10_000


@extend_schema_serializer(component_name="MetricQueryInput")
class MetricQueryInput(serializers.Serializer):
    metrics = serializers.ListField(
        child=serializers.CharField(max_length=255), max_length=MAX_ITEMS, default=list
    )
    group_by = serializers.ListField(
        child=serializers.CharField(max_length=255), max_length=MAX_ITEMS, default=list
    )
    where = serializers.ListField(
        child=serializers.CharField(max_length=MAX_FILTER_CHARS), max_length=MAX_ITEMS, default=list
    )
    order_by = serializers.ListField(
        child=serializers.CharField(max_length=255), max_length=MAX_ITEMS, default=list
    )
    limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_LIMIT
    )
    start_time = serializers.CharField(required=False, allow_null=True, max_length=40)
    end_time = serializers.CharField(required=False, allow_null=True, max_length=40)
    dialect = serializers.ChoiceField(choices=DIALECTS, required=False, allow_null=True)
    release = serializers.CharField(required=False, allow_null=True, max_length=40)
    saved_query = serializers.CharField(required=False, allow_null=True, max_length=255)


def _query(data: dict[str, Any], dialect: str) -> MetricQuery:
    return MetricQuery(
        metrics=tuple(data["metrics"]),
        group_by=tuple(data["group_by"]),
        where=tuple(data["where"]),
        start_time=data.get("start_time"),
        end_time=data.get("end_time"),
        order_by=tuple(data["order_by"]),
        limit=data.get("limit"),
        dialect=dialect,
    )


def _with_saved(data: dict[str, Any], query: MetricQuery) -> MetricQuery:
    if data.get("saved_query"):
        return saved_query_apply(
            name=data["saved_query"], query=query, release_ref=data.get("release")
        )
    return query


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


class CompileApi(APIView):
    @extend_schema_serializer(component_name="CompileOutput")
    class OutputSerializer(serializers.Serializer):
        sql = serializers.CharField()
        dialect = serializers.CharField()
        columns = serializers.ListField(child=serializers.CharField())
        release = serializers.CharField()
        versions = serializers.DictField(child=serializers.CharField())

    @extend_schema(request=MetricQueryInput, responses=OutputSerializer)
    def post(self, request: Request) -> Response:
        body = MetricQueryInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        query = _with_saved(data, _query(data, data.get("dialect") or settings.WAREHOUSE.dialect))
        compiled = compile_metric_query(query=query, release_ref=data.get("release"))
        return Response(self.OutputSerializer(compiled).data)


class QueryApi(APIView):
    @extend_schema_serializer(component_name="QueryOutput")
    class OutputSerializer(serializers.Serializer):
        columns = serializers.ListField(child=serializers.CharField())
        rows = serializers.ListField(child=serializers.ListField())
        sql = serializers.CharField()
        release = serializers.CharField()
        versions = serializers.DictField(child=serializers.CharField())
        truncated = serializers.BooleanField()

    @extend_schema(request=MetricQueryInput, responses=OutputSerializer)
    def post(self, request: Request) -> Response:
        body = MetricQueryInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        query = _with_saved(data, _query(data, settings.WAREHOUSE.dialect))
        answer = query_execute(query=query, release_ref=data.get("release"))
        payload = {
            "columns": list(answer.columns),
            "rows": [[_plain(v) for v in row] for row in answer.rows],
            "sql": answer.compiled.sql,
            "release": answer.compiled.release,
            "versions": answer.compiled.versions,
            "truncated": answer.truncated,
        }
        return Response(self.OutputSerializer(payload).data)


class MetricDimensionsApi(APIView):
    @extend_schema_serializer(component_name="MetricDimensions")
    class OutputSerializer(serializers.Serializer):
        metric = serializers.CharField()
        release = serializers.CharField()
        group_by = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, name: str) -> Response:
        release = release_get(request.query_params.get("release"))
        items = queryable_items(manifest_for_release(release), name)
        return Response(
            self.OutputSerializer({"metric": name, "release": release.name, "group_by": items}).data
        )
