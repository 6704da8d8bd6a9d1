"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagepipe.settings")
django_http = get_asgi_application()  # sets Django up before the imports below

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from . import needs  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

needs.require("web")  # in production: SECRET_KEY and the services, or no server at all


# The routes' type: URLRouter's stubs want Channels' own pattern type, which path() can't return.
application = ProtocolTypeRouter(
    {
        "http": django_http,  # /static/ too: WhiteNoise's middleware (settings.py)
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),  # type: ignore[arg-type]
    }
)
