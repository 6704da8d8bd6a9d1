from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from . import actions, quotas
from .models import Job, Tile, Upload, UserLimits


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the pipeline writes: staff look, never add or change (so no form offers Save)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
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
    list_filter = ["status", "keep", "created_at", "owner"]
    list_select_related = ["owner"]
    search_fields = ["original_name", "owner__username", "id"]
    date_hierarchy = "created_at"
    actions = [cancel_jobs, retry_jobs, pause_jobs, resume_jobs]

    @admin.display(description="size")
    def size(self, job):
        return f"{job.width}×{job.height}"

    @admin.display(description="duration (s)")
    def duration_seconds(self, job):
        return None if job.duration is None else round(job.duration, 1)

    # Pipeline fields are the collector's to change, never an admin's; staff may set the priority
    # and keep a job from retention. The files are shown as links to the app's authenticated
    # downloads (media is not served).
    readonly_fields = [
        {"original": "original_file", "result": "result_file"}.get(f.name, f.name)
        for f in Job._meta.fields
        if f.name not in ("priority", "keep")
    ] + ["tile_list"]
    exclude = ["original", "result"]  # shown as those links instead

    def has_add_permission(self, request):
        return False  # jobs come through the submit page, the API or `manage.py submit`

    @admin.display(description="original")
    def original_file(self, job):
        url = reverse("api-job-original", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, job.original_name)

    @admin.display(description="result")
    def result_file(self, job):
        if not job.result:
            return None
        return format_html('<a href="{}">{}</a>', reverse("api-job-result", args=[job.pk]), job.result.name)

    @admin.display(description="tiles")
    def tile_list(self, job):
        """A link to the job's tiles in their own list, which pages, sorts and filters them; a job
        can have thousands, more than an inline on this page could show."""
        url = f"{reverse('admin:jobs_tile_changelist')}?job__id__exact={job.pk}"
        counts = ", ".join(f"{n} {status}" for status, n in job.tiles.count_by("state"))
        return format_html('<a href="{}">{} tiles</a> ({})', url, job.tiles_total, counts)

    def save_model(self, request, obj, form, change):
        if change and "priority" in form.changed_data:
            actions.prioritise(obj, obj.priority)
        if change and "keep" in form.changed_data:
            actions.keep(obj, obj.keep)

    def delete_model(self, request, obj):
        actions.delete(obj)  # with its files, and its workers told

    def delete_queryset(self, request, queryset):
        for job in queryset:
            actions.delete(job)


@admin.register(Tile)
class TileAdmin(ReadOnlyAdmin):
    list_display = ["job", "stage", "index", "state", "worker", "attempts", "duration_ms", "partition"]
    list_filter = ["state", "stage"]
    list_select_related = ["job"]
    search_fields = ["worker", "error"]
    fields = [f.name for f in Tile._meta.fields if f.name != "result"]  # its media URL is not served


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdmin):
    """Resumable uploads under way; deleting one deletes its pieces (``jobs.cleanup``)."""

    list_display = ["filename", "owner", "size", "received", "updated_at", "expires_at"]
    list_select_related = ["owner"]
    search_fields = ["filename", "owner__username"]
    readonly_fields = ["expires_at"]


@admin.register(UserLimits)
class UserLimitsAdmin(admin.ModelAdmin):
    """One user's quotas instead of the QUOTA_* defaults, and priority high (jobs.quotas)."""

    list_display = ["user", "unfinished_jobs", "queued_megapixels", "stored_mb", "high_priority"]
    list_filter = ["high_priority"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]
    readonly_fields = ["in_use"]

    @admin.display(description="in use now")
    def in_use(self, limits):
        if not limits.pk:
            return "-"
        if limits.user.is_staff:
            return "staff: no limits"
        probe = Job(width=0, height=0)  # what a job adds is not asked here
        return "; ".join(
            f"{quota.name}: {quota.used:g} of {quota.limit or 'no limit'}"
            for quota in quotas.quotas(limits.user, probe)
        )
