from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from jobs import api as job_api
from jobs import timeline
from jobs import views as job_views
from jobs.api import JobViewSet
from system import workers

router = DefaultRouter(trailing_slash=True)
router.register("jobs", JobViewSet, basename="api-job")
router.register("workers", workers.WorkerViewSet, basename="api-worker")

urlpatterns = [
    path("", job_views.history, name="history"),
    path("jobs/new/", job_views.submit, name="job-submit"),
    path("jobs/<uuid:job_id>/", job_views.detail, name="job-detail"),
    path("workers/", workers.worker_list, name="worker-list"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("system.urls")),
    path("api/auth/token/", obtain_auth_token, name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/operations/", job_api.operations, name="api-operations"),
    path("api/timeline/", timeline.timeline, name="api-timeline"),
    path("api/", include(router.urls)),
]
