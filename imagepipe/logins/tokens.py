"""The API's tokens: issued for a password at ``/api/auth/token/``, revoked there, expiring.

A token lets its user in for API_TOKEN_TTL_HOURS from its issue, while the user is active and
keeps the password they had then; one that no longer does is refused with 401 saying why, and
deleted. Each POST issues a token of its own, so revoking one (DELETE with it) leaves the
user's other clients logged in.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from imagepipe.api_errors import NestingJSONParser, refusal

from .authentication import ExpiringTokenAuthentication
from .models import ApiToken


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="send it as `Authorization: Token <token>`")
    expires = serializers.DateTimeField(help_text="when the token stops working (API_TOKEN_TTL_HOURS)")


class TokenView(APIView):
    """POST a username and password for a new token; DELETE with a token to revoke it."""

    authentication_classes = [ExpiringTokenAuthentication]
    permission_classes: list = []  # POST: the password is the check; DELETE: the token it presents
    parser_classes = [FormParser, MultiPartParser, NestingJSONParser]
    renderer_classes = [JSONRenderer]

    def perform_authentication(self, request):
        """Only when DELETE asks: a login is never refused for a stale token its client still sends."""

    @extend_schema(
        description="A new token for a username and password, and when it expires.",
        auth=[],
        request=AuthTokenSerializer,
        responses={
            200: IssuedTokenSerializer,
            400: refusal("wrong username or password"),
            429: refusal("too many wrong passwords: locked out for Retry-After seconds"),
        },
    )
    def post(self, request):
        credentials = AuthTokenSerializer(data=request.data, context={"request": request})
        credentials.is_valid(raise_exception=True)
        token, key = ApiToken.issue(credentials.validated_data["user"])
        return Response(IssuedTokenSerializer({"token": key, "expires": token.expires}).data)

    @extend_schema(
        description="Revoke the token this request is sent with (no other).",
        request=None,
        responses={204: None, 401: refusal("no token sent, or one that is not valid, expired or revoked")},
    )
    def delete(self, request):
        if not isinstance(request.auth, ApiToken):
            raise NotAuthenticated("Send the token to revoke as Authorization: Token <key>.")
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
