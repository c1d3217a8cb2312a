"""Proposals API: create, revise, review, comment, check, rebase, merge, close, timeline."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.api.permissions import request_token, require
from registry.models import Proposal, Review
from registry.permissions import principal_for
from registry.roles import Action
from registry.selectors import (
    proposal_checks,
    proposal_comments,
    proposal_get,
    proposal_list,
    proposal_reviews,
    proposal_revisions,
    proposal_timeline,
)
from registry.services.proposal_checks import proposal_checks_rerun
from registry.services.proposals import (
    proposal_close,
    proposal_comment,
    proposal_create,
    proposal_merge,
    proposal_open,
    proposal_overview,
    proposal_rebase,
    proposal_review,
    proposal_update,
)
from semantic.compiler.principal import Principal
from semantic.permissions import checks_visible, timeline_visible


class ProposalSummaryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    state = serializers.CharField()
    author = serializers.CharField(source="author.username")
    revision = serializers.IntegerField()
    base_release = serializers.CharField(source="base_release.name", default=None)
    merged_release = serializers.CharField(source="merged_release.name", default=None)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ReviewOutput(serializers.Serializer):
    id = serializers.IntegerField()
    reviewer = serializers.CharField(source="reviewer.username")
    verdict = serializers.CharField()
    body = serializers.CharField()
    revision = serializers.IntegerField()
    dismissed = serializers.BooleanField()
    certifies = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class CommentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.username")
    body = serializers.CharField()
    revision = serializers.IntegerField()
    definition = serializers.SerializerMethodField()
    field_path = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_definition(self, comment: Any) -> str | None:
        if not comment.definition_kind:
            return None
        return f"{comment.definition_kind}:{comment.definition_name}"


class CheckOutput(serializers.Serializer):
    kind = serializers.CharField()
    revision = serializers.IntegerField()
    status = serializers.CharField()
    summary = serializers.CharField()
    details = serializers.JSONField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()


class ChangeOutput(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    action = serializers.CharField()
    level = serializers.CharField(allow_null=True)
    base_version = serializers.CharField(allow_null=True)
    fields = serializers.ListField(child=serializers.DictField())
    spec = serializers.JSONField(allow_null=True)
    file = serializers.CharField()
    line = serializers.IntegerField()


@extend_schema_serializer(component_name="ProposalDetail")
class ProposalDetailOutput(serializers.Serializer):
    proposal = ProposalSummaryOutput()
    description = serializers.CharField(source="proposal.description")
    merged_by = serializers.CharField(source="proposal.merged_by.username", default=None)
    merged_at = serializers.DateTimeField(source="proposal.merged_at")
    changes = ChangeOutput(many=True)
    checks = CheckOutput(many=True)
    reviews = ReviewOutput(many=True)
    comments = CommentOutput(many=True)
    policy = serializers.JSONField()
    blockers = serializers.ListField(child=serializers.DictField())
    mergeable = serializers.BooleanField()


def _principal(request: Request) -> Principal:
    return principal_for(request.user, token=request_token(request))


def _detail(proposal: Proposal, request: Request, status: int = 200) -> Response:
    overview = proposal_overview(proposal=proposal)
    # The numbers diff holds stored totals over every tenant: shown as the caller may read them.
    overview["checks"] = checks_visible(overview["checks"], principal=_principal(request))
    return Response(ProposalDetailOutput(overview).data, status=status)


class FilesInput(serializers.Serializer):
    files = serializers.DictField(
        child=serializers.CharField(allow_blank=False, trim_whitespace=False),
        required=False,
        default=dict,
        help_text="file name → YAML text (dbt Semantic Layer or ODCS)",
    )
    retire = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text="kind:name"
    )


class ProposalListApi(APIView):
    access = {"GET": Action.READ, "POST": Action.PROPOSE}

    @extend_schema_serializer(component_name="ProposalFilter")
    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=Proposal.State.values, required=False)
        author = serializers.CharField(required=False)

    @extend_schema_serializer(component_name="ProposalCreateInput")
    class InputSerializer(FilesInput):
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, default="", allow_blank=True)
        draft = serializers.BooleanField(required=False, default=False)

    @extend_schema(parameters=[FilterSerializer], responses=ProposalSummaryOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(
            proposal_list(**filters.validated_data), request, view=self
        )
        return paginator.get_paginated_response(ProposalSummaryOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ProposalDetailOutput})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        args = data.validated_data
        proposal = proposal_create(
            acting_user=request.user,
            title=args["title"],
            description=args["description"],
            files=args["files"],
            retire=args["retire"],
            open_now=not args["draft"],
        )
        return _detail(proposal, request, status=201)


class ProposalDetailApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema(responses=ProposalDetailOutput)
    def get(self, request: Request, proposal_id: int) -> Response:
        return _detail(proposal_get(proposal_id=proposal_id), request)


class RevisionChangeOutput(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    spec = serializers.JSONField(allow_null=True)
    file = serializers.CharField(source="source_file")
    line = serializers.IntegerField(source="source_line")


class ProposalRevisionOutput(serializers.Serializer):
    revision = serializers.IntegerField()
    changes = RevisionChangeOutput(many=True)


class ProposalRevisionsApi(APIView):
    access = {"GET": Action.READ, "POST": Action.PROPOSE}

    @extend_schema_serializer(component_name="ProposalRevisionInput")
    class InputSerializer(FilesInput):
        replace = serializers.BooleanField(required=False, default=False)

    @extend_schema(responses=ProposalRevisionOutput(many=True))
    def get(self, request: Request, proposal_id: int) -> Response:
        revisions = proposal_revisions(proposal=proposal_get(proposal_id=proposal_id))
        rows = [{"revision": n, "changes": changes} for n, changes in revisions.items()]
        return Response(ProposalRevisionOutput(rows, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ProposalDetailOutput})
    def post(self, request: Request, proposal_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = proposal_update(
            proposal=proposal_get(proposal_id=proposal_id),
            acting_user=request.user,
            **data.validated_data,
        )
        return _detail(proposal, request, status=201)


class ProposalReviewsApi(APIView):
    access = {"GET": Action.READ, "POST": Action.REVIEW}

    @extend_schema_serializer(component_name="ProposalReviewInput")
    class InputSerializer(serializers.Serializer):
        verdict = serializers.ChoiceField(choices=Review.Verdict.values)
        body = serializers.CharField(required=False, default="", allow_blank=True)

    @extend_schema(responses=ReviewOutput(many=True))
    def get(self, request: Request, proposal_id: int) -> Response:
        reviews = proposal_reviews(proposal=proposal_get(proposal_id=proposal_id))
        return Response(ReviewOutput(reviews, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ReviewOutput})
    def post(self, request: Request, proposal_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = proposal_get(proposal_id=proposal_id)
        require(request, Action.REVIEW, proposal)
        review = proposal_review(
            proposal=proposal,
            acting_user=request.user,
            **data.validated_data,
        )
        return Response(ReviewOutput(review).data, status=201)


class ProposalCommentsApi(APIView):
    access = {"GET": Action.READ, "POST": Action.COMMENT}

    @extend_schema_serializer(component_name="ProposalCommentInput")
    class InputSerializer(serializers.Serializer):
        body = serializers.CharField()
        definition = serializers.CharField(
            required=False, default="", allow_blank=True, help_text="kind:name of a change"
        )
        field_path = serializers.CharField(
            required=False, default="", allow_blank=True, help_text="e.g. type_params.measure"
        )

    @extend_schema(responses=CommentOutput(many=True))
    def get(self, request: Request, proposal_id: int) -> Response:
        comments = proposal_comments(proposal=proposal_get(proposal_id=proposal_id))
        return Response(CommentOutput(comments, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: CommentOutput})
    def post(self, request: Request, proposal_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        comment = proposal_comment(
            proposal=proposal_get(proposal_id=proposal_id),
            acting_user=request.user,
            **data.validated_data,
        )
        return Response(CommentOutput(comment).data, status=201)


class ProposalChecksApi(APIView):
    access = {"GET": Action.READ, "POST": Action.PROPOSE}

    @extend_schema_serializer(component_name="ProposalCheckFilter")
    class FilterSerializer(serializers.Serializer):
        revision = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(parameters=[FilterSerializer], responses=CheckOutput(many=True))
    def get(self, request: Request, proposal_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        checks = proposal_checks(
            proposal=proposal_get(proposal_id=proposal_id),
            revision=filters.validated_data.get("revision"),
        )
        checks = checks_visible(checks, principal=_principal(request))
        return Response(CheckOutput(checks, many=True).data)

    @extend_schema(request=None, responses={202: CheckOutput(many=True)})
    def post(self, request: Request, proposal_id: int) -> Response:
        checks = proposal_checks_rerun(
            proposal=proposal_get(proposal_id=proposal_id), acting_user=request.user
        )
        return Response(CheckOutput(checks, many=True).data, status=202)


class ProposalOpenApi(APIView):
    access = {"POST": Action.PROPOSE}

    @extend_schema(request=None, responses=ProposalDetailOutput)
    def post(self, request: Request, proposal_id: int) -> Response:
        proposal = proposal_open(
            proposal=proposal_get(proposal_id=proposal_id), acting_user=request.user
        )
        return _detail(proposal, request)


class ProposalMergeApi(APIView):
    access = {"POST": Action.MERGE}

    @extend_schema(request=None, responses=ProposalDetailOutput)
    def post(self, request: Request, proposal_id: int) -> Response:
        proposal = proposal_get(proposal_id=proposal_id)
        require(request, Action.MERGE, proposal)
        proposal = proposal_merge(proposal=proposal, acting_user=request.user)
        return _detail(proposal, request)


class ProposalCloseApi(APIView):
    access = {"POST": Action.PROPOSE}

    @extend_schema_serializer(component_name="ProposalCloseInput")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, default="", allow_blank=True)

    @extend_schema(request=InputSerializer, responses=ProposalDetailOutput)
    def post(self, request: Request, proposal_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = proposal_close(
            proposal=proposal_get(proposal_id=proposal_id),
            acting_user=request.user,
            **data.validated_data,
        )
        return _detail(proposal, request)


class ProposalRebaseApi(APIView):
    access = {"POST": Action.PROPOSE}

    @extend_schema(request=None, responses=ProposalDetailOutput)
    def post(self, request: Request, proposal_id: int) -> Response:
        proposal = proposal_rebase(
            proposal=proposal_get(proposal_id=proposal_id), acting_user=request.user
        )
        return _detail(proposal, request)


class TimelineOutput(serializers.Serializer):
    at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor.username", default=None)
    action = serializers.CharField()
    release = serializers.CharField(source="release.name", default=None)
    payload = serializers.JSONField()


class ProposalTimelineApi(APIView):
    access = {"GET": Action.READ}

    @extend_schema(responses=TimelineOutput(many=True))
    def get(self, request: Request, proposal_id: int) -> Response:
        events = proposal_timeline(proposal=proposal_get(proposal_id=proposal_id))
        # A numbers check's summary follows the check's visibility (who could run it).
        events = timeline_visible(events, principal=_principal(request))
        return Response(TimelineOutput(events, many=True).data)
