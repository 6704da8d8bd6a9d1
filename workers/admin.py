from django.contrib import admin

from .models import Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["id", "host", "status", "last_seen", "tiles_done", "current_job"]
    readonly_fields = [f.name for f in Worker._meta.fields]
