"""The pipeline's processes in the Django admin: workers and collectors, read-only."""

from django.contrib import admin

from jobs.admin import ReadOnlyAdmin
from pipeline.models import Collector, Worker


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    list_display = ["id", "host", "status", "last_seen", "tiles_done", "current_job"]


@admin.register(Collector)
class CollectorAdmin(ReadOnlyAdmin):
    list_display = ["id", "consuming", "partitions", "lag", "rebuilds", "stalled", "last_seen", "stopped"]
    list_filter = ["stopped"]

    @admin.display(boolean=True)
    def consuming(self, collector):
        return collector.consuming
