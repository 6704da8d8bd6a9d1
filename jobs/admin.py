from django.contrib import admin

from . import actions
from .models import Collector, Job, Tile


class TileInline(admin.TabularInline):
    model = Tile
    extra = 0
    can_delete = False
    fields = ["index", "status", "worker", "attempts", "partition", "offset", "duration_ms"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.action(description="Cancel the selected unfinished jobs")
def cancel_jobs(modeladmin, request, queryset):
    cancelled = sum(actions.cancel(job) for job in queryset)
    modeladmin.message_user(request, f"{cancelled} job(s) cancelled")


@admin.action(description="Retry the selected failed or cancelled jobs (only tiles not done)")
def retry_jobs(modeladmin, request, queryset):
    retried = sum(actions.retry(job) for job in queryset)
    modeladmin.message_user(request, f"{retried} job(s) sent back to work")


@admin.action(description="Pause the selected queued or running jobs")
def pause_jobs(modeladmin, request, queryset):
    modeladmin.message_user(request, f"{sum(actions.pause(job) for job in queryset)} job(s) paused")


@admin.action(description="Resume the selected paused jobs")
def resume_jobs(modeladmin, request, queryset):
    modeladmin.message_user(request, f"{sum(actions.resume(job) for job in queryset)} job(s) resumed")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "original_name",
        "owner",
        "status",
        "priority",
        "size",
        "tiles_done",
        "tiles_total",
        "duration_seconds",
        "created_at",
    ]
    list_filter = ["status", "created_at", "owner"]
    list_select_related = ["owner"]
    search_fields = ["original_name", "owner__username", "id"]
    date_hierarchy = "created_at"
    inlines = [TileInline]
    actions = [cancel_jobs, retry_jobs, pause_jobs, resume_jobs]

    @admin.display(description="size")
    def size(self, job):
        return f"{job.width}×{job.height}"

    @admin.display(description="duration (s)")
    def duration_seconds(self, job):
        return None if job.duration is None else round(job.duration, 1)

    # Pipeline fields are the collector's to change, never an admin's; staff may set the priority.
    readonly_fields = [f.name for f in Job._meta.fields if f.name != "priority"]

    def save_model(self, request, obj, form, change):
        if change and "priority" in form.changed_data:
            actions.prioritise(obj, obj.priority)

    def delete_model(self, request, obj):
        actions.delete(obj)  # with its files, and its workers told

    def delete_queryset(self, request, queryset):
        for job in queryset:
            actions.delete(job)


@admin.register(Tile)
class TileAdmin(admin.ModelAdmin):
    list_display = ["job", "index", "status", "worker", "attempts", "duration_ms", "partition", "offset"]
    list_filter = ["status"]
    list_select_related = ["job"]
    readonly_fields = [f.name for f in Tile._meta.fields]


@admin.register(Collector)
class CollectorAdmin(admin.ModelAdmin):
    list_display = ["id", "consuming", "partitions", "lag", "rebuilds", "stalled", "last_seen", "stopped"]
    list_filter = ["stopped"]
    readonly_fields = [f.name for f in Collector._meta.fields]

    @admin.display(boolean=True)
    def consuming(self, collector):
        return collector.consuming
