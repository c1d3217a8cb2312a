"""Access control API: /me, /tokens, /roles, /audit-log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.access_selectors import audit_event_list, role_grant_list, token_list
from registry.api.permissions import SIGNED_IN, request_token
from registry.permissions import principal_for, user_actions, user_can, user_grants
from registry.roles import Action, Role, Scope
from registry.services.access import (
    parse_attributes,
    parse_duration,
    role_grant,
    role_revoke,
    token_create,
    token_get_visible,
    token_revoke,
    user_get,
)
from semantic.permissions import timeline_visible
from tally.errors import PermissionDenied

NO_TOKEN_MINTING = "an API token cannot manage tokens"


def _session_only(request: Request) -> None:
    # A leaked token must not be able to mint longer-lived or wider tokens.
    if request_token(request) is not None:
        raise PermissionDenied(
            NO_TOKEN_MINTING, code="forbidden", hint="sign in (session) or use `tally token`"
        )


@extend_schema_serializer(component_name="ApiToken")
class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    prefix = serializers.CharField()
    name = serializers.CharField()
    user = serializers.CharField(source="user.username")
    service = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    tenant = serializers.CharField()
    attributes = serializers.JSONField()
    created_by = serializers.CharField(source="created_by.username", default=None)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class MeApi(APIView):
    access = {"GET": SIGNED_IN}

    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())
        actions = serializers.ListField(child=serializers.CharField())
        token = TokenOutput(allow_null=True)
        principal = serializers.JSONField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        token = request_token(request)
        principal = principal_for(request.user, token=token)
        body = {
            "username": request.user.username,
            "roles": user_grants(request.user).labels() if not (token and token.service) else [],
            "actions": sorted(a.value for a in user_actions(request.user, token=token)),
            "token": token,
            "principal": {
                "name": principal.name,
                "attributes": dict(principal.attributes),
                "view_pii": principal.view_pii,
                "unrestricted": principal.unrestricted,
            },
        }
        return Response(self.OutputSerializer(body).data)


class TokenListApi(APIView):
    access = {"GET": SIGNED_IN, "POST": SIGNED_IN}

    @extend_schema_serializer(component_name="TokenFilter")
    class FilterSerializer(serializers.Serializer):
        all = serializers.BooleanField(required=False, default=False, help_text="every user's")
        include_revoked = serializers.BooleanField(required=False, default=False)

    @extend_schema_serializer(component_name="TokenCreateInput")
    class InputSerializer(serializers.Serializer):
        scopes = serializers.ListField(
            child=serializers.ChoiceField(choices=[s.value for s in Scope]),
            min_length=1,
            max_length=len(Scope),
        )
        name = serializers.CharField(required=False, max_length=100)
        user = serializers.CharField(required=False, max_length=150, help_text="default: you")
        service = serializers.CharField(required=False, max_length=100)
        expires = serializers.CharField(required=False, max_length=10, help_text="30d, 12h, 2w")
        tenant = serializers.CharField(required=False, max_length=100, default="")
        attributes = serializers.ListField(
            child=serializers.CharField(max_length=500),
            required=False,
            default=list,
            max_length=50,
            help_text='["regions=EU,US"]',
        )

    @extend_schema_serializer(component_name="TokenCreated")
    class CreatedSerializer(TokenOutput):
        token = serializers.CharField(help_text="the raw token: shown once, never again")

    @extend_schema(parameters=[FilterSerializer], responses=TokenOutput(many=True))
    def get(self, request: Request) -> Response:
        _session_only(request)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        everyone = params.validated_data["all"] and user_can(request.user, Action.MANAGE_TOKENS)
        tokens = token_list(
            user=None if everyone else request.user,
            include_revoked=params.validated_data["include_revoked"],
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(tokens, request, view=self)
        return paginator.get_paginated_response(TokenOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer})
    def post(self, request: Request) -> Response:
        _session_only(request)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        service = data.get("service") or None
        user = None
        if not service:
            user = user_get(data["user"]) if data.get("user") else request.user
        created = token_create(
            acting_user=request.user,
            scopes=data["scopes"],
            user=user,
            service=service,
            name=data.get("name"),
            expires_in=parse_duration(data["expires"]) if data.get("expires") else None,
            tenant=data["tenant"],
            attributes=parse_attributes(data["attributes"], field="attributes"),
        )
        out = {**TokenOutput(created.token).data, "token": created.raw}
        return Response(out, status=201)


class TokenDetailApi(APIView):
    access = {"GET": SIGNED_IN, "DELETE": SIGNED_IN}

    def _get(self, request: Request, token_id: int) -> Any:
        _session_only(request)
        # Someone else's token answers exactly as a missing one does.
        return token_get_visible(ref=token_id, user=request.user)

    @extend_schema(responses=TokenOutput)
    def get(self, request: Request, token_id: int) -> Response:
        return Response(TokenOutput(self._get(request, token_id)).data)

    @extend_schema(responses=TokenOutput)
    def delete(self, request: Request, token_id: int) -> Response:
        token = token_revoke(token=self._get(request, token_id), acting_user=request.user)
        return Response(TokenOutput(token).data)


@extend_schema_serializer(component_name="RoleGrant")
class RoleGrantOutput(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField(source="user.username")
    role = serializers.CharField()
    domain = serializers.CharField(source="domain.slug", default=None)
    granted_by = serializers.CharField(source="granted_by.username", default=None)
    created_at = serializers.DateTimeField()


class RoleListApi(APIView):
    access = {"GET": Action.MANAGE_ROLES, "POST": Action.MANAGE_ROLES}

    @extend_schema_serializer(component_name="RoleFilter")
    class FilterSerializer(serializers.Serializer):
        user = serializers.CharField(required=False, max_length=150)

    @extend_schema_serializer(component_name="RoleGrantInput")
    class InputSerializer(serializers.Serializer):
        user = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=[r.value for r in Role])
        domain = serializers.CharField(required=False, allow_null=True, max_length=100)

    @extend_schema(parameters=[FilterSerializer], responses=RoleGrantOutput(many=True))
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        user = user_get(params.validated_data["user"]) if "user" in params.validated_data else None
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(role_grant_list(user=user), request, view=self)
        return paginator.get_paginated_response(RoleGrantOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: RoleGrantOutput})
    def post(self, request: Request) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        grant = role_grant(
            user=user_get(data["user"]),
            role=data["role"],
            domain=data.get("domain"),
            acting_user=request.user,
        )
        return Response(RoleGrantOutput(grant).data, status=201)


class RoleRevokeApi(APIView):
    access = {"POST": Action.MANAGE_ROLES}

    @extend_schema_serializer(component_name="RoleRevokeOutput")
    class OutputSerializer(serializers.Serializer):
        revoked = serializers.IntegerField()

    @extend_schema(request=RoleListApi.InputSerializer, responses=OutputSerializer)
    def post(self, request: Request) -> Response:
        body = RoleListApi.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        count = role_revoke(
            user=user_get(data["user"]),
            role=data["role"],
            domain=data.get("domain"),
            acting_user=request.user,
        )
        return Response({"revoked": count})


@extend_schema_serializer(component_name="AuditEvent")
class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor.username", default=None)
    principal = serializers.CharField(allow_null=True)
    token = serializers.CharField(source="token.prefix", default=None)
    action = serializers.CharField()
    object_kind = serializers.CharField()
    object_name = serializers.CharField()
    release = serializers.CharField(source="release.name", default=None)
    sql_hash = serializers.CharField(allow_null=True)
    row_count = serializers.IntegerField(allow_null=True)
    ip = serializers.CharField(allow_null=True)
    payload = serializers.JSONField()


class AuditLogApi(APIView):
    access = {"GET": Action.VIEW_AUDIT_LOG}

    @extend_schema_serializer(component_name="AuditLogFilter")
    class FilterSerializer(serializers.Serializer):
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)
        action = serializers.CharField(
            required=False, max_length=60, help_text="query.run, or a family: proposal."
        )
        actor = serializers.CharField(required=False, max_length=150)
        object_kind = serializers.CharField(required=False, max_length=30)
        object_name = serializers.CharField(required=False, max_length=255)
        token = serializers.CharField(required=False, max_length=16, help_text="token prefix")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            since: dt.datetime | None = attrs.get("since")
            until: dt.datetime | None = attrs.get("until")
            if since and until and until <= since:
                raise serializers.ValidationError({"until": "must be after since"})
            return attrs

    @extend_schema(parameters=[FilterSerializer], responses=AuditEventOutput(many=True))
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(
            audit_event_list(**params.validated_data), request, view=self
        )
        # Numbers-check summaries follow the checks' visibility (a tenant-bound token).
        page = timeline_visible(
            page or [], principal=principal_for(request.user, token=request_token(request))
        )
        return paginator.get_paginated_response(AuditEventOutput(page, many=True).data)
