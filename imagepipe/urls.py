from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from imagepipe.logins.tokens import TokenView
from jobs import api as job_api
from jobs import timeline
from jobs import views as job_views
from jobs.api import JobViewSet, UploadViewSet
from system import workers


class Which:
    """The original or the result (a job's pyramids)."""

    regex = "original|result"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class TileFormat(Which):
    regex = "jpg|png"


register_converter(Which, "which")
register_converter(TileFormat, "tile")

router = DefaultRouter(trailing_slash=True)
router.register("jobs", JobViewSet, basename="api-job")
router.register("uploads", UploadViewSet, basename="api-upload")
router.register("workers", workers.WorkerViewSet, basename="api-worker")

# Log in and out, change a password; reset one only with a mail server to send the link
# (EMAIL_HOST), or the page would promise a mail that never comes.
PASSWORD_RESET = {
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
account_urls = [
    pattern
    for pattern in auth_urls.urlpatterns
    if settings.EMAIL_HOST or getattr(pattern, "name", None) not in PASSWORD_RESET
]

urlpatterns = [
    path("", job_views.history, name="history"),
    path("jobs/new/", job_views.submit, name="job-submit"),
    path("jobs/<uuid:job_id>/", job_views.detail, name="job-detail"),
    path("workers/", workers.worker_list, name="worker-list"),
    path("accounts/", include(account_urls)),
    path("admin/", admin.site.urls),
    path("", include("system.urls")),
    path("api/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/operations/", job_api.operations, name="api-operations"),
    path("api/plan/", job_api.plan, name="api-plan"),
    path("api/timeline/", timeline.timeline, name="api-timeline"),
    # DeepZoom's own layout, no slash at the end: what any DeepZoom viewer asks for.
    path("api/jobs/<uuid:job_id>/pyramid/<which:which>.dzi", job_api.pyramid, name="api-job-pyramid"),
    path(
        "api/jobs/<uuid:job_id>/pyramid/<which:which>_files/<int:level>/<int:column>_<int:row>.<tile:extension>",
        job_api.pyramid,
        name="api-job-pyramid-tile",
    ),
    path("api/", include(router.urls)),
]
