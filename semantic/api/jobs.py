"""HTTP for compute runs and stored values: /api/v1/runs, /api/v1/values, revisions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.api.permissions import request_token
from registry.permissions import principal_for
from registry.roles import Action
from semantic.jobs.compute import compute_run_create
from semantic.jobs.selectors import (
    audit_result_list,
    revisions_for_value,
    run_get,
    run_list,
    value_list,
)
from semantic.models import GRAIN_CHOICES, AuditResult, ComputeRun, MetricValue
from semantic.permissions import (
    MSG_AUDIT_HIDDEN,
    audit_results_visible,
    stored_values_hidden,
    stored_values_require,
)
from tally.errors import NotFound

GRAINS = [g for g, _ in GRAIN_CHOICES]


@extend_schema_serializer(component_name="ComputeRun")
class RunOutput(serializers.ModelSerializer):
    release = serializers.CharField(source="release.name")
    progress = serializers.FloatField()

    class Meta:
        model = ComputeRun
        exclude = ["lease_expires_at", "created_by"]


@extend_schema_serializer(component_name="MetricValue")
class ValueOutput(serializers.ModelSerializer):
    metric_version = serializers.CharField(source="metric_version.semver")
    release = serializers.CharField(source="release.name")

    class Meta:
        model = MetricValue
        fields = ["id", "metric_name", "metric_version", "release", "grain", "period_start",
                  "slice", "slice_hash", "value", "run", "computed_at", "revision_count"]  # fmt: skip


class ValueRevisionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    old_value = serializers.CharField(allow_null=True)
    new_value = serializers.CharField(allow_null=True)
    old_run = serializers.IntegerField(source="old_run_id")
    run = serializers.IntegerField(source="run_id")
    old_metric_version = serializers.CharField(source="old_metric_version.semver")
    new_metric_version = serializers.CharField(source="new_metric_version.semver")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class RunListApi(APIView):
    access = {"GET": Action.VIEW_VALUES, "POST": Action.COMPUTE}

    @extend_schema_serializer(component_name="RunFilter")
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=ComputeRun.Status.values, required=False)
        metric = serializers.CharField(required=False, max_length=255)

    @extend_schema_serializer(component_name="RunCreate")
    class InputSerializer(serializers.Serializer):
        metrics = serializers.ListField(
            child=serializers.CharField(max_length=255), min_length=1, max_length=100
        )
        grain = serializers.ChoiceField(choices=GRAINS, default="day")
        start = serializers.DateField(required=False, allow_null=True)
        end = serializers.DateField(required=False, allow_null=True)
        slices = serializers.ListField(
            child=serializers.CharField(max_length=255), max_length=10, default=list
        )
        release = serializers.CharField(required=False, allow_null=True, max_length=40)

    @extend_schema(parameters=[FilterSerializer], responses=RunOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(run_list(**filters.validated_data), request, view=self)
        return paginator.get_paginated_response(RunOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={202: RunOutput})
    def post(self, request: Request) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run = compute_run_create(
            metrics=data["metrics"],
            grain=data["grain"],
            start=data.get("start"),
            end=data.get("end"),
            slices=data["slices"],
            release_ref=data.get("release"),
            acting_user=request.user,
        )
        return Response(RunOutput(run_get(run_id=run.pk)).data, status=status.HTTP_202_ACCEPTED)


class RunDetailApi(APIView):
    access = {"GET": Action.VIEW_VALUES}

    @extend_schema(responses=RunOutput)
    def get(self, request: Request, run_id: int) -> Response:
        run = run_get(run_id=run_id)
        if run is None:
            raise NotFound(f"no compute run {run_id}", code="run_not_found")
        return Response(RunOutput(run).data)


class ValueListApi(APIView):
    access = {"GET": Action.VIEW_VALUES}

    @extend_schema_serializer(component_name="ValueFilter")
    class FilterSerializer(serializers.Serializer):
        metric = serializers.ListField(
            child=serializers.CharField(max_length=255), required=False, default=list
        )
        grain = serializers.ChoiceField(choices=GRAINS, required=False)
        start = serializers.DateField(required=False)
        end = serializers.DateField(required=False)
        slice_hash = serializers.CharField(required=False, max_length=64)

    @extend_schema(parameters=[FilterSerializer], responses=ValueOutput(many=True))
    def get(self, request: Request) -> Response:
        params = {
            **request.query_params.dict(),
            "metric": [m for v in request.query_params.getlist("metric") for m in v.split(",")],
        }
        filters = self.FilterSerializer(data=params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        principal = principal_for(request.user, token=request_token(request))
        # Named metrics are refused with the reason; an unfiltered list leaves them out.
        stored_values_require(principal=principal, metrics=data["metric"])
        values = value_list(
            metrics=data["metric"],
            exclude_metrics=stored_values_hidden(principal=principal),
            grain=data.get("grain"),
            start=data.get("start"),
            end=data.get("end"),
            slice_hash=data.get("slice_hash"),
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(values, request, view=self)
        return paginator.get_paginated_response(ValueOutput(page, many=True).data)


class ValueRevisionListApi(APIView):
    access = {"GET": Action.VIEW_VALUES}

    @extend_schema(responses=ValueRevisionOutput(many=True))
    def get(self, request: Request, value_id: int) -> Response:
        value = MetricValue.objects.filter(pk=value_id).select_related("release").first()
        if value is None:
            raise NotFound(f"no stored value {value_id}", code="value_not_found")
        stored_values_require(
            principal=principal_for(request.user, token=request_token(request)),
            metrics=[value.metric_name],
            release=value.release,
        )
        revisions = revisions_for_value(value_id=value_id)
        return Response({"results": ValueRevisionOutput(revisions, many=True).data})


@extend_schema_serializer(component_name="AuditResult")
class AuditOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditResult
        fields = ["id", "batch", "check_name", "target", "severity", "status", "message",
                  "observed", "expected", "evidence_sql", "owner", "created_at"]  # fmt: skip


class AuditListApi(APIView):
    access = {"GET": Action.VIEW_VALUES}

    @extend_schema_serializer(component_name="AuditFilter")
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=AuditResult.Status.values, required=False)
        check_name = serializers.CharField(required=False, max_length=40)

    @extend_schema(parameters=[FilterSerializer], responses=AuditOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = LimitOffsetPagination()
        # Value checks carry the observed value: hidden with the stored values themselves.
        principal = principal_for(request.user, token=request_token(request))
        hidden = stored_values_hidden(principal=principal)
        page = paginator.paginate_queryset(
            audit_result_list(**filters.validated_data, exclude_metrics=hidden), request, view=self
        )
        # Contract findings measured over every tenant: observed values hidden, counted.
        shown = audit_results_visible(page or [], principal=principal)
        response = paginator.get_paginated_response(AuditOutput(shown, many=True).data)
        masked = sum(1 for r in shown if getattr(r, "hidden_reason", None))
        if masked:
            response.data["hidden"] = {"count": masked, "reason": MSG_AUDIT_HIDDEN}
        return response
