"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagepipe.settings")
django_http = get_asgi_application()  # sets Django up before the imports below

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.exceptions import SuspiciousFileOperation  # noqa: E402
from django.http import Http404  # noqa: E402

from . import needs  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

needs.require("web")  # in production: SECRET_KEY and the services, or no server at all


class StaticFiles(ASGIStaticFilesHandler):
    """Django's static handler, with a path out of the static folders a 404.

    ``/static/%2e%2e/...`` reaches the finders as ``../...``; their storage refuses it with
    SuspiciousFileOperation, which the handler lets through as a 500 (it only turns Http404).
    """

    def serve(self, request):
        try:
            return super().serve(request)
        except SuspiciousFileOperation:
            raise Http404("no such static file") from None


# The routes' type: URLRouter's stubs want Channels' own pattern type, which path() can't return.
application = ProtocolTypeRouter(
    {
        "http": StaticFiles(django_http) if settings.SERVE_STATIC else django_http,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),  # type: ignore[arg-type]
    }
)
