"""The API's ``Authorization: Token <key>``, against ApiToken (apart from the views: DRF imports
its authentication classes while it loads ``rest_framework.views``)."""

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .models import ApiToken


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication; an expired or revoked token is refused with why, and deleted."""

    model = ApiToken

    def authenticate_credentials(self, key):
        token = ApiToken.presented(key)
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if reason := token.refusal():
            token.delete()
            raise AuthenticationFailed(reason)
        return token.user, token
