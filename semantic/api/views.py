from __future__ import annotations

import itertools
from typing import Any

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import renderers, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from registry.api.permissions import request_token
from registry.permissions import principal_for
from registry.roles import Action
from registry.selectors import release_get
from semantic.answers import json_bytes, value_plain
from semantic.audited import metric_query_compile, metric_query_run
from semantic.compiler.api import queryable_items
from semantic.compiler.dimension_values import DEFAULT_LIMIT as VALUES_DEFAULT_LIMIT
from semantic.compiler.dimension_values import MAX_LIMIT as VALUES_MAX_LIMIT
from semantic.compiler.dimension_values import MAX_SEARCH as VALUES_MAX_SEARCH
from semantic.compiler.principal import Principal
from semantic.compiler.spec import DIALECTS, MAX_LIMIT, MetricQuery
from semantic.dimension_values import dimension_values
from semantic.query_bounds import MAX_FILTER_CHARS, MAX_ITEMS, query_input_bounds
from semantic.services import QueryAnswer, manifest_for_release, saved_query_apply
from semantic.streams import ARROW_MEDIA_TYPE, arrow_response_chunks
from semantic.time_spine import TimeSpineStatus, time_spine_refresh, time_spine_status


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
    # Conditions on the output columns, after aggregation (semantic.compiler.having).
    having = serializers.ListField(
        child=serializers.CharField(max_length=MAX_FILTER_CHARS),
        max_length=MAX_ITEMS,
        default=list,
        help_text="conditions on the query's output columns (metrics, group-by items), "
        'applied after aggregation, e.g. "revenue > 1000"',
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
    # MetricFlow's options of a query without metrics (semantic.compiler.spec).
    min_max_only = serializers.BooleanField(default=False)
    apply_group_by = serializers.BooleanField(default=True)

    def to_internal_value(self, data: Any) -> Any:
        query_input_bounds(data)
        return super().to_internal_value(data)


def _query(data: dict[str, Any], dialect: str) -> MetricQuery:
    return MetricQuery(
        metrics=tuple(data["metrics"]),
        group_by=tuple(data["group_by"]),
        where=tuple(data["where"]),
        having=tuple(data["having"]),
        start_time=data.get("start_time"),
        end_time=data.get("end_time"),
        order_by=tuple(data["order_by"]),
        limit=data.get("limit"),
        dialect=dialect,
        min_max_only=data.get("min_max_only", False),
        apply_group_by=data.get("apply_group_by", True),
    )


def _with_saved(data: dict[str, Any], query: MetricQuery) -> MetricQuery:
    if data.get("saved_query"):
        return saved_query_apply(
            name=data["saved_query"], query=query, release_ref=data.get("release")
        )
    return query


class CompileApi(APIView):
    access = {"POST": Action.COMPILE}
    throttle_scope = "compile"

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
        compiled = metric_query_compile(
            query=query,
            release_ref=data.get("release"),
            principal=principal_for(request.user, token=request_token(request)),
            acting_user=request.user,
        )
        return Response(self.OutputSerializer(compiled).data)


class ArrowStreamRenderer(renderers.BaseRenderer):
    """Lets content negotiation pick ``?format=arrow`` / ``Accept: …arrow.stream``; the view
    streams the body itself (a StreamingHttpResponse never reaches a renderer)."""

    media_type = ARROW_MEDIA_TYPE
    format = "arrow"
    charset = None
    render_style = "binary"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        # Only errors are rendered here; they go out as JSON.
        return renderers.JSONRenderer().render(data)


class QueryApi(APIView):
    access = {"POST": Action.QUERY}
    throttle_scope = "query"
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, ArrowStreamRenderer]

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
        principal = principal_for(request.user, token=request_token(request))
        if request.accepted_renderer.format == "arrow":
            return _arrow_response(query, data.get("release"), principal, request)
        answer = metric_query_run(
            query=query,
            release_ref=data.get("release"),
            principal=principal,
            acting_user=request.user,
            row_cap=settings.TALLY_QUERY_ROW_CAP,
        )
        if request.accepted_renderer.format == "json":
            return _json_answer(answer)
        payload = {
            "columns": list(answer.columns),
            "rows": [[value_plain(v) for v in row] for row in answer.rows],
            "sql": answer.compiled.sql,
            "release": answer.compiled.release,
            "versions": answer.compiled.versions,
            "truncated": answer.truncated,
        }
        return Response(self.OutputSerializer(payload).data)


def _json_answer(answer: QueryAnswer) -> HttpResponse:
    # The body the JSON renderer would write for OutputSerializer, with the rows spliced in
    # as the result cache keeps them encoded: a cached answer is neither decoded nor
    # encoded again (tests/semantic/test_result_cache_paths.py checks the bytes).
    parts = (
        b'{"columns":', json_bytes([str(c) for c in answer.columns]),
        b',"rows":', answer.rows_json(),
        b',"sql":', json_bytes(answer.compiled.sql),
        b',"release":', json_bytes(answer.compiled.release),
        b',"versions":', json_bytes({k: str(v) for k, v in answer.compiled.versions.items()}),
        b',"truncated":', json_bytes(bool(answer.truncated)), b"}",
    )  # fmt: skip
    return HttpResponse(b"".join(parts), content_type="application/json")


