from django.contrib import admin

from jobs.admin import ReadOnlyAdmin

from .models import Worker


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    list_display = ["id", "host", "status", "last_seen", "tiles_done", "current_job"]