def _arrow_response(
    query: MetricQuery, release: str | None, principal: Principal, request: Request
) -> Any:
    body = arrow_response_chunks(
        query=query,
        principal=principal,
        acting_user=request.user,
        release_ref=release,
        row_cap=settings.TALLY_QUERY_STREAM_ROW_CAP,
        timeout_s=settings.TALLY_COMPUTE_TIMEOUT_S,
    )
    # Compile and start the query now, so that a bad query or a warehouse error is still an
    # ordinary 400/502 JSON answer; only rows are streamed.
    first = next(body)
    response = StreamingHttpResponse(itertools.chain([first], body), content_type=ARROW_MEDIA_TYPE)
    response["Cache-Control"] = "no-store"
    return response


class MetricDimensionsApi(APIView):
    access = {"GET": Action.READ}

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


class DimensionValuesApi(APIView):
    """Distinct values of a dimension on the rows a metric reads, for the caller (row
    policies and masks apply), searched and limited: what a filter dropdown asks for."""

    access = {"GET": Action.QUERY}
    throttle_scope = "query"

    class InputSerializer(serializers.Serializer):
        search = serializers.CharField(
            required=False, allow_blank=True, max_length=VALUES_MAX_SEARCH, trim_whitespace=False
        )
        limit = serializers.IntegerField(
            required=False, min_value=0, max_value=VALUES_MAX_LIMIT, default=VALUES_DEFAULT_LIMIT
        )
        release = serializers.CharField(required=False, max_length=40)

    @extend_schema_serializer(component_name="DimensionValues")
    class OutputSerializer(serializers.Serializer):
        metric = serializers.CharField()
        dimension = serializers.CharField()
        values = serializers.ListField(child=serializers.JSONField(), allow_empty=True)
        truncated = serializers.BooleanField()
        sql = serializers.CharField()
        release = serializers.CharField()
        versions = serializers.DictField(child=serializers.CharField())

    @extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="case-insensitive substring"),
            OpenApiParameter(
                "limit", int, description=f"at most this many values (0 to {VALUES_MAX_LIMIT:,})"
            ),
            OpenApiParameter("release", str, description="release name (default: latest)"),
        ],
        responses=OutputSerializer,
    )
    def get(self, request: Request, name: str, dimension: str) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        answer = dimension_values(
            principal=principal_for(request.user, token=request_token(request)),
            dimension=dimension,
            metrics=(name,),
            search=data.get("search") or None,
            limit=data["limit"],
            release=data.get("release"),
            acting_user=request.user,
        )
        payload = {
            "metric": name,
            "dimension": answer.dimension,
            "values": [value_plain(v) for v in answer.values],
            "truncated": answer.truncated,
            "sql": answer.sql,
            "release": answer.release,
            "versions": answer.versions,
        }
        return Response(self.OutputSerializer(payload).data)


class TimeSpineApi(APIView):
    """GET reports the release's time spine; POST builds or refreshes Tally's own (staff)."""

    # Anyone who reads definitions may see the status; rewriting a warehouse table is compute.
    access = {"GET": Action.READ, "POST": Action.COMPUTE}

    @extend_schema_serializer(component_name="TimeSpineRefreshInput")
    class InputSerializer(serializers.Serializer):
        start = serializers.DateField(required=False, allow_null=True)
        end = serializers.DateField(required=False, allow_null=True)
        release = serializers.CharField(required=False, allow_null=True, max_length=40)

    @extend_schema_serializer(component_name="TimeSpineStatus")
    class OutputSerializer(serializers.Serializer):
        release = serializers.CharField()
        table = serializers.CharField()
        column = serializers.CharField()
        grain = serializers.CharField()
        managed = serializers.BooleanField(help_text="Tally's own spine (no dbt time_spine)")
        exists = serializers.BooleanField()
        start = serializers.DateField(allow_null=True)
        end = serializers.DateField(allow_null=True)
        rows = serializers.IntegerField()
        comment = serializers.CharField(allow_null=True)
        data_start = serializers.DateField(allow_null=True)
        data_end = serializers.DateField(allow_null=True)
        covers_data = serializers.BooleanField()
        planned_start = serializers.DateField(allow_null=True)
        planned_end = serializers.DateField(allow_null=True)
        planned_from = serializers.CharField()
        warnings = serializers.ListField(child=serializers.CharField())

    @staticmethod
    def _body(status: TimeSpineStatus) -> dict[str, Any]:
        spine = status.spine
        return {
            "release": status.release,
            "table": status.table,
            "column": status.column,
            "grain": status.grain,
            "managed": status.managed,
            "exists": spine.exists,
            "start": spine.start,
            "end": spine.end,
            "rows": spine.rows,
            "comment": spine.comment,
            "data_start": status.data.start if status.data else None,
            "data_end": status.data.end if status.data else None,
            "covers_data": status.covers_data,
            "planned_start": status.planned.start if status.planned else None,
            "planned_end": status.planned.end if status.planned else None,
            "planned_from": status.planned_from,
            "warnings": list(status.warnings),
        }

    @extend_schema(
        parameters=[OpenApiParameter("release", str, description="rN or latest (default)")],
        responses=OutputSerializer,
    )
    def get(self, request: Request) -> Response:
        status = time_spine_status(release_ref=request.query_params.get("release"))
        return Response(self.OutputSerializer(self._body(status)).data)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        status = time_spine_refresh(
            start=data.get("start"), end=data.get("end"), release_ref=data.get("release")
        )
        return Response(self.OutputSerializer(self._body(status)).data)
